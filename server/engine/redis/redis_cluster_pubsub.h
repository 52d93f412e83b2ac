#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CLUSTER_PUBSUB_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CLUSTER_PUBSUB_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <asio.hpp>

#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_cluster_client.h"
#include "server/engine/redis/redis_connection.h"
#include "server/engine/redis/redis_options.h"

namespace herald::engine {

// Sharded pub/sub on a Redis Cluster, behind the pub/sub interface the engine's parts use with
// one Redis: SUBSCRIBE c becomes SSUBSCRIBE c on a pub/sub connection to the master that owns
// c's slot (one connection per master, following RedisClusterClient's slot map), UNSUBSCRIBE c
// SUNSUBSCRIBE there, and PING answers once every master's connection answered (a barrier for
// all shards). Pushed "smessage"s reach `on_message` as "message"s. When a channel's slot moved
// (a new map, or the "sunsubscribe" Redis pushes when it migrates a slot) it reports down, then
// ready again: the parts resubscribe (now on the new owner) and recover what they missed from
// the history, as after a reconnect. Ready while every master's connection is (and no moved slot
// is being followed). Owns its
// connections; `map` must outlive it. Not thread-safe: the io_context's thread only.
class RedisClusterPubSub : public RedisClient {
 public:
  RedisClusterPubSub(asio::io_context* io, RedisOptions options, RedisClusterClient* map,
                     Handlers handlers);
  ~RedisClusterPubSub() override;

  void Start() override;
  void Stop() override;
  bool ready() const override { return ready_; }
  // SUBSCRIBE, UNSUBSCRIBE (one channel each) and PING only.
  void Command(Argv argv, ReplyFn done) override;
  // Scripts do not run on pub/sub connections: UNIMPLEMENTED.
  void Eval(const RedisScript& script, const Argv& keys, const Argv& args, ReplyFn done) override;

 private:
  RedisConnection* Node(const std::string& address);
  void OnMap();
  void OnPush(RedisReply push);
  // Down, then ready again when it is: the parts resubscribe every channel.
  void Bounce();
  // A channel's slot moved (an unsolicited "sunsubscribe", or MOVED to an SSUBSCRIBE): down
  // until the slot map changed (asked every 100 ms, at most 2 s), then ready again.
  void Follow();
  void UpdateReady();

  asio::io_context* const io_;
  const RedisOptions options_;
  RedisClusterClient* const map_;
  Handlers handlers_;
  std::map<std::string, std::unique_ptr<RedisConnection>> nodes_;  // by "host:port"
  std::map<std::string, std::string> subscribed_;                  // channel -> its master
  bool ready_ = false;
  bool stopped_ = false;
  bool following_ = false;
  std::chrono::steady_clock::time_point follow_since_;
  asio::steady_timer follow_timer_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_CLUSTER_PUBSUB_H_
