#include "server/core/idempotency.h"

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace herald::core {

absl::StatusOr<IdempotencyCache::Result> IdempotencyCache::Run(
    const std::string& channel, const std::string& key, absl::Time now,
    absl::FunctionRef<absl::StatusOr<v1::ChannelDelivery>()> publish) {
  std::string full = absl::StrCat(channel, "\n", key);
  Shard& shard = shards_[absl::HashOf(full) % kShards];
  core::MutexLock lock(&shard.mu);
  auto it = shard.entries.find(full);
  if (it != shard.entries.end() && it->second.second + window_ > now) {
    v1::ChannelDelivery original = it->second.first;
    original.set_queued(0);  // nothing was queued by this call
    return Result{std::move(original), true};
  }
  absl::StatusOr<v1::ChannelDelivery> delivery = publish();
  if (!delivery.ok()) return delivery.status();
  shard.entries[full] = {*delivery, now};
  shard.order.emplace_back(now, std::move(full));
  return Result{*std::move(delivery), false};
}

void IdempotencyCache::Sweep(absl::Time now) {
  for (Shard& shard : shards_) {
    core::MutexLock lock(&shard.mu);
    while (!shard.order.empty() && shard.order.front().first + window_ <= now) {
      auto it = shard.entries.find(shard.order.front().second);
      // The key may have been published again (after expiry) with a newer time.
      if (it != shard.entries.end() && it->second.second == shard.order.front().first) {
        shard.entries.erase(it);
      }
      shard.order.pop_front();
    }
  }
}

size_t IdempotencyCache::size() const {
  size_t n = 0;
  for (Shard& shard : shards_) {
    core::MutexLock lock(&shard.mu);
    n += shard.entries.size();
  }
  return n;
}

}  // namespace herald::core
