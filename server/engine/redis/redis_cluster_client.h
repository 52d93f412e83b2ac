#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CLUSTER_CLIENT_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CLUSTER_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/functional/any_invocable.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_connection.h"
#include "server/engine/redis/redis_options.h"

namespace herald::engine {

// `base` for a connection to the cluster node "host:port" (auth, TLS and timeouts kept).
RedisOptions ClusterNodeOptions(const RedisOptions& base, const std::string& address);

// Commands to a Redis Cluster (RedisOptions::cluster): learns the slot map with CLUSTER SLOTS
// from any node it reaches (the seeds first), keeps one pipelined RedisConnection per master
// (each running the handshake, e.g. SCRIPT LOAD) and sends every command to the master of its
// slot — the slot of argv[1], or of a script's first key (a script must touch one slot only).
// PUBLISH becomes SPUBLISH, and scripts run in their Sharded() variant. A MOVED reply updates
// the slot, asks for a fresh map and retries there; ASK retries on the named node after ASKING;
// TRYAGAIN (a slot mid-migration) and CLUSTERDOWN retry after 50 ms; a command still redirected
// after 40 tries (about 2 s) fails with UNAVAILABLE.
// Ready while the map is known and every master's connection is ready; otherwise commands fail
// at once with UNAVAILABLE, as RedisConnection's. Owns the connections and the map. Not
// thread-safe: every call, and every callback, on the io_context's thread.
class RedisClusterClient : public RedisClient {
 public:
  RedisClusterClient(asio::io_context* io, RedisOptions options, std::string name,
                     std::vector<Argv> handshake, Handlers handlers);
  ~RedisClusterClient() override;

  void Start() override;
  void Stop() override;
  bool ready() const override { return ready_; }
  void Command(Argv argv, ReplyFn done) override;
  void Eval(const RedisScript& script, const Argv& keys, const Argv& args, ReplyFn done) override;

  // "host:port" of the master that serves `slot`, or "" while the map is unknown.
  std::string OwnerOf(int slot) const;
  // Every master of the current map.
  const std::set<std::string>& masters() const { return masters_; }
  // Called after every change of the slot map (RedisClusterPubSub follows it).
  void SetMapHandler(absl::AnyInvocable<void()> handler) { on_map_ = std::move(handler); }
  // Asks a reachable node for the slot map (one request at a time; retried while none answers).
  void RefreshMap();

 private:
  using Op = std::function<void(RedisConnection*, ReplyFn)>;

  // Sends `op` to `target` ("" = the master of `slot`; slot -1 = any ready master).
  void Route(int slot, std::shared_ptr<const Op> op, ReplyFn done, int attempt, std::string target,
             bool asking);
  void RouteLater(int slot, std::shared_ptr<const Op> op, ReplyFn done, int attempt,
                  std::string target, bool asking);
  RedisConnection* Node(const std::string& address);
  void OnSlots(const RedisReply& reply, const std::string& from);
  void UpdateReady();

  asio::io_context* const io_;
  const RedisOptions options_;
  const std::string name_;
  const std::vector<Argv> handshake_;
  Handlers handlers_;
  absl::AnyInvocable<void()> on_map_;
  std::map<std::string, std::unique_ptr<RedisConnection>> nodes_;  // by "host:port"
  std::vector<std::string> slots_;                                 // slot -> master address
  std::set<std::string> masters_;
  bool ready_ = false;
  bool refreshing_ = false;
  bool stopped_ = false;
  asio::steady_timer refresh_timer_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_CLUSTER_CLIENT_H_
