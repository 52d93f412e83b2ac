#ifndef HERALD_SERVER_CORE_TASKS_H_
#define HERALD_SERVER_CORE_TASKS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/done.h"
#include "server/core/events.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"
#include "server/core/session.h"
#include "server/core/task_store.h"

namespace herald::core {

// This node's task workers: the sessions that joined each queue, the leases each holds and how
// busy each is. The queues themselves (waiting tasks, leases, deadlines, TTLs, counters) are the
// TaskStore's, shared by every node. Whenever a local worker may have room — it joined, acked or
// nacked, a lease of this node timed out, the store says TasksWaiting — the dispatcher leases
// tasks for its free workers (least busy first, at most Limits::max_tasks_per_worker each) and
// queues their `task` frames; a dispatch offers its task to this node's least busy free worker
// first. A worker that leaves or disconnects gives its leases back (redelivered elsewhere).
// Outcomes are emitted on the EventBus in the mutex's order; watchers (gRPC writes) are woken
// only after it is released. Owns the workers and this node's lease records under one mutex,
// never held while calling the store or while the store calls back; thread-safe. Task frames are
// queued on sessions under the mutex (Session::Send only queues).
class TaskDispatcher : public TaskEventHandler {
 public:
  // `node` names this node in the holders it leases for ("<node>/<connection id>"). Sets itself
  // as the store's event handler. `store`, `frames` and `events` must outlive it.
  TaskDispatcher(const Limits& limits, std::string node, TaskStore* store,
                 const FrameFactory* frames, EventBus* events);

  // Enqueues a task (offered to this node's least busy free worker of `queue`, if any).
  void Dispatch(const std::string& queue, std::shared_ptr<const std::string> data_json,
                absl::Duration ack_deadline, absl::Duration ttl,
                Done<v1::DispatchTaskResponse> done);
  // Adds the session as a worker of `queue` (idempotent) and leases waiting tasks for it.
  void Join(const std::shared_ptr<Session>& session, const std::string& queue);
  // Removes the worker; the tasks it holds go back to the front of their queue.
  void Leave(const Session& session, const std::string& queue);
  void RemoveWorker(const Session& session);
  // NOT_FOUND unless `session` holds delivery `delivery_id` now.
  void Ack(const Session& session, const std::string& delivery_id, StatusDone done);
  void Nack(const Session& session, const std::string& delivery_id, StatusDone done);
  // This node's queues (every queue a worker joined here) with their worker counts; ListQueues
  // adds up every node's and merges them with the store's state (Describe).
  v1::ListQueuesResponse Workers() const;
  static v1::ListQueuesResponse Describe(const v1::ListQueuesResponse& workers,
                                         const std::vector<QueueState>& states);
  // The connection id in a holder ("<node>/<connection id>").
  static absl::string_view ConnectionOf(absl::string_view holder);

  // TaskEventHandler
  void TasksWaiting(const std::string& queue) override;
  void TaskTimedOut(const Lease& lease, TaskTimeout why) override;

 private:
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
    std::string holder;
    absl::flat_hash_set<std::string> held;  // delivery ids
    size_t reserved = 0;                    // slots promised to a Lease or Enqueue call out
    bool closing = false;                   // a task frame was refused: the session is closing
    size_t busy() const { return held.size() + reserved; }
  };
  struct Queue {
    std::vector<Worker> workers;  // in join order (ties go to the earliest)
    bool leasing = false;         // a Lease call is out
    bool again = false;           // lease once more when it completes
  };
  // A lease one of this node's workers holds.
  struct Held {
    Lease lease;  // without data
    std::string connection_id;
    std::string user;
    bool releasing = false;  // its worker left; Release is out
  };
  // Lease calls ask for at most this many tasks (a full batch asks again).
  static constexpr size_t kLeaseBatch = 64;

  std::string HolderOf(const Session& session) const;
  // Leases waiting tasks of `queue` for free local workers (one Lease call out per queue).
  void Drain(const std::string& queue);
  void Leased(const std::string& queue, std::vector<std::string> holders,
              absl::StatusOr<std::vector<Lease>> leases);
  // Gives back leases this node cannot use (their worker left while they were granted).
  void Abandon(std::vector<Lease> leases);
  Worker* FindWorker(Queue& q, absl::string_view holder) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `lease` to its worker: sends the frame, records it, emits TASK_ASSIGNED. False when
  // the worker is gone or going.
  bool Take(Queue& q, const Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets lease `delivery_id` of this node (its worker's slot is free again); false when it
  // was not recorded. Fills `*held` with the record.
  bool Forget(const std::string& delivery_id, Held* held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The record of `delivery_id` when `session` holds it and has not left its queue.
  const Held* HeldBy(const Session& session, const std::string& delivery_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(v1::EventType type, const Lease& lease, absl::string_view connection_id,
            const std::string& user, const std::string& reason = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Limits& limits_;
  const std::string node_;
  TaskStore* const store_;
  const FrameFactory* const frames_;
  EventBus* const events_;
  mutable core::Mutex mu_;
  absl::flat_hash_map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);  // by delivery id
  WatchersToWake to_wake_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_TASKS_H_
