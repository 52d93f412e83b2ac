#include "server/engine/memory_task_store.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace herald::engine {

MemoryTaskStore::MemoryTaskStore(const core::Limits& limits, Clock clock)
    : max_queue_depth_(limits.max_queue_depth),
      clock_(std::move(clock)),
      next_task_(core::FirstTaskNumber(clock_())) {}

void MemoryTaskStore::Notices::Waiting(const std::string& queue) {
  if (std::find(waiting.begin(), waiting.end(), queue) == waiting.end()) waiting.push_back(queue);
}

void MemoryTaskStore::Deliver(Notices notices) {
  if (handler_ == nullptr) return;
  for (const auto& [lease, why] : notices.timed_out) handler_->TaskTimedOut(lease, why);
  for (const std::string& queue : notices.waiting) handler_->TasksWaiting(queue);
}

core::Lease MemoryTaskStore::LeaseOf(const Task& task, bool with_data) {
  core::Lease lease;
  lease.queue = task.queue;
  lease.task_id = task.id;
  lease.delivery_id = task.delivery_id;
  lease.attempt = task.attempt;
  lease.holder = task.holder;
  lease.previous_holder = task.previous_holder;
  if (with_data) lease.data_json = task.data_json;
  lease.ack_deadline = task.granted;
  lease.deadline = task.deadline;
  return lease;
}

void MemoryTaskStore::PushDue(Due due) {
  due_.push_back(std::move(due));
  std::push_heap(due_.begin(), due_.end(), std::greater<Due>());
}

void MemoryTaskStore::Finish(Queue& q, Task& task) {
  task.done = true;
  --live_tasks_;
  // Each live task has at most two entries (TTL, current deadline); past four per live task
  // (and a floor), most are stale: rebuild without them.
  if (due_.size() > 1024 && due_.size() > 4 * live_tasks_) {
    due_.erase(std::remove_if(due_.begin(), due_.end(),
                              [](const Due& d) {
                                std::shared_ptr<Task> t = d.task.lock();
                                return t == nullptr || t->done;
                              }),
               due_.end());
    std::make_heap(due_.begin(), due_.end(), std::greater<Due>());
  }
  // Likewise for tasks that expired while waiting (skipped when they reach the front).
  if (q.waiting.size() > 64 && q.waiting.size() > 2 * size_t{q.waiting_live}) {
    q.waiting.erase(std::remove_if(q.waiting.begin(), q.waiting.end(),
                                   [](const std::shared_ptr<Task>& t) { return t->done; }),
                    q.waiting.end());
  }
}

std::shared_ptr<MemoryTaskStore::Task> MemoryTaskStore::Front(Queue& q) {
  while (!q.waiting.empty() && q.waiting.front()->done) q.waiting.pop_front();
  return q.waiting.empty() ? nullptr : q.waiting.front();
}

core::Lease MemoryTaskStore::Grant(const std::shared_ptr<Task>& task, const std::string& holder,
                                   absl::Time now) {
  ++task->attempt;
  task->delivery_id = absl::StrCat(task->id, ".", task->attempt);
  task->holder = holder;
  task->granted = std::min(task->ack_deadline, task->expires_at - now);
  task->deadline = now + task->granted;
  leases_[task->delivery_id] = task;
  if (task->deadline < task->expires_at) {
    // A deadline at the TTL is left to the TTL's entry.
    PushDue(Due{task->deadline, task->delivery_id, task});
  }
  return LeaseOf(*task, /*with_data=*/true);
}

void MemoryTaskStore::Enqueue(const std::string& queue, core::TaskSpec spec, std::string offer_to,
                              core::Done<core::Enqueued> done) {
  absl::StatusOr<core::Enqueued> out = core::Enqueued();
  Notices notices;
  {
    const absl::Time now = clock_();
    core::MutexLock lock(&mu_);
    Queue& q = queues_[queue];
    if (q.waiting_live >= max_queue_depth_) {
      out = absl::ResourceExhaustedError(absl::StrCat("queue: ", queue, " has ", q.waiting_live,
                                                      " tasks waiting for a worker (the limit)"));
    } else {
      auto task = std::make_shared<Task>();
      task->id = absl::StrCat("t", ++next_task_);
      task->queue = queue;
      task->data_json = std::move(spec.data_json);
      task->ack_deadline = spec.ack_deadline;
      task->expires_at = now + spec.ttl;
      PushDue(Due{task->expires_at, "", task});
      ++live_tasks_;
      ++q.dispatched;
      out->task_id = task->id;
      if (!offer_to.empty() && q.waiting_live == 0 && task->expires_at > now) {
        out->lease = Grant(task, offer_to, now);
      } else {
        q.waiting.push_back(task);
        ++q.waiting_live;
        notices.Waiting(queue);
      }
      out->waiting = q.waiting_live;
    }
  }
  done(std::move(out));
  Deliver(std::move(notices));
}

