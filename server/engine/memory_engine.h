#ifndef HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_
#define HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/core/engine.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"

namespace herald::engine {

// Single-node engine: keeps each channel's epoch, offset, bounded history (size and TTL from
// Limits::history / history_by_prefix) and latest publication per key, in memory. Owns the
// per-channel mutex that orders publications. Sweep() visits only channels whose check is due
// (one pending check per channel, in a time-ordered heap per shard) and asks `in_use` with no
// engine lock held. Thread-safe.
class MemoryEngine : public core::Engine {
 public:
  using Clock = std::function<absl::Time()>;
  explicit MemoryEngine(
      core::Limits limits, Clock clock = [] { return absl::Now(); });

  absl::StatusOr<core::StreamPosition> Publish(
      absl::string_view channel, const core::PublishSpec& spec,
      absl::FunctionRef<void(const core::StreamPosition&)> deliver) override;
  void Join(absl::string_view channel, const core::JoinSpec& spec,
            absl::FunctionRef<void(const core::JoinResult&)> join) override;
  core::HistoryResult History(absl::string_view channel, uint64_t since_offset, size_t limit,
                              bool reverse) override;
  void Sweep(absl::Time now, absl::FunctionRef<bool(absl::string_view)> in_use) override;

  size_t channel_count() const;

 private:
  struct Keyed {
    core::StoredPublication publication;
    absl::Time expires_at = absl::InfiniteFuture();
  };
  struct ChannelState {
    core::Mutex mu;
    std::string epoch;
    core::HistoryPolicy policy;
    uint64_t offset ABSL_GUARDED_BY(mu) = 0;
    std::deque<core::StoredPublication> history ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, Keyed> keyed ABSL_GUARDED_BY(mu);
    absl::Time last_used ABSL_GUARDED_BY(mu);
  };
  // When Sweep() should look at a channel again.
  struct Check {
    absl::Time at;
    std::string channel;
    bool operator>(const Check& other) const { return at > other.at; }
  };
  struct Shard {
    core::Mutex mu;
    absl::flat_hash_map<std::string, std::shared_ptr<ChannelState>> channels ABSL_GUARDED_BY(mu);
    std::vector<Check> checks ABSL_GUARDED_BY(mu);  // min-heap on `at`
  };
  static constexpr size_t kShards = 64;

  std::shared_ptr<ChannelState> StateFor(absl::string_view channel);
  Shard& ShardFor(absl::string_view channel) const;
  static void Schedule(Shard& shard, absl::Time at, std::string channel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Looks at one channel whose check is due: prunes it, forgets it when idle and unused, or
  // schedules its next check.
  void CheckChannel(Shard& shard, const std::string& channel, absl::Time now,
                    absl::FunctionRef<bool(absl::string_view)> in_use);
  // Drops history entries past the policy's size or TTL (amortized O(1): on every publish).
  void Prune(ChannelState& state, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu);
  // Drops expired keys: O(keys), so only from Sweep(); Join() skips expired ones meanwhile.
  void ExpireKeys(ChannelState& state, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu);

  const core::Limits limits_;
  const Clock clock_;
  const std::string epoch_prefix_;
  std::atomic<uint64_t> generation_{0};
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_
