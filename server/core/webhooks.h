#ifndef HERALD_SERVER_CORE_WEBHOOKS_H_
#define HERALD_SERVER_CORE_WEBHOOKS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/events.h"
#include "server/core/mutex.h"
#include "server/core/presence.h"
#include "server/core/proxy.h"

namespace herald::core {

// The webhook notifications of one node (docs/api.md, "Webhooks"), built from what the node
// already does, so the node itself has no webhook code:
// - disconnect, online, offline: a watcher on the node's EventBus for the DISCONNECT,
//   USER_ONLINE and USER_OFFLINE events this node emits (a DISCONNECT when a connection closes,
//   or after --disconnect-grace for a user, dropped when the user came back in time; a user's
//   first connection, and their last one closed with the grace passed), exactly as WatchEvents
//   sees them; events relayed from other nodes are theirs to notify;
// - join / leave: presence(), the registry the node keeps its presence channels' subscribers in
//   (it adds a subscriber when its subscription goes live and removes it when it ends, however
//   it ends), wrapping the engine's.
// Each becomes one Proxy::Notify; delivery, retries and the queue bound are the proxy's.
// Borrows the proxy and the engine's registry, which must outlive it. Thread-safe.
class Webhooks {
 public:
  using Clock = std::function<absl::Time()>;
  Webhooks(std::string node, Proxy* proxy, PresenceRegistry* presence, Clock clock);
  ~Webhooks();

  // The registry to give the node: the engine's, telling the backend about joins and leaves.
  PresenceRegistry& presence() { return presence_; }
  // Starts the disconnect, online and offline notifications (those with a route) from `events`
  // (the node's), which must outlive this or be detached first with Stop().
  void Watch(EventBus* events);
  void Stop();

 private:
  // Forwards to the engine's registry, notifying a join on Add and a leave on Remove. Remembers
  // each member's user for its leave, and notifies at most one leave per Add.
  class NotifyingPresence : public PresenceRegistry {
   public:
    NotifyingPresence(Webhooks* owner, PresenceRegistry* inner) : owner_(owner), inner_(inner) {}
    void Add(const std::string& channel, v1::ClientInfo client, StatusDone done) override;
    void Remove(const std::string& channel, const std::string& connection_id,
                StatusDone done) override;
    void Get(const std::string& channel, Done<std::vector<v1::ClientInfo>> done) override {
      inner_->Get(channel, std::move(done));
    }
    void Count(const std::string& channel, Done<Counts> done) override {
      inner_->Count(channel, std::move(done));
    }

   private:
    Webhooks* const owner_;
    PresenceRegistry* const inner_;
    core::Mutex mu_;
    // (channel, connection id) -> user, for the members of channels with a join or leave
    // webhook.
    absl::flat_hash_map<std::pair<std::string, std::string>, std::string> members_
        ABSL_GUARDED_BY(mu_);
  };

  void OnEvents();

  const std::string node_;
  Proxy* const proxy_;
  const Clock clock_;
  NotifyingPresence presence_;
  core::Mutex mu_;
  EventBus* events_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::shared_ptr<EventWatcher> watcher_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_WEBHOOKS_H_
