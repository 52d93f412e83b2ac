#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_ORDER_STORE_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_ORDER_STORE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/time/time.h"
#include "server/core/limits.h"
#include "server/core/order_store.h"
#include "server/engine/redis/redis_broker.h"
#include "server/engine/redis/redis_client.h"

namespace herald::engine {

// The OrderStore on Redis, for the whole cluster: "<prefix>:orders:v" (hash: order id -> latest
// version, zero-padded to 20 digits so that Lua compares them as strings, exactly, for any
// uint64) and "<prefix>:orders:e" (sorted set: ended orders by the time they are forgotten).
// Apply() is one script that forgets ended orders that are due, compares the version and, only
// when newer, runs the broker's publish step for every channel of the update: atomic across
// nodes, so version 4 is never published after 5 in any channel. TrackedOrders() is the count
// (HLEN) returned by this node's latest Apply or Sweep script: cheap, and up to the sweep
// interval old. With a Redis Cluster (RedisOptions::cluster) each channel has its own guard,
// "<prefix>:{<channel>}:ov" and ":oe" in the channel's slot, and Apply() runs the same script once
// per channel: 4 is still never published after 5 in any channel, but the channels of one update
// are no longer one step (a failure between the calls can leave it published in some of them;
// such a mixed outcome answers stale), TrackedOrders() is the largest count among the latest
// update's channels and Sweep() does nothing (each call forgets its channel's ended orders). Thread
// rules: Apply/Sweep from any thread (posted to the engine's io_context); completions on that
// thread. Borrows the broker and connection.
class RedisOrderStore : public core::OrderStore {
 public:
  RedisOrderStore(core::Limits limits, asio::io_context* io, RedisBroker* broker,
                  RedisClient* commands);

  void Apply(core::OrderUpdate update, core::Done<core::OrderDecision> done) override;
  uint64_t TrackedOrders() const override { return tracked_.load(std::memory_order_relaxed); }
  // Runs the cleanup script at most every RedisOptions::sweep_interval.
  void Sweep(absl::Time now) override;

 private:
  // Redis Cluster: one ApplyOrderScript call per channel, with that channel's own guard keys.
  void ApplyPerChannel(const core::OrderUpdate& update, std::vector<std::string> args,
                       core::Done<core::OrderDecision> done);

  const core::Limits limits_;
  asio::io_context* const io_;
  RedisBroker* const broker_;
  RedisClient* const commands_;
  std::atomic<uint64_t> tracked_{0};
  std::atomic<int64_t> next_sweep_ms_{0};
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_ORDER_STORE_H_
