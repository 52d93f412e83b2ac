#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_PRESENCE_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_PRESENCE_H_

#include <string>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "server/core/presence.h"
#include "server/engine/redis/redis_broker.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_control_bus.h"

namespace herald::engine {

// The PresenceRegistry on Redis, for the whole cluster. Per channel C, the hash
// "<prefix>:{C}:presence": connection id -> EncodePresence(owner node, instance, client). Each
// process also lists the entries it wrote in its own set (RedisControlBus::PresenceSetKey), so
// that they can be removed once it is gone. Reads (one script) return only the entries whose
// owner node is live with the instance that wrote them: a dead node's entries vanish from
// Presence and PresenceStats when its heartbeat lapses (RedisControlBus::DeadNodeBound), and the
// heartbeats of the live nodes then delete them from Redis, 256 per heartbeat. This node's own
// entries are also kept here and written again when its node was not live for a while, or Redis
// came back (RedisControlBus::SetRejoinHandler), so a lapse or a Redis restart does not lose
// them.
//
// Thread rules: the PresenceRegistry methods may be called from any thread and post to the
// engine's io_context; everything else and every completion is on that thread. Borrows the broker
// (key names), the bus and the connection, which must outlive it.
class RedisPresence : public core::PresenceRegistry {
 public:
  RedisPresence(std::string node, asio::io_context* io, RedisBroker* broker, RedisControlBus* bus,
                RedisClient* commands);

  void Add(const std::string& channel, v1::ClientInfo client, core::StatusDone done) override;
  void Remove(const std::string& channel, const std::string& connection_id,
              core::StatusDone done) override;
  void Get(const std::string& channel, core::Done<std::vector<v1::ClientInfo>> done) override;
  void Count(const std::string& channel, core::Done<Counts> done) override;

  // Engine thread only. Writes every entry of this node again, and retries the removals that
  // failed.
  void Restore();

 private:
  void Write(const std::string& channel, const v1::ClientInfo& client, core::StatusDone done);
  void Erase(const std::string& channel, const std::string& connection_id, core::StatusDone done);
  // The member of this process's set naming one entry.
  // The channel's presence hash: in the cluster-wide slot (ClusterWideKey), beside the nodes the
  // heartbeat script reaps it by.
  std::string PresenceKey(const std::string& channel) const;
  static std::string Member(const std::string& hash, const std::string& connection_id);

  const std::string node_;
  asio::io_context* const io_;
  RedisBroker* const broker_;
  RedisControlBus* const bus_;
  RedisClient* const commands_;
  // Engine thread only: this node's entries (channel -> connection id -> client), and the
  // removals Redis did not confirm.
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, v1::ClientInfo>> mine_;
  absl::flat_hash_set<std::pair<std::string, std::string>> unremoved_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_PRESENCE_H_