void MemoryTaskStore::Lease(const std::string& queue, std::vector<std::string> holders,
                            core::Done<std::vector<core::Lease>> done) {
  std::vector<core::Lease> leases;
  Notices notices;
  {
    const absl::Time now = clock_();
    core::MutexLock lock(&mu_);
    auto it = queues_.find(queue);
    while (it != queues_.end() && !holders.empty()) {
      Queue& q = it->second;
      std::shared_ptr<Task> task = Front(q);
      if (task == nullptr) break;
      if (task->expires_at <= now) {
        Expire(q, *task, notices);  // popped by Front() next
        continue;
      }
      q.waiting.pop_front();
      --q.waiting_live;
      auto to = std::find_if(holders.begin(), holders.end(),
                             [&](const std::string& h) { return h != task->previous_holder; });
      if (to == holders.end()) to = holders.begin();
      leases.push_back(Grant(task, *to, now));
      holders.erase(to);
    }
  }
  done(std::move(leases));
  Deliver(std::move(notices));
}

absl::StatusOr<std::shared_ptr<MemoryTaskStore::Task>> MemoryTaskStore::Held(
    const std::string& delivery_id, const std::string& holder) {
  auto it = leases_.find(delivery_id);
  if (it == leases_.end() || it->second->holder != holder) {
    return absl::NotFoundError(absl::StrCat("delivery_id: ", delivery_id, " is not leased to ",
                                            holder,
                                            " (acked, given back, timed out or another's)"));
  }
  return it->second;
}

void MemoryTaskStore::Ack(const std::string& delivery_id, const std::string& holder,
                          core::StatusDone done) {
  absl::Status status;
  {
    core::MutexLock lock(&mu_);
    absl::StatusOr<std::shared_ptr<Task>> task = Held(delivery_id, holder);
    if (task.ok()) {
      leases_.erase(delivery_id);
      Queue& q = queues_[(*task)->queue];
      ++q.acked;
      Finish(q, **task);
    } else {
      status = task.status();
    }
  }
  done(std::move(status));
}

void MemoryTaskStore::GiveBack(Queue& q, const std::shared_ptr<Task>& task) {
  leases_.erase(task->delivery_id);
  task->previous_holder = std::move(task->holder);
  task->holder.clear();
  q.waiting.push_front(task);
  ++q.waiting_live;
  ++q.redelivered;
}

void MemoryTaskStore::Release(const std::string& delivery_id, const std::string& holder,
                              core::StatusDone done) {
  absl::Status status;
  Notices notices;
  {
    core::MutexLock lock(&mu_);
    absl::StatusOr<std::shared_ptr<Task>> task = Held(delivery_id, holder);
    if (task.ok()) {
      GiveBack(queues_[(*task)->queue], *task);
      notices.Waiting((*task)->queue);
    } else {
      status = task.status();
    }
  }
  done(std::move(status));
  Deliver(std::move(notices));
}

void MemoryTaskStore::Expire(Queue& q, Task& task, Notices& notices) {
  if (!task.holder.empty()) {
    leases_.erase(task.delivery_id);
  } else {
    --q.waiting_live;  // its entry in `q.waiting` is skipped from now on
  }
  ++q.expired;
  Finish(q, task);
  notices.timed_out.emplace_back(LeaseOf(task, /*with_data=*/false), core::TaskTimeout::kTtl);
}

void MemoryTaskStore::Sweep(absl::Time now) {
  Notices notices;
  {
    core::MutexLock lock(&mu_);
    while (!due_.empty() && due_.front().at <= now) {
      std::pop_heap(due_.begin(), due_.end(), std::greater<Due>());
      Due due = std::move(due_.back());
      due_.pop_back();
      std::shared_ptr<Task> task = due.task.lock();
      if (task == nullptr || task->done) continue;
      Queue& q = queues_[task->queue];
      if (task->expires_at <= now) {
        Expire(q, *task, notices);
        continue;
      }
      // An ack deadline: still the delivery it was set for, and still held.
      if (due.delivery_id.empty() || task->delivery_id != due.delivery_id || task->holder.empty() ||
          task->deadline > now) {
        continue;
      }
      notices.timed_out.emplace_back(LeaseOf(*task, /*with_data=*/false),
                                     core::TaskTimeout::kAckDeadline);
      GiveBack(q, task);
      notices.Waiting(task->queue);
    }
  }
  Deliver(std::move(notices));
}

void MemoryTaskStore::List(core::Done<std::vector<core::QueueState>> done) {
  std::vector<core::QueueState> out;
  {
    core::MutexLock lock(&mu_);
    for (const auto& [name, q] : queues_) {
      core::QueueState s;
      s.queue = name;
      s.waiting = q.waiting_live;
      s.dispatched = q.dispatched;
      s.acked = q.acked;
      s.redelivered = q.redelivered;
      s.expired = q.expired;
      out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(), [](const core::QueueState& a, const core::QueueState& b) {
      return a.queue < b.queue;
    });
    for (const auto& [id, task] : leases_) {
      auto q = std::lower_bound(
          out.begin(), out.end(), task->queue,
          [](const core::QueueState& s, const std::string& name) { return s.queue < name; });
      if (q != out.end() && q->queue == task->queue) {
        q->leased.push_back(LeaseOf(*task, /*with_data=*/false));
      }
    }
  }
  for (core::QueueState& q : out) {
    std::sort(q.leased.begin(), q.leased.end(), [](const core::Lease& a, const core::Lease& b) {
      return a.deadline - a.ack_deadline < b.deadline - b.ack_deadline;
    });
  }
  done(std::move(out));
}

size_t MemoryTaskStore::live_tasks() const {
  core::MutexLock lock(&mu_);
  return live_tasks_;
}

}  // namespace herald::engine
