#ifndef HERALD_SERVER_CORE_ORDER_BOOK_H_
#define HERALD_SERVER_CORE_ORDER_BOOK_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "herald/v1/order.pb.h"
#include "server/core/mutex.h"

namespace herald::core {

// The latest version of every order Herald has routed (terminal orders are forgotten after
// Limits::order_retention). Thread-safe, sharded by order id. Apply() runs the delivery while
// holding the order's shard lock, so two versions of one order can never reach a socket out of
// order.
class OrderBook {
 public:
  static constexpr size_t kShards = 64;

  struct Decision {
    bool applied = false;
    uint64_t latest_version = 0;
  };

  // Keeps `order` and runs `deliver` when its version is greater than the latest one known;
  // otherwise leaves everything as it was.
  Decision Apply(const herald::v1::Order& order, absl::Time now, absl::FunctionRef<void()> deliver);
  uint64_t LatestVersion(const std::string& order_id) const;  // 0 when unknown
  size_t size() const;
  // Forgets orders that reached a terminal status more than `retention` before `now`; costs what
  // is due (a queue of terminal orders in the order they ended), not the size of the book.
  void Sweep(absl::Time now, absl::Duration retention);

 private:
  struct Entry {
    uint64_t version = 0;
    absl::Time terminal_since = absl::InfiniteFuture();
  };
  struct Shard {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, Entry> orders ABSL_GUARDED_BY(mu);
    // (terminal_since, id) of orders that ended, oldest first; stale when the order moved on.
    std::deque<std::pair<absl::Time, std::string>> ended ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(const std::string& id) const;
  mutable std::array<Shard, kShards> shards_;
};

// Whether `status` ends an order's lifecycle.
bool IsTerminal(herald::v1::OrderStatus status);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ORDER_BOOK_H_
