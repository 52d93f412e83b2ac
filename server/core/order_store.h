#ifndef HERALD_SERVER_CORE_ORDER_STORE_H_
#define HERALD_SERVER_CORE_ORDER_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/done.h"
#include "server/core/stream.h"

namespace herald::core {

// One version of an order, with where it goes.
struct OrderUpdate {
  std::string order_id;
  uint64_t version = 0;
  // A terminal status: the order is forgotten Limits::order_retention after it.
  bool final = false;
  std::vector<std::string> channels;
  // The publication for every channel (key = order id, key_final = final).
  PublishSpec spec;
};

struct OrderDecision {
  bool applied = false;         // false: stale (a version ≤ the latest was applied before)
  uint64_t latest_version = 0;  // the version now current
  std::vector<StreamPosition> positions;  // per channel of the update, when applied
};

// The latest version of every order (the stale-version guard), for the whole cluster. Apply()
// compares and publishes as one step: an update is published to its channels only when its
// version is greater than every version applied before, and the publications of two versions of
// one order are ordered the same way in every channel, so version 4 is never delivered after
// version 5 anywhere. Snapshots of live orders come from the broker (latest publication per key).
// Implementations are thread-safe and never block the caller.
class OrderStore {
 public:
  virtual ~OrderStore() = default;
  virtual void Apply(OrderUpdate update, Done<OrderDecision> done) = 0;
  // Orders currently tracked (Stats).
  virtual uint64_t TrackedOrders() const = 0;
  // Forgets orders that ended more than their retention ago. Called periodically.
  virtual void Sweep(absl::Time now) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ORDER_STORE_H_
