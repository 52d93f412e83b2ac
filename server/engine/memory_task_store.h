#ifndef HERALD_SERVER_ENGINE_MEMORY_TASK_STORE_H_
#define HERALD_SERVER_ENGINE_MEMORY_TASK_STORE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"
#include "server/core/task_store.h"

namespace herald::engine {

// The single-process TaskStore: every queue's waiting tasks (a deque, FIFO), the leases by
// delivery id, the counters, and the deadlines and TTLs in one time-ordered heap, so Sweep()
// costs what is due, not what is held (entries of tasks that moved on are skipped, and dropped
// in bulk once they dominate). Owns all of it under one mutex; completions and handler calls
// happen after it is released, a completion before the handler calls its operation causes.
// Thread-safe.
class MemoryTaskStore : public core::TaskStore {
 public:
  using Clock = std::function<absl::Time()>;
  MemoryTaskStore(const core::Limits& limits, Clock clock);

  void SetEventHandler(core::TaskEventHandler* handler) override { handler_ = handler; }
  void Enqueue(const std::string& queue, core::TaskSpec spec, std::string offer_to,
               core::Done<core::Enqueued> done) override;
  void Lease(const std::string& queue, std::vector<std::string> holders,
             core::Done<std::vector<core::Lease>> done) override;
  void Ack(const std::string& delivery_id, const std::string& holder,
           core::StatusDone done) override;
  void Release(const std::string& delivery_id, const std::string& holder,
               core::StatusDone done) override;
  void List(core::Done<std::vector<core::QueueState>> done) override;
  void Sweep(absl::Time now) override;

  // Tasks waiting or leased, in all queues.
  size_t live_tasks() const;

 private:
  struct Task {
    std::string id;
    std::string queue;
    std::shared_ptr<const std::string> data_json;
    absl::Duration ack_deadline;
    absl::Time expires_at;
    uint32_t attempt = 0;
    std::string delivery_id;  // of the current or last delivery
    std::string holder;       // empty while waiting
    std::string previous_holder;
    absl::Duration granted;  // the current delivery's time
    absl::Time deadline;
    bool done = false;  // acked or expired: its entries in `due_` and `waiting` are stale
  };
  // A time at which `task` may be due: the deadline of delivery `delivery_id` or, with an empty
  // delivery id, its TTL. Stale once the task moved on; Sweep() checks.
  struct Due {
    absl::Time at;
    std::string delivery_id;
    std::weak_ptr<Task> task;
    bool operator>(const Due& other) const { return at > other.at; }
  };
  struct Queue {
    // FIFO; may hold finished (expired) tasks, skipped and compacted away.
    std::deque<std::shared_ptr<Task>> waiting;
    uint32_t waiting_live = 0;
    uint64_t dispatched = 0, acked = 0, redelivered = 0, expired = 0;
  };
  // What to tell the handler once the mutex is released.
  struct Notices {
    std::vector<std::pair<core::Lease, core::TaskTimeout>> timed_out;
    std::vector<std::string> waiting;  // queues, in order, without repeats
    void Waiting(const std::string& queue);
  };

  static core::Lease LeaseOf(const Task& task, bool with_data);
  void Deliver(Notices notices);
  // Leases `task` (waiting, not past its TTL) to `holder`.
  core::Lease Grant(const std::shared_ptr<Task>& task, const std::string& holder, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first waiting task of `q` not yet finished, or null; pops finished ones.
  std::shared_ptr<Task> Front(Queue& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The task behind lease `delivery_id` when `holder` holds it.
  absl::StatusOr<std::shared_ptr<Task>> Held(const std::string& delivery_id,
                                             const std::string& holder)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Expires `task` (leased, or waiting and still counted in `q.waiting_live`) and reports it.
  void Expire(Queue& q, Task& task, Notices& notices) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `task` from its holder and puts it at the front of its queue.
  void GiveBack(Queue& q, const std::shared_ptr<Task>& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushDue(Due due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks a task acked or expired; drops stale heap and queue entries once they dominate.
  void Finish(Queue& q, Task& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_queue_depth_;
  const Clock clock_;
  core::TaskEventHandler* handler_ = nullptr;
  mutable core::Mutex mu_;
  absl::flat_hash_map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Task>> leases_ ABSL_GUARDED_BY(mu_);
  // A min-heap on Due::at (std::push_heap with std::greater): a vector, so that stale entries of
  // finished tasks can be dropped when they outnumber the live ones.
  std::vector<Due> due_ ABSL_GUARDED_BY(mu_);
  size_t live_tasks_ ABSL_GUARDED_BY(mu_) = 0;
  // The last task number given (ids "t<n>"); see core::FirstTaskNumber.
  uint64_t next_task_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_TASK_STORE_H_
