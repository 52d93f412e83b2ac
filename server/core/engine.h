#ifndef HERALD_SERVER_CORE_ENGINE_H_
#define HERALD_SERVER_CORE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace herald::core {

// A position in a channel's stream. `epoch` changes when the stream restarts (a new process, or
// a channel that was idle long enough to be forgotten), so an offset is only meaningful together
// with its epoch.
struct StreamPosition {
  std::string epoch;
  uint64_t offset = 0;
};

// One publication as the engine keeps it.
struct StoredPublication {
  uint64_t offset = 0;
  std::shared_ptr<const std::string> data_json;
  absl::Time published_at;
};

struct PublishSpec {
  std::shared_ptr<const std::string> data_json;
  // When set, the engine keeps the latest publication per key for snapshots (order id).
  std::string key;
  // The key's state is final (terminal order): it leaves snapshots after its retention.
  bool key_final = false;
};

struct JoinSpec {
  // Replay what was published after this position.
  std::optional<StreamPosition> recover;
  // Return the latest publication of every live key.
  bool snapshot = false;
};

struct JoinResult {
  StreamPosition position;
  bool recovered = false;
  std::vector<StoredPublication> missed;    // when recovered
  std::vector<StoredPublication> snapshot;  // oldest offset first
};

struct HistoryResult {
  StreamPosition position;
  std::vector<StoredPublication> publications;
};

// Orders, retains and replays the publications of each channel. MemoryEngine (server/engine) is
// the single-node implementation; a distributed engine (Redis) plugs in here. Implementations are
// thread-safe.
class Engine {
 public:
  virtual ~Engine() = default;

  // Assigns the next position of `channel`, retains the publication, and calls `deliver` with
  // the position before any later publication of the same channel is delivered (so every
  // subscriber sees offsets in order).
  virtual absl::StatusOr<StreamPosition> Publish(
      absl::string_view channel, const PublishSpec& spec,
      absl::FunctionRef<void(const StreamPosition&)> deliver) = 0;

  // Computes recovery/snapshot for a subscriber and runs `join` with it, ordered with Publish():
  // publications delivered after `join` returns have greater offsets than result.position.
  virtual void Join(absl::string_view channel, const JoinSpec& spec,
                    absl::FunctionRef<void(const JoinResult&)> join) = 0;

  // Retained publications with offset > since_offset, at most `limit`, oldest first (newest
  // first when `reverse`).
  virtual HistoryResult History(absl::string_view channel, uint64_t since_offset, size_t limit,
                                bool reverse) = 0;

  // Drops expired history and forgets channels that have nothing retained, were idle for a TTL
  // and are not `in_use` (have no subscribers). Called periodically.
  virtual void Sweep(absl::Time now, absl::FunctionRef<bool(absl::string_view)> in_use) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ENGINE_H_
