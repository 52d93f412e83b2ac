#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_ONLINE_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_ONLINE_H_

#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/core/online_registry.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_control_bus.h"
#include "server/engine/redis/redis_options.h"

namespace herald::engine {

// The OnlineRegistry of the nodes on one Redis (scripts in redis_scripts.cc): per user, how many
// connections each node process (instance) has, and when the grace period of a user with none
// left ends. Each connect and disconnect is one script; a user comes online when the first
// connection anywhere opens with no grace period running, and the node whose Due call takes a
// user whose grace period ended with no connection anywhere is the one node that reports them
// offline. Every node runs Due at most every 100 ms; it also takes the connections of dead node
// processes (the control bus's gone instances) out, so the users of a killed node go offline at
// most RedisControlBus::DeadNodeBound() + 100 ms + the grace period after it died. This node's
// own counts are also kept here and written again when Redis lost them or missed updates
// (Restore), and the users that brings back online are reported
// online again by this node. Redis unreachable: Connected and Disconnected fail with UNAVAILABLE
// (no event), Due reports nobody.
//
// Thread rules: the OnlineRegistry methods may be called from any thread and post to the
// engine's io_context; everything else and every completion is on that thread. Borrows the bus
// (instance, gone set) and the connection, which must outlive it.
class RedisOnline : public core::OnlineRegistry {
 public:
  RedisOnline(const RedisOptions& options, absl::Duration grace, asio::io_context* io,
              RedisControlBus* bus, RedisClient* commands);

  void Connected(const std::string& user, core::Done<bool> done) override;
  void Disconnected(const std::string& user, absl::Time now, core::Done<bool> done) override;
  void Due(absl::Time now, core::Done<core::OnlineChanges> done) override;

  // Engine thread only. Writes this node's counts again (RedisControlBus::SetRejoinHandler); the
  // users this brings back online (the other nodes had counted this node gone and them offline)
  // go out with the next Due.
  void Restore();

 private:
  std::string UserKey(const std::string& user) const;
  std::string InstanceKey() const;
  std::string DueKey() const;

  const std::string prefix_;
  const absl::Duration grace_;
  asio::io_context* const io_;
  RedisControlBus* const bus_;
  RedisClient* const commands_;
  // Engine thread only: this node's connections per user; when Due last ran, and whether its
  // call is in flight.
  absl::flat_hash_map<std::string, int64_t> mine_;
  // Engine thread only: users online again after Restore, until Due reports them.
  std::vector<std::string> back_online_;
  absl::Time last_due_ = absl::InfinitePast();
  bool due_in_flight_ = false;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_ONLINE_H_
