#include "server/engine/memory_engine.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {

MemoryEngine::MemoryEngine(core::Limits limits, Clock clock)
    : limits_(std::move(limits)),
      clock_(std::move(clock)),
      epoch_prefix_(
          absl::StrCat(absl::Hex(absl::Uniform<uint32_t>(absl::BitGen()), absl::kZeroPad8))) {}

MemoryEngine::Shard& MemoryEngine::ShardFor(absl::string_view channel) const {
  return shards_[absl::HashOf(channel) % kShards];
}

void MemoryEngine::Schedule(Shard& shard, absl::Time at, std::string channel) {
  shard.checks.push_back(Check{at, std::move(channel)});
  std::push_heap(shard.checks.begin(), shard.checks.end(), std::greater<Check>());
}

std::shared_ptr<MemoryEngine::ChannelState> MemoryEngine::StateFor(absl::string_view channel) {
  Shard& shard = ShardFor(channel);
  core::MutexLock lock(&shard.mu);
  auto& state = shard.channels[channel];
  if (state == nullptr) {
    state = std::make_shared<ChannelState>();
    // A channel forgotten by Sweep() and created again gets a new epoch: clients recovering
    // with the old one learn that their offsets no longer apply.
    state->epoch = absl::StrCat(epoch_prefix_, absl::Hex(generation_.fetch_add(1)));
    state->policy = core::HistoryFor(limits_, std::string(channel));
    const absl::Time now = clock_();
    {
      core::MutexLock state_lock(&state->mu);
      state->last_used = now;
    }
    Schedule(shard, now + state->policy.ttl, std::string(channel));
  }
  return state;
}

void MemoryEngine::Prune(ChannelState& state, absl::Time now) {
  while (!state.history.empty() && (state.history.size() > state.policy.size ||
                                    state.history.front().published_at + state.policy.ttl <= now)) {
    state.history.pop_front();
  }
}

void MemoryEngine::ExpireKeys(ChannelState& state, absl::Time now) {
  for (auto it = state.keyed.begin(); it != state.keyed.end();) {
    if (it->second.expires_at <= now) {
      state.keyed.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<core::StreamPosition> MemoryEngine::Publish(
    absl::string_view channel, const core::PublishSpec& spec,
    absl::FunctionRef<void(const core::StreamPosition&)> deliver) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  const absl::Time now = clock_();
  core::MutexLock lock(&state->mu);
  core::StreamPosition pos{state->epoch, ++state->offset};
  core::StoredPublication stored{pos.offset, spec.data_json, now};
  state->last_used = now;
  if (state->policy.size > 0) state->history.push_back(stored);
  if (!spec.key.empty()) {
    Keyed& keyed = state->keyed[spec.key];
    keyed.publication = stored;
    keyed.expires_at = spec.key_final ? now + limits_.order_retention : absl::InfiniteFuture();
  }
  Prune(*state, now);
  deliver(pos);
  return pos;
}

void MemoryEngine::Join(absl::string_view channel, const core::JoinSpec& spec,
                        absl::FunctionRef<void(const core::JoinResult&)> join) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  const absl::Time now = clock_();
  core::MutexLock lock(&state->mu);
  state->last_used = now;
  Prune(*state, now);
  core::JoinResult result;
  result.position = {state->epoch, state->offset};
  if (spec.recover.has_value()) {
    const core::StreamPosition& since = *spec.recover;
    if (since.epoch == state->epoch && since.offset <= state->offset) {
      // Every offset in (since.offset, state->offset] must still be retained.
      const bool complete =
          since.offset == state->offset ||
          (!state->history.empty() && state->history.front().offset <= since.offset + 1);
      if (complete) {
        result.recovered = true;
        for (const core::StoredPublication& p : state->history) {
          if (p.offset > since.offset) result.missed.push_back(p);
        }
      }
    }
  }
  if (spec.snapshot) {
    // Expired keys are dropped by Sweep(); until then they are skipped here.
    for (const auto& [key, keyed] : state->keyed) {
      if (keyed.expires_at > now) result.snapshot.push_back(keyed.publication);
    }
    std::sort(result.snapshot.begin(), result.snapshot.end(),
              [](const auto& a, const auto& b) { return a.offset < b.offset; });
  }
  join(result);
}

core::HistoryResult MemoryEngine::History(absl::string_view channel, uint64_t since_offset,
                                          size_t limit, bool reverse) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  const absl::Time now = clock_();
  core::MutexLock lock(&state->mu);
  Prune(*state, now);
  core::HistoryResult result;
  result.position = {state->epoch, state->offset};
  if (reverse) {
    for (auto it = state->history.rbegin();
         it != state->history.rend() && result.publications.size() < limit; ++it) {
      if (it->offset > since_offset) result.publications.push_back(*it);
    }
  } else {
    for (const core::StoredPublication& p : state->history) {
      if (result.publications.size() >= limit) break;
      if (p.offset > since_offset) result.publications.push_back(p);
    }
  }
  return result;
}

void MemoryEngine::Sweep(absl::Time now, absl::FunctionRef<bool(absl::string_view)> in_use) {
  for (Shard& shard : shards_) {
    std::vector<std::string> due;
    {
      core::MutexLock lock(&shard.mu);
      while (!shard.checks.empty() && shard.checks.front().at <= now) {
        std::pop_heap(shard.checks.begin(), shard.checks.end(), std::greater<Check>());
        due.push_back(std::move(shard.checks.back().channel));
        shard.checks.pop_back();
      }
    }
    for (const std::string& channel : due) CheckChannel(shard, channel, now, in_use);
  }
}

void MemoryEngine::CheckChannel(Shard& shard, const std::string& channel, absl::Time now,
                                absl::FunctionRef<bool(absl::string_view)> in_use) {
  std::shared_ptr<ChannelState> state;
  {
    core::MutexLock lock(&shard.mu);
    auto it = shard.channels.find(channel);
    if (it == shard.channels.end()) return;
    state = it->second;
  }
  // Nothing left to recover or snapshot, and nobody used it for a full TTL.
  auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->history.empty() && state->keyed.empty() &&
           state->last_used + state->policy.ttl <= now;
  };
  bool was_idle = false;
  absl::Time next = now + state->policy.ttl;
  {
    core::MutexLock lock(&state->mu);
    Prune(*state, now);
    ExpireKeys(*state, now);
    was_idle = idle();
    if (!was_idle) {
      // Again when the oldest retained publication expires or the channel could be idle.
      next = state->last_used + state->policy.ttl;
      if (!state->history.empty()) {
        next = std::min(next, state->history.front().published_at + state->policy.ttl);
      }
    }
  }
  // Asked with no engine lock held: it calls into the hub's channel index.
  if (was_idle && !in_use(channel)) {
    core::MutexLock lock(&shard.mu);
    core::MutexLock state_lock(&state->mu);
    if (idle()) {  // still: nothing was published or joined meanwhile
      shard.channels.erase(channel);
      return;
    }
  }
  const absl::Time at = std::max(next, now + absl::Seconds(1));
  core::MutexLock lock(&shard.mu);
  Schedule(shard, at, channel);
}

size_t MemoryEngine::channel_count() const {
  size_t n = 0;
  for (Shard& shard : shards_) {
    core::MutexLock lock(&shard.mu);
    n += shard.channels.size();
  }
  return n;
}

}  // namespace herald::engine
