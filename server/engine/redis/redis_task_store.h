#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_TASK_STORE_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_TASK_STORE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "server/core/limits.h"
#include "server/core/task_store.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_options.h"
#include "server/engine/redis/redis_reply.h"

namespace herald::engine {

// The TaskStore on Redis, for the whole cluster (docs/architecture.md, "RedisEngine"): under
// "<prefix>:tasks:", a list of waiting task ids per queue, a hash per task, a hash of leases and
// one of counters per queue, and one sorted set of what is next due per task (its lease's
// deadline, or its TTL). Each operation is one Lua script (redis_scripts.cc), so two nodes never
// lease the same task, the depth limit holds across nodes, and every time is Redis' clock (the
// `now` given to Sweep is not used: nodes' clocks may differ). Notices: a script that leaves tasks
// waiting PUBLISHes the queue on "<prefix>:tasks:waiting", which every node's store subscribes to
// on the pub/sub connection and turns into TasksWaiting. Sweep, run by every node, handles what
// is due of every node (a dead node's leases come back at their deadline); a timeout of a lease
// of another node goes to that node's outbox list, which that node's own Sweep takes and turns
// into TaskTimedOut — so each node hears about its own holders only, even when its pub/sub
// connection was away meanwhile.
//
// Thread rules: the TaskStore methods may be called from any thread and post to the engine's
// io_context; everything else, and every completion and handler call, is on that io_context's
// one thread. Borrows the connections, which must outlive it.
class RedisTaskStore : public core::TaskStore {
 public:
  RedisTaskStore(const core::Limits& limits, RedisOptions options, asio::io_context* io,
                 RedisClient* commands, RedisClient* pubsub);

  void SetEventHandler(core::TaskEventHandler* handler) override { handler_ = handler; }
  void Enqueue(const std::string& queue, core::TaskSpec spec, std::string offer_to,
               core::Done<core::Enqueued> done) override;
  void Lease(const std::string& queue, std::vector<std::string> holders,
             core::Done<std::vector<core::Lease>> done) override;
  void Ack(const std::string& delivery_id, const std::string& holder,
           core::StatusDone done) override;
  void Release(const std::string& delivery_id, const std::string& holder,
               core::StatusDone done) override;
  void List(core::Done<std::vector<core::QueueState>> done) override;
  // Runs the sweep script at most every RedisOptions::task_sweep_interval (one at a time; again
  // at once while it finds a full batch).
  void Sweep(absl::Time now) override;

  // Engine thread only. The pub/sub connection is (back) up: subscribes to the notice channel,
  // then calls `subscribed` (not when the subscription fails: the connection is going down).
  void OnPubSubReady(absl::AnyInvocable<void()> subscribed);
  // Engine thread only. A pub/sub message; false when it is not on the notice channel.
  bool OnMessage(const RedisReply& message);

 private:
  // The two calls that finish a held lease (the scripts return 1, or 0 when it is not held).
  void Finish(const RedisScript& script, const std::string& delivery_id, const std::string& holder,
              core::StatusDone done);
  void RunSweep();
  // Hands this node the timeouts in `reports` ("a <lease>" / "t <lease>").
  void Report(const RedisReply& reports);
  // Tells this node that `queues` may have tasks waiting.
  void Announce(absl::flat_hash_set<std::string> queues);

  const size_t max_queue_depth_;
  const RedisOptions options_;
  const std::string root_;     // "<prefix>:tasks:", every key's start (ARGV[1] of the scripts)
  const std::string channel_;  // "<prefix>:tasks:waiting"
  asio::io_context* const io_;
  RedisClient* const commands_;
  RedisClient* const pubsub_;
  core::TaskEventHandler* handler_ = nullptr;
  std::atomic<int64_t> next_sweep_ms_{0};
  // Engine thread only.
  bool sweeping_ = false;
  // Queues this node leased from: announced after the pub/sub connection comes back, as notices
  // may have been missed while it was away.
  absl::flat_hash_set<std::string> queues_;
  // Queues whose Lease failed (Redis away): announced after the next sweep that reached Redis.
  absl::flat_hash_set<std::string> unleased_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_TASK_STORE_H_
