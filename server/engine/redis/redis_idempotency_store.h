#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_IDEMPOTENCY_STORE_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_IDEMPOTENCY_STORE_H_

#include <memory>
#include <string>

#include <asio.hpp>

#include "absl/time/time.h"
#include "server/core/idempotency_store.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_options.h"

namespace herald::engine {

// The IdempotencyStore on Redis, for the whole cluster: one key per (channel, idempotency key),
// "<prefix>:{channel}:i:<key>". The first Run sets it to a "running" marker with SET NX PX
// (RedisOptions::running_ttl), publishes, then stores "d" + the serialized delivery for the
// window; a failed publish deletes the marker. A repeat that finds the marker (this node's or
// another's) looks again on an Asio timer every repeat_poll, for at most repeat_wait (then
// UNAVAILABLE): no thread waits. Thread rules: Run from any thread (posted to the engine's
// io_context); completions and the publish call on that thread. Borrows the connection.
class RedisIdempotencyStore : public core::IdempotencyStore {
 public:
  RedisIdempotencyStore(absl::Duration window, RedisOptions options, asio::io_context* io,
                        RedisClient* commands);

  void Run(const std::string& channel, const std::string& key, PublishFn publish,
           core::Done<Result> done) override;
  // Nothing to do: Redis expires the keys (PX).
  void Sweep(absl::Time) override {}

 private:
  struct Attempt;
  void Claim(std::shared_ptr<Attempt> attempt);
  void Look(std::shared_ptr<Attempt> attempt);
  void Finish(std::shared_ptr<Attempt> attempt, absl::StatusOr<v1::ChannelDelivery> result);

  const absl::Duration window_;
  const RedisOptions options_;
  asio::io_context* const io_;
  RedisClient* const commands_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_IDEMPOTENCY_STORE_H_
