#include "server/core/events.h"

#include <algorithm>
#include <utility>

namespace herald::core {

EventWatcher::EventWatcher(Filter filter, size_t capacity, std::function<void()> on_ready)
    : filter_(std::move(filter)),
      capacity_(std::max<size_t>(capacity, 1)),
      on_ready_(std::move(on_ready)) {}

bool EventWatcher::Matches(const v1::Event& event) const {
  if (!filter_.types.empty() && !filter_.types.contains(event.type())) return false;
  if (!filter_.channel.empty() && event.channel() != filter_.channel) return false;
  if (!filter_.user.empty() && event.user() != filter_.user) return false;
  return true;
}

void EventWatcher::Push(const v1::Event& event) {
  if (Enqueue(event)) Wake();
}

bool EventWatcher::Enqueue(const v1::Event& event) {
  core::MutexLock lock(&mu_);
  if (queue_.size() >= capacity_) {
    ++pending_drops_;
    ++dropped_total_;
    return false;
  }
  queue_.push_back(event);
  if (pending_drops_ > 0) {
    queue_.back().set_dropped_before(pending_drops_);
    pending_drops_ = 0;
  }
  return true;
}

std::optional<v1::Event> EventWatcher::Pop() {
  core::MutexLock lock(&mu_);
  if (queue_.empty()) return std::nullopt;
  v1::Event event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

uint64_t EventWatcher::dropped_total() const {
  core::MutexLock lock(&mu_);
  return dropped_total_;
}

std::shared_ptr<EventWatcher> EventBus::Watch(EventWatcher::Filter filter, size_t capacity,
                                              std::function<void()> on_ready,
                                              std::function<void()> on_attached) {
  auto watcher = std::make_shared<EventWatcher>(std::move(filter), capacity, std::move(on_ready));
  {
    core::MutexLock lock(&mu_);
    watchers_.push_back(watcher);
    count_.store(watchers_.size(), std::memory_order_relaxed);
  }
  if (relay_ != nullptr && !watcher->this_node_only()) {
    relay_->Attach(on_attached ? std::move(on_attached) : [] {});
  } else if (on_attached) {
    on_attached();
  }
  return watcher;
}

void EventBus::Unwatch(const EventWatcher* watcher) {
  bool relayed = false;
  {
    core::MutexLock lock(&mu_);
    auto it = std::find_if(watchers_.begin(), watchers_.end(),
                           [&](const auto& w) { return w.get() == watcher; });
    if (it == watchers_.end()) return;
    relayed = !(*it)->this_node_only();
    watchers_.erase(it);
    count_.store(watchers_.size(), std::memory_order_relaxed);
  }
  if (relayed && relay_ != nullptr) relay_->Detach();
}

void EventBus::Emit(v1::Event event) {
  if (!has_watchers()) return;
  WatchersToWake to_wake;
  Emit(std::move(event), &to_wake);
  for (const auto& w : to_wake) w->Wake();
}

void EventBus::Emit(v1::Event event, WatchersToWake* to_wake) {
  if (!has_watchers()) return;
  if (event.time_ms() == 0) event.set_time_ms(absl::ToUnixMillis(clock_()));
  if (relay_ != nullptr && relay_->others_watch()) relay_->Relay(event);
  if (watcher_count() == 0) return;
  std::vector<std::shared_ptr<EventWatcher>> watchers;
  {
    core::MutexLock lock(&mu_);
    watchers = watchers_;
  }
  for (const auto& w : watchers) {
    if (w->Matches(event) && w->Enqueue(event)) to_wake->push_back(w);
  }
}

void EventBus::EmitRemote(const v1::Event& event) {
  if (watcher_count() == 0) return;
  std::vector<std::shared_ptr<EventWatcher>> watchers;
  {
    core::MutexLock lock(&mu_);
    watchers = watchers_;
  }
  for (const auto& w : watchers) {
    if (!w->this_node_only() && w->Matches(event)) w->Push(event);
  }
}

}  // namespace herald::core
