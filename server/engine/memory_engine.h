#ifndef HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_
#define HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_

#include <array>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/core/engine.h"

namespace herald::engine {

// Single-node engine: keeps each channel's epoch and offset in memory. Owns the per-channel
// sequencing mutex that orders publications; thread-safe.
class MemoryEngine : public core::Engine {
 public:
  MemoryEngine();

  absl::StatusOr<core::StreamPosition> Publish(
      absl::string_view channel,
      absl::FunctionRef<void(const core::StreamPosition&)> deliver) override;
  core::StreamPosition Join(absl::string_view channel,
                            absl::FunctionRef<void(const core::StreamPosition&)> join) override;

 private:
  struct ChannelState {
    absl::Mutex mu;
    std::string epoch;
    uint64_t offset ABSL_GUARDED_BY(mu) = 0;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::unique_ptr<ChannelState>> channels ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 64;

  ChannelState& StateFor(absl::string_view channel);

  const std::string epoch_prefix_;
  std::array<Shard, kShards> shards_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_
