#include "server/core/order_book.h"

#include "absl/hash/hash.h"

namespace herald::core {

OrderBook::Shard& OrderBook::ShardFor(const std::string& id) const {
  return shards_[absl::HashOf(id) % kShards];
}

OrderBook::Decision OrderBook::Apply(const herald::v1::Order& order, absl::Time now,
                                     absl::FunctionRef<void()> deliver) {
  Shard& shard = ShardFor(order.id());
  core::MutexLock lock(&shard.mu);
  auto it = shard.orders.find(order.id());
  if (it != shard.orders.end() && order.version() <= it->second.version) {
    return Decision{false, it->second.version};
  }
  const bool terminal = IsTerminal(order.status());
  shard.orders[order.id()] = Entry{order.version(), terminal ? now : absl::InfiniteFuture()};
  if (terminal) shard.ended.emplace_back(now, order.id());
  deliver();
  return Decision{true, order.version()};
}

uint64_t OrderBook::LatestVersion(const std::string& order_id) const {
  Shard& shard = ShardFor(order_id);
  core::MutexLock lock(&shard.mu);
  auto it = shard.orders.find(order_id);
  return it == shard.orders.end() ? 0 : it->second.version;
}

void OrderBook::Sweep(absl::Time now, absl::Duration retention) {
  for (Shard& shard : shards_) {
    core::MutexLock lock(&shard.mu);
    while (!shard.ended.empty() && shard.ended.front().first + retention <= now) {
      auto it = shard.orders.find(shard.ended.front().second);
      if (it != shard.orders.end() && it->second.terminal_since == shard.ended.front().first) {
        shard.orders.erase(it);
      }
      shard.ended.pop_front();
    }
  }
}

size_t OrderBook::size() const {
  size_t n = 0;
  for (Shard& shard : shards_) {
    core::MutexLock lock(&shard.mu);
    n += shard.orders.size();
  }
  return n;
}

bool IsTerminal(herald::v1::OrderStatus status) {
  return status == herald::v1::ORDER_STATUS_DELIVERED ||
         status == herald::v1::ORDER_STATUS_CANCELLED ||
         status == herald::v1::ORDER_STATUS_REJECTED;
}

}  // namespace herald::core
