#ifndef HERALD_CLIENT_CLI_SIMULATE_H_
#define HERALD_CLIENT_CLI_SIMULATE_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "herald/v1/order.pb.h"

namespace herald::cli {

struct SimulateOptions {
  std::vector<std::string> stores = {"42"};
  int customers = 25;
  // New orders per second (over all stores).
  double rate = 0.5;
  // Mean time an order spends in each status before the next one.
  absl::Duration step = absl::Seconds(4);
  // Share of orders cancelled (by the store or the customer) before they are prepared.
  double cancel_ratio = 0.08;
  uint64_t seed = 0;  // 0: random
};

// Generates a realistic stream of order versions: orders arrive at `rate` for random stores and
// customers with items from a small menu, then move created → accepted → preparing → ready →
// shipped → delivered (or are cancelled early), one version per change. Owns its open orders
// and random generator; deterministic for a fixed seed and sequence of Due() times. Not
// thread-safe.
class OrderSimulator {
 public:
  OrderSimulator(SimulateOptions options, absl::Time start);

  // Every order version due at or before `now`, oldest first (versions of one order in order).
  std::vector<v1::Order> Due(absl::Time now);
  // When the next version falls due.
  absl::Time next_due() const;
  size_t open_orders() const { return open_.size(); }
  // Ends the simulation: the next version of every open order, cancelled with cancel_reason
  // "simulation stopped", so no order stays open after the simulator; forgets them all.
  std::vector<v1::Order> CancelOpen(absl::Time now);

 private:
  struct Open {
    v1::Order order;
    absl::Time due;
  };
  v1::Order NewOrder(absl::Time now);
  // The next version of `order`; false when it has reached a terminal status.
  bool Advance(v1::Order* order, absl::Time now);
  absl::Duration Jittered(absl::Duration mean);

  const SimulateOptions options_;
  std::mt19937_64 rng_;
  std::string run_id_;
  uint64_t created_ = 0;
  absl::Time next_arrival_;
  std::vector<Open> open_;
};

}  // namespace herald::cli

#endif  // HERALD_CLIENT_CLI_SIMULATE_H_
