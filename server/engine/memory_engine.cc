#include "server/engine/memory_engine.h"

#include "absl/hash/hash.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {

MemoryEngine::MemoryEngine()
    : epoch_prefix_(
          absl::StrCat(absl::Hex(absl::Uniform<uint32_t>(absl::BitGen()), absl::kZeroPad8))) {}

MemoryEngine::ChannelState& MemoryEngine::StateFor(absl::string_view channel) {
  Shard& shard = shards_[absl::HashOf(channel) % kShards];
  absl::MutexLock lock(&shard.mu);
  auto& state = shard.channels[channel];
  if (state == nullptr) {
    state = std::make_unique<ChannelState>();
    state->epoch = epoch_prefix_;
  }
  // States are never erased, so the reference outlives the shard lock.
  return *state;
}

absl::StatusOr<core::StreamPosition> MemoryEngine::Publish(
    absl::string_view channel, absl::FunctionRef<void(const core::StreamPosition&)> deliver) {
  ChannelState& state = StateFor(channel);
  absl::MutexLock lock(&state.mu);
  core::StreamPosition pos{state.epoch, ++state.offset};
  deliver(pos);
  return pos;
}

core::StreamPosition MemoryEngine::Join(absl::string_view channel,
                                        absl::FunctionRef<void(const core::StreamPosition&)> join) {
  ChannelState& state = StateFor(channel);
  absl::MutexLock lock(&state.mu);
  core::StreamPosition pos{state.epoch, state.offset};
  join(pos);
  return pos;
}

}  // namespace herald::engine
