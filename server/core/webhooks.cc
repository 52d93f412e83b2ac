#include "server/core/webhooks.h"

#include <optional>
#include <utility>

namespace herald::core {
namespace {

// The watcher is drained as soon as it is woken (OnEvents), so this only bounds the events that
// arrive between two drains.
constexpr size_t kWatcherCapacity = 4096;

v1::ProxyRequest MemberRequest(ProxyEvent event, const std::string& node,
                               const std::string& channel, const std::string& connection_id,
                               const std::string& user, int64_t time_ms) {
  v1::ProxyRequest request;
  request.set_event(std::string(ProxyEventName(event)));
  request.set_node(node);
  request.set_connection_id(connection_id);
  request.set_user(user);
  request.set_time_ms(time_ms);
  request.set_channel(channel);
  return request;
}

// The notification of an event the watcher takes (DISCONNECT, USER_ONLINE, USER_OFFLINE).
ProxyEvent NotificationOf(v1::EventType type) {
  switch (type) {
    case v1::EVENT_TYPE_USER_ONLINE:
      return ProxyEvent::kOnline;
    case v1::EVENT_TYPE_USER_OFFLINE:
      return ProxyEvent::kOffline;
    default:
      return ProxyEvent::kDisconnect;
  }
}

}  // namespace

Webhooks::Webhooks(std::string node, Proxy* proxy, PresenceRegistry* presence, Clock clock)
    : node_(std::move(node)), proxy_(proxy), clock_(std::move(clock)), presence_(this, presence) {}

Webhooks::~Webhooks() { Stop(); }

void Webhooks::Watch(EventBus* events) {
  EventWatcher::Filter filter;
  for (v1::EventType type :
       {v1::EVENT_TYPE_DISCONNECT, v1::EVENT_TYPE_USER_ONLINE, v1::EVENT_TYPE_USER_OFFLINE}) {
    if (proxy_->Routes(NotificationOf(type), "")) filter.types.insert(type);
  }
  if (filter.types.empty()) return;  // no watcher: events stay free
  // Each node notifies the events it emits: none of another node's through the control bus.
  filter.this_node_only = true;
  std::shared_ptr<EventWatcher> watcher =
      events->Watch(std::move(filter), kWatcherCapacity, [this] { OnEvents(); });
  core::MutexLock lock(&mu_);
  events_ = events;
  watcher_ = std::move(watcher);
}

void Webhooks::Stop() {
  std::shared_ptr<EventWatcher> watcher;
  EventBus* events = nullptr;
  {
    core::MutexLock lock(&mu_);
    watcher = std::move(watcher_);
    events = events_;
    events_ = nullptr;
  }
  if (watcher != nullptr) events->Unwatch(watcher.get());
}

void Webhooks::OnEvents() {
  std::shared_ptr<EventWatcher> watcher;
  {
    core::MutexLock lock(&mu_);
    watcher = watcher_;
  }
  // Not set yet only for an event emitted while Watch() was returning; the next one takes it.
  if (watcher == nullptr) return;
  while (std::optional<v1::Event> e = watcher->Pop()) {
    const ProxyEvent event = NotificationOf(e->type());
    v1::ProxyRequest request;
    request.set_event(std::string(ProxyEventName(event)));
    request.set_node(node_);
    // online: the connection that brought the user online; offline: none (the user's last one
    // closed a grace period ago).
    request.set_connection_id(e->connection_id());
    request.set_user(e->user());
    request.set_time_ms(e->time_ms());
    if (event == ProxyEvent::kDisconnect) {
      request.set_remote_address(e->remote_address());
      request.set_code(e->code());
      request.set_reason(e->reason());
    }
    proxy_->Notify(event, "", EncodeProxyRequest(request));
  }
}

void Webhooks::NotifyingPresence::Add(const std::string& channel, v1::ClientInfo client,
                                      StatusDone done) {
  Proxy& proxy = *owner_->proxy_;
  const bool join = proxy.Routes(ProxyEvent::kJoin, channel);
  if (join || proxy.Routes(ProxyEvent::kLeave, channel)) {
    bool first = false;
    {
      core::MutexLock lock(&mu_);
      first = members_.try_emplace({channel, client.connection_id()}, client.user()).second;
    }
    if (first && join) {
      owner_->proxy_->Notify(ProxyEvent::kJoin, channel,
                             EncodeProxyRequest(MemberRequest(
                                 ProxyEvent::kJoin, owner_->node_, channel, client.connection_id(),
                                 client.user(), client.joined_at_ms())));
    }
  }
  inner_->Add(channel, std::move(client), std::move(done));
}

void Webhooks::NotifyingPresence::Remove(const std::string& channel,
                                         const std::string& connection_id, StatusDone done) {
  std::optional<std::string> user;
  {
    core::MutexLock lock(&mu_);
    if (auto it = members_.find({channel, connection_id}); it != members_.end()) {
      user = std::move(it->second);
      members_.erase(it);
    }
  }
  // The node may remove a member twice (it left while its add was on its way): one leave.
  if (user.has_value() && owner_->proxy_->Routes(ProxyEvent::kLeave, channel)) {
    owner_->proxy_->Notify(
        ProxyEvent::kLeave, channel,
        EncodeProxyRequest(MemberRequest(ProxyEvent::kLeave, owner_->node_, channel, connection_id,
                                         *user, absl::ToUnixMillis(owner_->clock_()))));
  }
  inner_->Remove(channel, connection_id, std::move(done));
}

}  // namespace herald::core
