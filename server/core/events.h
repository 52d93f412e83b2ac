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
    // Only this node's events (the node's own use, e.g. its webhooks), not other nodes' through
    // the relay.
    bool this_node_only = false;
  };

  EventWatcher(Filter filter, size_t capacity, std::function<void()> on_ready);

  bool Matches(const v1::Event& event) const;
  bool this_node_only() const { return filter_.this_node_only; }
  // Queues the event and calls `on_ready`.
  void Push(const v1::Event& event);
  // Queues the event only; true when `on_ready` is owed (call Wake() once no lock is held).
  bool Enqueue(const v1::Event& event);
  void Wake() {
    if (on_ready_) on_ready_();
  }
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

// Watchers made ready by events queued under a caller's lock, to wake once it is released: so
// the transport's writes (gRPC StartWrite) never start under the caller's lock, while events
// still reach each watcher in the order of that lock. Not thread-safe; one per critical section.
using WatchersToWake = std::vector<std::shared_ptr<EventWatcher>>;

// A node's link to the watchers of the other nodes of its cluster (NodeControl, over the
// engine's ControlBus): this node's events go out while another node watches, and other nodes'
// events come in while this node watches. Thread-safe; never blocks.
class EventRelay {
 public:
  virtual ~EventRelay() = default;
  // True while another node has watchers: Relay() this node's events.
  virtual bool others_watch() const = 0;
  virtual void Relay(const v1::Event& event) = 0;
  // A watcher attached here; `attached` is called (any thread, possibly at once) once the other
  // nodes relay their events to this one (see ControlBus::AttachWatcher).
  virtual void Attach(std::function<void()> attached) = 0;
  virtual void Detach() = 0;
};

// Fans events out to the attached watchers, and, with a relay, to other nodes' watchers. Thread-
// safe. Emit() is cheap when nobody watches.
class EventBus {
 public:
  using Clock = std::function<absl::Time()>;
  explicit EventBus(Clock clock) : clock_(std::move(clock)) {}

  // Set once, before any watcher attaches or event is emitted; must outlive the bus's use.
  void SetRelay(EventRelay* relay) { relay_ = relay; }
  // Attaches a watcher. `on_attached` (optional) is called, from any thread and possibly before
  // this returns, once the watcher gets every node's events (at once without a relay, or for a
  // watcher of this node's events only).
  std::shared_ptr<EventWatcher> Watch(EventWatcher::Filter filter, size_t capacity,
                                      std::function<void()> on_ready,
                                      std::function<void()> on_attached = nullptr);
  void Unwatch(const EventWatcher* watcher);
  // Somebody wants this node's events: a watcher here, or on another node.
  bool has_watchers() const {
    return watcher_count() > 0 || (relay_ != nullptr && relay_->others_watch());
  }
  // Watchers attached to this node.
  size_t watcher_count() const { return count_.load(std::memory_order_relaxed); }
  // Stamps `time_ms` (from the clock) when unset, hands the event to the relay when another node
  // watches, and queues it on every matching watcher here.
  void Emit(v1::Event event);
  // The same, but the watchers it made ready are added to `to_wake` instead of woken now.
  void Emit(v1::Event event, WatchersToWake* to_wake);
  // An event another node emitted (it came through the relay): queued on this node's matching
  // watchers only (not those of this node's events only).
  void EmitRemote(const v1::Event& event);

 private:
  const Clock clock_;
  EventRelay* relay_ = nullptr;
  mutable core::Mutex mu_;
  std::vector<std::shared_ptr<EventWatcher>> watchers_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> count_{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_EVENTS_H_
