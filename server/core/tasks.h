#ifndef HERALD_SERVER_CORE_TASKS_H_
#define HERALD_SERVER_CORE_TASKS_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/events.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::core {

// Competing-consumer task queues. Each task is held by exactly one worker session at a time
// (the one with the fewest tasks in flight); without an ack by its deadline, on nack, or when the
// worker leaves or disconnects, it goes to another worker. With no free worker, tasks wait
// (bounded by Limits::max_queue_depth) until one joins or acks; a task past its TTL expires.
// Outcomes are emitted on the EventBus in the mutex's order, but the watchers (gRPC writes) are
// woken only after it is released. Deadlines and TTLs sit in a time-ordered queue, so Tick()
// costs what is due, not what is held. Owns all queue state under one mutex; thread-safe. Task
// frames are queued on sessions while the mutex is held (Session::Send only queues).
class TaskDispatcher {
 public:
  TaskDispatcher(const Limits& limits, const FrameFactory* frames, EventBus* events);

  absl::StatusOr<v1::DispatchTaskResponse> Dispatch(const std::string& queue,
                                                    std::shared_ptr<const std::string> data_json,
                                                    absl::Duration ack_deadline, absl::Duration ttl,
                                                    absl::Time now);
  // Adds the session as a worker of `queue` (idempotent) and hands it waiting tasks.
  void Join(const std::shared_ptr<Session>& session, const std::string& queue, absl::Time now);
  // Removes the worker; its tasks in flight are redelivered.
  void Leave(const Session& session, const std::string& queue, absl::Time now);
  void RemoveWorker(const Session& session, absl::Time now);
  absl::Status Ack(const Session& session, const std::string& delivery_id, absl::Time now);
  absl::Status Nack(const Session& session, const std::string& delivery_id, absl::Time now);
  // Redelivers tasks past their ack deadline and expires tasks past their TTL: O(log n) per task
  // that is due.
  void Tick(absl::Time now);
  v1::ListQueuesResponse List() const;

 private:
  struct Task {
    std::string id;
    std::string queue;
    std::shared_ptr<const std::string> data_json;
    absl::Duration ack_deadline;
    absl::Time expires_at;
    uint32_t attempt = 0;
    std::string delivery_id;
    const Session* holder = nullptr;
    std::string holder_id;  // the current or, while waiting, the previous holder
    std::string holder_user;
    absl::Time deadline;
    bool done = false;  // acked or expired: entries for it in `due_` are stale
  };
  // A time at which `task` may be due: its ack deadline (for `delivery_id`) or, with an empty
  // delivery id, its TTL. Stale once the task moved on; Tick() checks.
  struct Due {
    absl::Time at;
    std::string queue;
    std::string delivery_id;
    std::weak_ptr<Task> task;
    bool operator>(const Due& other) const { return at > other.at; }
  };
  // Wakes the watchers that events queued under the mutex made ready, after it is released:
  // declare one before the MutexLock.
  class WakeAfterUnlock {
   public:
    explicit WakeAfterUnlock(TaskDispatcher* d) : d_(d) {}
    ~WakeAfterUnlock();

   private:
    TaskDispatcher* const d_;
  };
  struct Worker {
    std::shared_ptr<Session> session;
    size_t in_flight = 0;
  };
  struct Queue {
    std::vector<Worker> workers;
    std::deque<std::shared_ptr<Task>> waiting;
    absl::flat_hash_map<std::string, std::shared_ptr<Task>> in_flight;  // by delivery id
    uint64_t dispatched = 0, acked = 0, redelivered = 0, expired = 0;
  };

  // Gives waiting tasks of `queue` to free workers.
  void Drain(Queue& q, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `task` to the least busy worker (not `avoid` when another is free); false when none.
  bool Assign(Queue& q, const std::shared_ptr<Task>& task, const Session* avoid, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes a task away from its holder and puts it back at the front of the queue.
  void Requeue(Queue& q, const std::shared_ptr<Task>& task, absl::Time now, const char* reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Worker* FindWorker(Queue& q, const Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushDue(Due due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks a task acked or expired; drops stale heap entries once they dominate.
  void Finish(Task& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(v1::EventType type, const Task& task, const std::string& connection_id,
            const std::string& user, const std::string& reason = "");

  const Limits& limits_;
  const FrameFactory* const frames_;
  EventBus* const events_;
  mutable core::Mutex mu_;
  absl::flat_hash_map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);
  // A min-heap on Due::at (std::push_heap with std::greater): a vector, so that stale entries of
  // finished tasks can be dropped when they outnumber the live ones.
  std::vector<Due> due_ ABSL_GUARDED_BY(mu_);
  size_t live_tasks_ ABSL_GUARDED_BY(mu_) = 0;
  WatchersToWake to_wake_ ABSL_GUARDED_BY(mu_);
  uint64_t next_task_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_TASKS_H_
