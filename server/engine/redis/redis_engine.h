#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_ENGINE_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_ENGINE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include <asio.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/core/engine.h"
#include "server/core/limits.h"
#include "server/engine/redis/redis_broker.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_control_bus.h"
#include "server/engine/redis/redis_idempotency_store.h"
#include "server/engine/redis/redis_online.h"
#include "server/engine/redis/redis_options.h"
#include "server/engine/redis/redis_order_store.h"
#include "server/engine/redis/redis_presence.h"
#include "server/engine/redis/redis_task_store.h"

namespace herald::engine {

// The engine of a cluster of nodes sharing one Redis (docs/architecture.md, "RedisEngine"):
// RedisBroker, RedisOrderStore, RedisIdempotencyStore, RedisTaskStore, RedisControlBus and
// RedisPresence and RedisOnline over two connections, one for commands (pipelined) and one for
// pub/sub (with a Redis Cluster, RedisOptions::cluster: two routers, each with one connection per
// master; docs/scaling.md, "Redis Cluster"), all driven by one io_context on a thread the engine
// owns, so no Herald I/O thread ever waits for Redis. Owns the io_context, its thread, the
// connections and the parts. RedisOptions::node must be the node's name (its task holders', its
// connections' prefix). The constructor starts connecting and returns at once; operations fail with
// UNAVAILABLE until the connections are ready (WaitReady) and whenever one is down. Thread-safe as
// its parts are; the destructor stops the thread (pending operations complete with UNAVAILABLE
// before it returns).
class RedisEngine : public core::Engine {
 public:
  RedisEngine(const core::Limits& limits, RedisOptions options);
  ~RedisEngine() override;

  core::Broker& broker() override { return *broker_; }
  core::OrderStore& orders() override { return *orders_; }
  core::IdempotencyStore& idempotency() override { return *idempotency_; }
  core::TaskStore& tasks() override { return *tasks_; }
  core::ControlBus& control() override { return *control_; }
  core::PresenceRegistry& presence() override { return *presence_; }
  core::OnlineRegistry& online() override { return *online_; }

  // Blocks the calling thread (never an I/O thread: main, tests) until both connections are
  // ready and the node is live (its first heartbeat), or `timeout` passes (UNAVAILABLE). When
  // another live node has this node's name, waits for its heartbeat to lapse (a restart after a
  // crash), at least the dead-node bound, then fails with ALREADY_EXISTS.
  absl::Status WaitReady(absl::Duration timeout);
  // How long after a node stopped its connections and presence are gone from the cluster's
  // answers (RedisControlBus::DeadNodeBound).
  absl::Duration DeadNodeBound() const { return control_->DeadNodeBound(); }
  const RedisOptions& options() const { return options_; }
  // Both connections are up (health checks). Any thread; never blocks.
  bool ready() const { return commands_up_.load() && pubsub_up_.load(); }
  // kLeave: the node leaves the cluster at once (it is no longer live, its presence entries are
  // gone). kVanish: as a node that died, without a word: the others drop it after the dead-node
  // bound (tests).
  enum class Departure { kLeave, kVanish };
  // Leaves the cluster (see Departure), closes the connections (pending operations complete with
  // UNAVAILABLE, on the engine thread) and joins the thread. Call it while the users of the
  // completions still exist (main: after the drain, before the Hub goes). Idempotent; the
  // destructor calls it.
  void Shutdown(Departure departure = Departure::kLeave);

 private:
  const RedisOptions options_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  // One Redis: a RedisConnection each. A Redis Cluster: RedisClusterClient and
  // RedisClusterPubSub (connections per master).
  std::unique_ptr<RedisClient> commands_;
  std::unique_ptr<RedisClient> pubsub_;
  std::unique_ptr<RedisBroker> broker_;
  std::unique_ptr<RedisOrderStore> orders_;
  std::unique_ptr<RedisIdempotencyStore> idempotency_;
  std::unique_ptr<RedisTaskStore> tasks_;
  std::unique_ptr<RedisControlBus> control_;
  std::unique_ptr<RedisPresence> presence_;
  std::unique_ptr<RedisOnline> online_;
  std::thread thread_;
  std::atomic<bool> commands_up_{false};
  std::atomic<bool> pubsub_up_{false};
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_ENGINE_H_
