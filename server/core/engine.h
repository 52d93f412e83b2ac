#ifndef HERALD_SERVER_CORE_ENGINE_H_
#define HERALD_SERVER_CORE_ENGINE_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace herald::core {

// A position in a channel's stream. `epoch` changes when the stream restarts (a new process for
// MemoryEngine), so an offset is only meaningful together with its epoch.
struct StreamPosition {
  std::string epoch;
  uint64_t offset = 0;
};

// Orders the publications of each channel. MemoryEngine (server/engine) is the single-node
// implementation; a distributed engine (Redis) plugs in here. Implementations are thread-safe.
class Engine {
 public:
  virtual ~Engine() = default;

  // Assigns the next position of `channel` and calls `deliver` with it before any later
  // publication of the same channel is delivered (so every subscriber sees offsets in order).
  virtual absl::StatusOr<StreamPosition> Publish(
      absl::string_view channel, absl::FunctionRef<void(const StreamPosition&)> deliver) = 0;

  // Runs `join` with the channel's current position, ordered with Publish(): publications
  // delivered after `join` returns have greater offsets than the one it was given.
  virtual StreamPosition Join(absl::string_view channel,
                              absl::FunctionRef<void(const StreamPosition&)> join) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ENGINE_H_
