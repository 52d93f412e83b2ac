#ifndef HERALD_SERVER_CORE_TASK_STORE_H_
#define HERALD_SERVER_CORE_TASK_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/done.h"

namespace herald::core {

// The number a store's task ids start after ("t<n+1>" is its first): its creation time in
// milliseconds since the Unix epoch, times 1000. A store that starts empty again (a restarted
// process, a Redis restarted without its data) so never gives an id it gave before, unless it gave
// more than a million a second on average since it was first created; a worker that remembers the
// ids it processed is never handed a new task under an old id.
inline uint64_t FirstTaskNumber(absl::Time created) {
  return static_cast<uint64_t>(absl::ToUnixMillis(created)) * 1000;
}

// What a dispatcher hands the store for one task.
struct TaskSpec {
  std::shared_ptr<const std::string> data_json;
  // Time a holder has to ack one delivery.
  absl::Duration ack_deadline = absl::Seconds(30);
  // Time, from Enqueue, the task may wait and be retried before it expires.
  absl::Duration ttl = absl::Minutes(10);
};

// One delivery of a task to one holder (or, in a report about a task that expired while waiting,
// its last delivery, with `holder` empty).
struct Lease {
  std::string queue;
  std::string task_id;      // unique in the cluster ("t1764590400000042")
  std::string delivery_id;  // "<task id>.<attempt>": unique per delivery
  uint32_t attempt = 0;     // 1 for the first delivery
  // "<node>/<connection id>" (see TaskStore); empty while waiting.
  std::string holder;
  // The holder of the previous delivery (empty for a first delivery).
  std::string previous_holder;
  std::shared_ptr<const std::string> data_json;  // unset in TaskStore::List
  // The time this delivery has: the task's ack deadline, cut short by its TTL.
  absl::Duration ack_deadline;
  absl::Time deadline;  // when it is redelivered without an ack
};

// The outcome of TaskStore::Enqueue.
struct Enqueued {
  std::string task_id;
  // The task's first delivery, when it was offered to a holder and taken at once.
  std::optional<Lease> lease;
  uint32_t waiting = 0;  // tasks waiting in the queue after this call
};

// One queue as TaskStore::List reports it: the state every node shares.
struct QueueState {
  std::string queue;
  uint32_t waiting = 0;
  std::vector<Lease> leased;  // oldest delivery first; data_json unset
  uint64_t dispatched = 0, acked = 0, redelivered = 0, expired = 0;
};

// Why time ended a lease or a task (TaskEventHandler::TaskTimedOut).
enum class TaskTimeout {
  kAckDeadline,  // the lease's deadline passed: the task is back at the front of its queue
  kTtl,          // the task's TTL passed, leased or waiting: it is gone
};

// Receives what a TaskStore tells the nodes. The node's worker pool implements it
// (core::TaskDispatcher). Called with no store lock held, on any thread.
class TaskEventHandler {
 public:
  virtual ~TaskEventHandler() = default;
  // `queue` has tasks waiting: lease them for this node's free workers. Called on every node
  // after a task was enqueued behind others (or offered to no one) and after a task went back to
  // the front of its queue (Release, missed deadline). May be spurious: Lease may find nothing.
  virtual void TasksWaiting(const std::string& queue) = 0;
  // Time ended `lease` without a word from its holder (see TaskTimeout). Called once, on the node
  // of `lease.holder` (whose worker's slot is free again). A task that expires while
  // waiting is reported the same way (kTtl, `holder` empty, `previous_holder` its last holder)
  // on one node: the one whose Sweep or Lease found it.
  virtual void TaskTimedOut(const Lease& lease, TaskTimeout why) = 0;
};

// The competing-consumer task queues of the cluster: waiting tasks in FIFO order, leases (a task
// handed to one holder until an ack deadline), acks, give-backs, TTL expiry, and per-queue
// counters. Workers themselves are not here: each node keeps its own (TaskDispatcher) and leases
// tasks for them, so a task dispatched on any node reaches exactly one worker anywhere, and a
// worker's node that dies only lets its leases run out (redelivery at their deadline).
//
// A holder is "<node>/<connection id>"; `<node>` names the node that must hear about the lease
// (TaskTimedOut). Every operation completes through its callback — at once or later, on any
// thread — and none blocks its caller; completions and handler calls come with no store lock
// held, in no promised order between an operation's completion and the handler calls it causes.
// Implementations are thread-safe. The shape fits Redis: a list per queue (waiting), a hash of
// tasks and of leases, a sorted set of deadlines and TTLs, each operation one Lua script.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Where this node's notices go; set once, before any other call. Must outlive the store's use.
  virtual void SetEventHandler(TaskEventHandler* handler) = 0;

  // Adds a task to the back of `queue` and counts it dispatched; its TTL runs from now. With
  // `offer_to` set and no task waiting in the queue, leases it to that holder at once (attempt 1)
  // and returns the lease; otherwise it waits and every node hears TasksWaiting(queue).
  // RESOURCE_EXHAUSTED, with nothing added, when Limits::max_queue_depth tasks already wait.
  virtual void Enqueue(const std::string& queue, TaskSpec spec, std::string offer_to,
                       Done<Enqueued> done) = 0;

  // Leases up to `holders.size()` tasks from the front of `queue`, in order, one per entry of
  // `holders` (a holder with room for n tasks appears n times, best first). Each task goes to
  // the first remaining entry that is not its previous holder, else to the first remaining one.
  // A lease's deadline is now + the task's ack deadline, cut short by its TTL; its attempt is
  // one more than the task's last. Never leases a task past its TTL (it expires instead). Fewer
  // leases than holders: the queue had no more. Two calls never lease the same task.
  virtual void Lease(const std::string& queue, std::vector<std::string> holders,
                     Done<std::vector<Lease>> done) = 0;

  // The task of lease `delivery_id` is done: forgets it and counts it acked. NOT_FOUND unless
  // `holder` holds that lease now (acked, given back, timed out, or another's).
  virtual void Ack(const std::string& delivery_id, const std::string& holder, StatusDone done) = 0;

  // Gives the task of lease `delivery_id` back (a nack, or its worker left): it goes to the
  // front of its queue, counted redelivered, and every node hears TasksWaiting. Its next lease
  // prefers another holder. NOT_FOUND as for Ack.
  virtual void Release(const std::string& delivery_id, const std::string& holder,
                       StatusDone done) = 0;

  // Every queue the store knows (one that ever had a task), by name.
  virtual void List(Done<std::vector<QueueState>> done) = 0;

  // Redelivers leases past their deadline and expires tasks past their TTL (TaskTimedOut, then
  // TasksWaiting for the queues that got a task back). Called periodically by every node; costs
  // what is due, not what is held.
  virtual void Sweep(absl::Time now) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_TASK_STORE_H_
