#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_BROKER_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_BROKER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/random/random.h"
#include "server/core/broker.h"
#include "server/core/limits.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_options.h"

namespace herald::engine {

// The Broker on Redis (Centrifuge-style). Per channel C, under "<prefix>:{C}:": `m` (hash: epoch
// e, offset o), `h` (stream: the bounded history), `k` (hash: latest publication per key), `x`
// (sorted set: final keys by the time they leave snapshots); and the pub/sub channel
// "<prefix>:{C}:p". One Lua script per operation (redis_scripts.cc) increments the offset,
// appends, trims and PUBLISHes atomically, so every node sees one order with identical offsets.
// Node subscriptions are counted here and map to one SUBSCRIBE on the pub/sub connection;
// publications reach the handler on the engine thread, in the order that connection delivers
// them (offset order per channel). A Join completes only after the pub/sub connection delivered
// everything published before the Join read (a PING barrier), so nothing at or below the joined
// position reaches the handler after the join. After the pub/sub connection comes back, each
// subscribed channel is resubscribed and what was published meanwhile is replayed from history
// to the handler (when the history still covers it).
//
// Thread rules: the public Broker methods may be called from any thread and post to the engine's
// io_context; everything else, all state, and every completion and HandlePublication call, is on
// that io_context's one thread. Borrows the connections, which must outlive it.
class RedisBroker : public core::Broker {
 public:
  RedisBroker(core::Limits limits, RedisOptions options, asio::io_context* io,
              RedisClient* commands, RedisClient* pubsub);

  void SetEventHandler(core::BrokerEventHandler* handler) override { handler_ = handler; }
  void Publish(const std::string& channel, core::PublishSpec spec,
               core::Done<core::StreamPosition> done) override;
  void Subscribe(const std::string& channel, core::StatusDone done) override;
  void Unsubscribe(const std::string& channel) override;
  void Join(const std::string& channel, core::JoinSpec spec,
            core::Done<core::JoinResult> done) override;
  void History(const std::string& channel, core::HistoryQuery query,
               core::Done<core::HistoryResult> done) override;
  // Nothing to do: Redis expires history (stream TTL and trimming in the scripts), meta and
  // final keys itself.
  void Sweep(absl::Time) override {}

  // Engine thread only. The pub/sub connection's events.
  void OnPubSubReady();
  void OnPubSubDown();
  void OnMessage(RedisReply message);

  // Engine thread only. Appends the four keys of `channel` to `keys` and its publish arguments
  // (pub/sub channel, epoch candidate, history size, history ttl ms) to `args`: the per-channel
  // part of the publish step, shared with RedisOrderStore's script.
  void AppendChannel(const std::string& channel, std::vector<std::string>* keys,
                     std::vector<std::string>* args);
  std::string Key(const std::string& channel, const char* kind) const;
  const RedisOptions& options() const { return options_; }

 private:
  // This node's subscription to one channel.
  struct ChannelSub {
    int64_t count = 0;                      // Subscribe minus Unsubscribe calls
    bool live = false;                      // Redis confirmed the SUBSCRIBE: messages are handled
    uint64_t generation = 0;                // of the SUBSCRIBE in flight or confirmed
    bool subscribing = false;               // a SUBSCRIBE is in flight
    std::vector<core::StatusDone> waiting;  // Subscribe calls until live
    std::optional<core::StreamPosition> last;  // last publication handed to the handler
    bool was_live = false;                     // live before: a SUBSCRIBE now is a resubscription
    // Replaying the gap after a resubscription: live messages wait here. Joins (and Subscribe
    // calls) that arrive while the channel is being resubscribed or replayed wait in
    // `after_fill`, completed with OK when it is live and replayed, or with the error.
    bool filling = false;
    std::vector<core::Publication> buffered;
    std::vector<core::StatusDone> after_fill;
  };

  void SendSubscribe(const std::string& channel, ChannelSub& sub);
  void OnSubscribed(const std::string& channel, uint64_t generation, absl::Status status);
  void Fill(const std::string& channel, uint64_t generation);
  // Runs Fill again in 100 ms, when `generation` is still the channel's live subscription.
  void RetryFill(const std::string& channel, uint64_t generation);
  void Deliver(ChannelSub& sub, core::Publication p);
  static void FinishFill(ChannelSub& sub, const absl::Status& status);
  // Completes `done` once everything published up to now has been handled (see class comment).
  void Barrier(const std::string& channel, absl::AnyInvocable<void(absl::Status)> done);
  void RunJoin(const std::string& channel, const core::JoinSpec& spec,
               core::Done<core::JoinResult> done);
  std::string PubSubChannel(const std::string& channel) const;
  std::string NewEpoch();

  const core::Limits limits_;
  const RedisOptions options_;
  asio::io_context* const io_;
  RedisClient* const commands_;
  RedisClient* const pubsub_;
  core::BrokerEventHandler* handler_ = nullptr;
  // Engine thread only.
  absl::flat_hash_map<std::string, ChannelSub> subs_;
  uint64_t next_generation_ = 0;
  absl::BitGen bitgen_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_BROKER_H_
