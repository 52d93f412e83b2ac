#include "server/engine/memory_idempotency_store.h"

#include <optional>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {
namespace {

core::IdempotencyStore::Result Repeat(v1::ChannelDelivery delivery) {
  delivery.set_queued(0);  // nothing was queued by this call
  return {std::move(delivery), true};
}

}  // namespace

MemoryIdempotencyStore::MemoryIdempotencyStore(absl::Duration window, Clock clock)
    : window_(window), clock_(std::move(clock)) {}

MemoryIdempotencyStore::Stripe& MemoryIdempotencyStore::StripeFor(
    const std::string& full_key) const {
  return stripes_[absl::HashOf(full_key) % kStripes];
}

void MemoryIdempotencyStore::Run(const std::string& channel, const std::string& key,
                                 PublishFn publish, core::Done<Result> done) {
  std::string full = absl::StrCat(channel, "\n", key);
  Stripe& stripe = StripeFor(full);
  std::optional<v1::ChannelDelivery> original;
  {
    const absl::Time now = clock_();
    core::MutexLock lock(&stripe.mu);
    auto [it, fresh] = stripe.entries.try_emplace(full);
    Entry& e = it->second;
    if (!fresh && e.running) {
      e.repeats.push_back(std::move(done));
      return;
    }
    if (!fresh && e.at + window_ > now) {
      original = e.delivery;
    } else {
      e = Entry();  // new, or expired and not yet swept: publish again
    }
  }
  if (original.has_value()) {
    done(Repeat(*std::move(original)));
    return;
  }
  publish([this, full = std::move(full),
           done = std::move(done)](absl::StatusOr<v1::ChannelDelivery> result) mutable {
    Finish(full, std::move(result), std::move(done));
  });
}

void MemoryIdempotencyStore::Finish(const std::string& full_key,
                                    absl::StatusOr<v1::ChannelDelivery> result,
                                    core::Done<Result> done) {
  Stripe& stripe = StripeFor(full_key);
  std::vector<core::Done<Result>> repeats;
  {
    const absl::Time now = clock_();
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.entries.find(full_key);
    if (it != stripe.entries.end()) {
      repeats = std::move(it->second.repeats);
      if (result.ok()) {
        it->second.running = false;
        it->second.delivery = *result;
        it->second.at = now;
        stripe.order.emplace_back(now, full_key);
      } else {
        stripe.entries.erase(it);  // not remembered: a retry publishes
      }
    }
  }
  if (!result.ok()) {
    for (auto& repeat : repeats) repeat(result.status());
    done(result.status());
    return;
  }
  for (auto& repeat : repeats) repeat(Repeat(*result));
  done(Result{*std::move(result), false});
}

void MemoryIdempotencyStore::Sweep(absl::Time now) {
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    while (!stripe.order.empty() && stripe.order.front().first + window_ <= now) {
      auto it = stripe.entries.find(stripe.order.front().second);
      // The key may have been published again (after expiry) with a newer time.
      if (it != stripe.entries.end() && !it->second.running &&
          it->second.at == stripe.order.front().first) {
        stripe.entries.erase(it);
      }
      stripe.order.pop_front();
    }
  }
}

size_t MemoryIdempotencyStore::size() const {
  size_t n = 0;
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    n += stripe.entries.size();
  }
  return n;
}

}  // namespace herald::engine
