#ifndef HERALD_SERVER_CORE_ONLINE_REGISTRY_H_
#define HERALD_SERVER_CORE_ONLINE_REGISTRY_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/done.h"

namespace herald::core {

// What OnlineRegistry::Due reports: users now offline, and users online again without a new
// connection (a node that the others had counted gone came back with their connections).
struct OnlineChanges {
  std::vector<std::string> online;
  std::vector<std::string> offline;
};

// Decides when a user goes online and offline in the cluster (USER_ONLINE / USER_OFFLINE
// events): online when their first connection on any node is announced, offline when their last
// one anywhere has closed and none opened anywhere within the grace period
// (Limits::disconnect_grace). Each change is reported to exactly one node, which emits the event
// (other nodes' watchers get it through the ControlBus). core::OnlineUsers: one node; a Redis
// registry: every node on the Redis. Never blocks; completions may run on any thread, at once or
// later. Implementations are thread-safe.
class OnlineRegistry {
 public:
  virtual ~OnlineRegistry() = default;
  // An announced connection of `user` opened on this node. `done` gets true when the user came
  // online with it (no other connection anywhere, and none closed within the grace period).
  virtual void Connected(const std::string& user, Done<bool> done) = 0;
  // An announced connection of `user` on this node closed at `now`. `done` gets true when the
  // user is offline at once (it was their last connection and there is no grace period);
  // otherwise Due reports it later, unless the user connects again first.
  virtual void Disconnected(const std::string& user, absl::Time now, Done<bool> done) = 0;
  // Called periodically: `done` gets the users whose grace period ended by `now` with no
  // connection anywhere, and the users that came online again with connections this node had
  // all along (after the other nodes counted it gone and its users offline); each change is given
  // to one node only. Costs what is due.
  virtual void Due(absl::Time now, Done<OnlineChanges> done) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ONLINE_REGISTRY_H_
