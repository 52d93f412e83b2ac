#ifndef HERALD_SERVER_ENGINE_MEMORY_ORDER_STORE_H_
#define HERALD_SERVER_ENGINE_MEMORY_ORDER_STORE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"
#include "server/core/order_store.h"
#include "server/engine/memory_broker.h"

namespace herald::engine {

// The single-process OrderStore: the latest version of every order routed (terminal orders are
// forgotten Limits::order_retention after they ended), in lock stripes by order id. Apply()
// compares versions and appends the update to every channel (MemoryBroker::Append) under the
// order's stripe lock, then delivers with no lock held: the broker delivers each channel in
// offset order, so two versions of one order reach every socket in version order. Borrows the
// broker, which must outlive it. Thread-safe; completions are called before Apply returns.
class MemoryOrderStore : public core::OrderStore {
 public:
  using Clock = std::function<absl::Time()>;
  MemoryOrderStore(core::Limits limits, MemoryBroker* broker, Clock clock);

  void Apply(core::OrderUpdate update, core::Done<core::OrderDecision> done) override;
  uint64_t TrackedOrders() const override;
  // Costs what is due (a queue of terminal orders in the order they ended), not the book's size.
  void Sweep(absl::Time now) override;

 private:
  struct Entry {
    uint64_t version = 0;
    absl::Time terminal_since = absl::InfiniteFuture();
  };
  struct Stripe {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, Entry> orders ABSL_GUARDED_BY(mu);
    // (terminal_since, id) of orders that ended, oldest first; stale when the order moved on.
    std::deque<std::pair<absl::Time, std::string>> ended ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kStripes = 64;
  Stripe& StripeFor(const std::string& id) const;

  const core::Limits limits_;
  MemoryBroker* const broker_;
  const Clock clock_;
  mutable std::array<Stripe, kStripes> stripes_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_ORDER_STORE_H_
