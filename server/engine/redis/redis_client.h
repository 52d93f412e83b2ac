#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CLIENT_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CLIENT_H_

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/engine/redis/redis_reply.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {

// What the engine's parts send Redis commands through: one connection to one Redis
// (RedisConnection) or a Redis Cluster router (RedisClusterClient for commands,
// RedisClusterPubSub for pub/sub). An interface only, no state. Implementations are not
// thread-safe: every call, and every callback, on the engine's io_context thread.
class RedisClient {
 public:
  using Argv = std::vector<std::string>;
  using ReplyFn = absl::AnyInvocable<void(absl::StatusOr<RedisReply>)>;
  struct Handlers {
    absl::AnyInvocable<void()> on_ready;              // connected, handshake done
    absl::AnyInvocable<void()> on_down;               // after the pending callbacks failed
    absl::AnyInvocable<void(RedisReply)> on_message;  // pub/sub only: ["message", channel, data]
  };

  virtual ~RedisClient() = default;
  virtual void Start() = 0;
  // Closes for good; pending callbacks get UNAVAILABLE.
  virtual void Stop() = 0;
  virtual bool ready() const = 0;
  // Sends `argv`; `done` gets the reply, an error reply as INTERNAL (its message kept), or
  // UNAVAILABLE when the client is not ready or fails before the reply.
  virtual void Command(Argv argv, ReplyFn done) = 0;
  // EVALSHA of `script`, or EVAL when Redis answers NOSCRIPT. In a cluster, routed by keys[0]
  // (every key the script touches must share its hash slot).
  virtual void Eval(const RedisScript& script, const Argv& keys, const Argv& args,
                    ReplyFn done) = 0;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_CLIENT_H_
