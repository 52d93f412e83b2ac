#ifndef HERALD_SERVER_CORE_EVENTS_H_
#define HERALD_SERVER_CORE_EVENTS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "herald/v1/broker.pb.h"
#include "server/core/mutex.h"

namespace herald::core {

// One WatchEvents subscriber: its filter and a bounded queue of matching events. When the queue
// is full, new events are dropped and counted; the next event that fits carries the count in
// `dropped_before`. Thread-safe; `on_ready` is called (without locks held) when an event was
// queued, so the transport can start writing.
class EventWatcher {
 public:
  struct Filter {
    absl::flat_hash_set<int> types;  // empty: all
    std::string channel;             // empty: any
    std::string user;                // empty: any
  };

  EventWatcher(Filter filter, size_t capacity, std::function<void()> on_ready);

  bool Matches(const v1::Event& event) const;
  void Push(const v1::Event& event);
  std::optional<v1::Event> Pop();
  uint64_t dropped_total() const;

 private:
  const Filter filter_;
  const size_t capacity_;
  const std::function<void()> on_ready_;
  mutable core::Mutex mu_;
  std::deque<v1::Event> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_drops_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
};

// Fans events out to the attached watchers. Thread-safe. Emit() is cheap when nobody watches.
class EventBus {
 public:
  std::shared_ptr<EventWatcher> Watch(EventWatcher::Filter filter, size_t capacity,
                                      std::function<void()> on_ready);
  void Unwatch(const EventWatcher* watcher);
  bool has_watchers() const { return count_.load(std::memory_order_relaxed) > 0; }
  size_t watcher_count() const { return count_.load(std::memory_order_relaxed); }
  // Stamps `time_ms` when unset and queues the event on every matching watcher.
  void Emit(v1::Event event);

 private:
  mutable core::Mutex mu_;
  std::vector<std::shared_ptr<EventWatcher>> watchers_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> count_{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_EVENTS_H_
