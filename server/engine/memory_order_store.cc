#include "server/engine/memory_order_store.h"

#include <vector>

#include "absl/hash/hash.h"

namespace herald::engine {

MemoryOrderStore::MemoryOrderStore(core::Limits limits, MemoryBroker* broker, Clock clock)
    : limits_(std::move(limits)), broker_(broker), clock_(std::move(clock)) {}

MemoryOrderStore::Stripe& MemoryOrderStore::StripeFor(const std::string& id) const {
  return stripes_[absl::HashOf(id) % kStripes];
}

void MemoryOrderStore::Apply(core::OrderUpdate update, core::Done<core::OrderDecision> done) {
  core::OrderDecision decision;
  std::vector<MemoryBroker::Appended> appended;
  {
    Stripe& stripe = StripeFor(update.order_id);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.orders.find(update.order_id);
    if (it != stripe.orders.end() && update.version <= it->second.version) {
      decision.latest_version = it->second.version;
    } else {
      const absl::Time now = clock_();
      stripe.orders[update.order_id] =
          Entry{update.version, update.final ? now : absl::InfiniteFuture()};
      if (update.final) stripe.ended.emplace_back(now, update.order_id);
      decision.applied = true;
      decision.latest_version = update.version;
      appended.reserve(update.channels.size());
      decision.positions.reserve(update.channels.size());
      for (const std::string& channel : update.channels) {
        appended.push_back(broker_->Append(channel, update.spec));
        decision.positions.push_back(appended.back().position);
      }
    }
  }
  for (MemoryBroker::Appended& a : appended) broker_->Deliver(a);
  done(std::move(decision));
}

uint64_t MemoryOrderStore::TrackedOrders() const {
  uint64_t n = 0;
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    n += stripe.orders.size();
  }
  return n;
}

void MemoryOrderStore::Sweep(absl::Time now) {
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    while (!stripe.ended.empty() && stripe.ended.front().first + limits_.order_retention <= now) {
      auto it = stripe.orders.find(stripe.ended.front().second);
      if (it != stripe.orders.end() && it->second.terminal_since == stripe.ended.front().first) {
        stripe.orders.erase(it);
      }
      stripe.ended.pop_front();
    }
  }
}

}  // namespace herald::engine
