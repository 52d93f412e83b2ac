#include "server/engine/memory_broker.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {

struct MemoryBroker::ChannelState {
  core::Mutex mu;
  std::string epoch;
  core::HistoryPolicy policy;
  uint64_t offset ABSL_GUARDED_BY(mu) = 0;
  std::deque<core::StoredPublication> history ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, Keyed> keyed ABSL_GUARDED_BY(mu);
  absl::Time last_used ABSL_GUARDED_BY(mu);
  // Node subscriptions (Subscribe minus Unsubscribe calls).
  int64_t subscribed ABSL_GUARDED_BY(mu) = 0;
  // Publications waiting for delivery, in offset order, and whether a thread is delivering
  // (the outbox is empty whenever none is).
  std::vector<core::Publication> outbox ABSL_GUARDED_BY(mu);
  bool delivering ABSL_GUARDED_BY(mu) = false;
};

namespace {

// Drops history entries past the policy's size or TTL (amortized O(1): on every publish).
template <typename State>
void Prune(State& state, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  while (!state.history.empty() && (state.history.size() > state.policy.size ||
                                    state.history.front().published_at + state.policy.ttl <= now)) {
    state.history.pop_front();
  }
}

// Drops expired keys: O(keys), so only from Sweep(); Join() skips expired ones meanwhile.
template <typename State>
void ExpireKeys(State& state, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  for (auto it = state.keyed.begin(); it != state.keyed.end();) {
    if (it->second.expires_at <= now) {
      state.keyed.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace

MemoryBroker::MemoryBroker(core::Limits limits, Clock clock)
    : limits_(std::move(limits)),
      clock_(std::move(clock)),
      epoch_prefix_(
          absl::StrCat(absl::Hex(absl::Uniform<uint32_t>(absl::BitGen()), absl::kZeroPad8))) {}

MemoryBroker::Stripe& MemoryBroker::StripeFor(absl::string_view channel) const {
  return stripes_[absl::HashOf(channel) % kStripes];
}

void MemoryBroker::Schedule(Stripe& stripe, absl::Time at, std::string channel) {
  stripe.checks.push_back(Check{at, std::move(channel)});
  std::push_heap(stripe.checks.begin(), stripe.checks.end(), std::greater<Check>());
}

std::shared_ptr<MemoryBroker::ChannelState> MemoryBroker::StateFor(const std::string& channel) {
  Stripe& stripe = StripeFor(channel);
  core::MutexLock lock(&stripe.mu);
  auto& state = stripe.channels[channel];
  if (state == nullptr) {
    state = std::make_shared<ChannelState>();
    // A channel forgotten by Sweep() and created again gets a new epoch: clients recovering
    // with the old one learn that their offsets no longer apply.
    state->epoch = absl::StrCat(epoch_prefix_, absl::Hex(generation_.fetch_add(1)));
    state->policy = core::HistoryFor(limits_, channel);
    const absl::Time now = clock_();
    {
      core::MutexLock state_lock(&state->mu);
      state->last_used = now;
    }
    Schedule(stripe, now + state->policy.ttl, channel);
  }
  return state;
}

MemoryBroker::Appended MemoryBroker::Append(const std::string& channel, core::PublishSpec spec) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  const absl::Time now = clock_();
  core::MutexLock lock(&state->mu);
  state->last_used = now;
  // A member notice is handed on like data (through the same outbox, so one thread at a time)
  // but neither retained nor given an offset.
  if (spec.kind == core::PublicationKind::kData) {
    ++state->offset;
    core::StoredPublication stored{state->offset, spec.data_json, now, spec.ack_requested};
    if (state->policy.size > 0) state->history.push_back(stored);
    if (!spec.key.empty()) {
      Keyed& keyed = state->keyed[spec.key];
      keyed.publication = stored;
      keyed.expires_at = spec.key_final ? now + limits_.order_retention : absl::InfiniteFuture();
    }
    Prune(*state, now);
  }
  Appended appended{core::StreamPosition{state->epoch, state->offset}, state, std::nullopt};
  if (state->subscribed > 0) {
    core::Publication p{channel, appended.position, std::move(spec)};
    if (state->delivering) {
      state->outbox.push_back(std::move(p));
    } else {
      state->delivering = true;
      appended.deliver = std::move(p);
    }
  }
  return appended;
}

void MemoryBroker::Deliver(Appended& appended) {
  if (!appended.deliver.has_value()) return;  // queued for the thread delivering now
  handler_->HandlePublication(*appended.deliver);
  ChannelState& state = *appended.channel;
  std::vector<core::Publication> batch;
  while (true) {
    {
      core::MutexLock lock(&state.mu);
      if (state.outbox.empty()) {
        state.delivering = false;
        return;
      }
      batch.swap(state.outbox);
    }
    for (const core::Publication& p : batch) handler_->HandlePublication(p);
    batch.clear();
  }
}

void MemoryBroker::Publish(const std::string& channel, core::PublishSpec spec,
                           core::Done<core::StreamPosition> done) {
  Appended appended = Append(channel, std::move(spec));
  Deliver(appended);
  done(std::move(appended.position));
}

void MemoryBroker::Subscribe(const std::string& channel, core::StatusDone done) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  {
    core::MutexLock lock(&state->mu);
    ++state->subscribed;
  }
  done(absl::OkStatus());
}

void MemoryBroker::Unsubscribe(const std::string& channel) {
  std::shared_ptr<ChannelState> state;
  {
    Stripe& stripe = StripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.channels.find(channel);
    if (it == stripe.channels.end()) return;
    state = it->second;
  }
  core::MutexLock lock(&state->mu);
  --state->subscribed;
  state->last_used = clock_();
}

void MemoryBroker::Join(const std::string& channel, core::JoinSpec spec,
                        core::Done<core::JoinResult> done) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  const absl::Time now = clock_();
  core::JoinResult result;
  {
    core::MutexLock lock(&state->mu);
    state->last_used = now;
    Prune(*state, now);
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
  }
  done(std::move(result));
}

void MemoryBroker::History(const std::string& channel, core::HistoryQuery query,
                           core::Done<core::HistoryResult> done) {
  std::shared_ptr<ChannelState> state = StateFor(channel);
  const absl::Time now = clock_();
  core::HistoryResult result;
  {
    core::MutexLock lock(&state->mu);
    Prune(*state, now);
    result.position = {state->epoch, state->offset};
    auto take = [&](const core::StoredPublication& p) {
      if (p.offset > query.since_offset) result.publications.push_back(p);
      return result.publications.size() < query.limit;
    };
    if (query.reverse) {
      for (auto it = state->history.rbegin(); it != state->history.rend() && take(*it); ++it) {
      }
    } else {
      for (auto it = state->history.begin(); it != state->history.end() && take(*it); ++it) {
      }
    }
  }
  done(std::move(result));
}

void MemoryBroker::Sweep(absl::Time now) {
  for (Stripe& stripe : stripes_) {
    std::vector<std::string> due;
    {
      core::MutexLock lock(&stripe.mu);
      while (!stripe.checks.empty() && stripe.checks.front().at <= now) {
        std::pop_heap(stripe.checks.begin(), stripe.checks.end(), std::greater<Check>());
        due.push_back(std::move(stripe.checks.back().channel));
        stripe.checks.pop_back();
      }
    }
    for (const std::string& channel : due) CheckChannel(stripe, channel, now);
  }
}

void MemoryBroker::CheckChannel(Stripe& stripe, const std::string& channel, absl::Time now) {
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.channels.find(channel);
  if (it == stripe.channels.end()) return;
  ChannelState& state = *it->second;
  absl::Time next = now + state.policy.ttl;
  bool forget = false;
  {
    core::MutexLock state_lock(&state.mu);
    Prune(state, now);
    ExpireKeys(state, now);
    // Nothing left to recover or snapshot, nobody used it for a full TTL, and no subscriber.
    forget = state.history.empty() && state.keyed.empty() && state.subscribed == 0 &&
             state.last_used + state.policy.ttl <= now;
    // Otherwise again when the oldest retained publication expires or it could be idle.
    next = state.last_used + state.policy.ttl;
    if (!state.history.empty()) {
      next = std::min(next, state.history.front().published_at + state.policy.ttl);
    }
  }
  if (forget) {
    stripe.channels.erase(it);
    return;
  }
  Schedule(stripe, std::max(next, now + absl::Seconds(1)), channel);
}

size_t MemoryBroker::channel_count() const {
  size_t n = 0;
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    n += stripe.channels.size();
  }
  return n;
}

}  // namespace herald::engine
