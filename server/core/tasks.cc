#include "server/core/tasks.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace herald::core {

TaskDispatcher::TaskDispatcher(const Limits& limits, const FrameFactory* frames, EventBus* events)
    : limits_(limits), frames_(frames), events_(events) {}

TaskDispatcher::WakeAfterUnlock::~WakeAfterUnlock() {
  WatchersToWake to_wake;
  {
    core::MutexLock lock(&d_->mu_);
    to_wake.swap(d_->to_wake_);
  }
  for (const auto& w : to_wake) w->Wake();
}

void TaskDispatcher::Emit(v1::EventType type, const Task& task, const std::string& connection_id,
                          const std::string& user, const std::string& reason) {
  if (!events_->has_watchers()) return;
  v1::Event e;
  e.set_type(type);
  e.set_queue(task.queue);
  e.set_task_id(task.id);
  e.set_delivery_id(task.delivery_id);
  e.set_attempt(task.attempt);
  e.set_connection_id(connection_id);
  e.set_user(user);
  e.set_reason(reason);
  events_->Emit(std::move(e), &to_wake_);
}

void TaskDispatcher::PushDue(Due due) {
  due_.push_back(std::move(due));
  std::push_heap(due_.begin(), due_.end(), std::greater<Due>());
}

void TaskDispatcher::Finish(Task& task) {
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
}

TaskDispatcher::Worker* TaskDispatcher::FindWorker(Queue& q, const Session* session) {
  for (Worker& w : q.workers) {
    if (w.session.get() == session) return &w;
  }
  return nullptr;
}

bool TaskDispatcher::Assign(Queue& q, const std::shared_ptr<Task>& task, const Session* avoid,
                            absl::Time now) {
  Worker* best = nullptr;
  for (int pass = 0; pass < 2 && best == nullptr; ++pass) {
    for (Worker& w : q.workers) {
      if (w.in_flight >= limits_.max_tasks_per_worker) continue;
      if (pass == 0 && w.session.get() == avoid) continue;
      if (best == nullptr || w.in_flight < best->in_flight) best = &w;
    }
  }
  if (best == nullptr) return false;
  ++task->attempt;
  task->delivery_id = absl::StrCat(task->id, ".", task->attempt);
  const absl::Duration left = task->expires_at - now;
  const uint32_t deadline_ms =
      static_cast<uint32_t>(absl::ToInt64Milliseconds(std::min(task->ack_deadline, left)));
  std::string frame =
      absl::StrCat(R"({"task":{"deliveryId":")", task->delivery_id, R"(","queue":")", task->queue,
                   R"(","data":)", *task->data_json, R"(,"ackDeadlineMs":)", deadline_ms,
                   R"(,"attempt":)", task->attempt, "}}");
  if (!best->session->Send(frames_->Make(std::move(frame)))) {
    --task->attempt;  // the worker is going away; RemoveWorker() will follow
    return false;
  }
  ++best->in_flight;
  task->holder = best->session.get();
  task->holder_id = best->session->id();
  task->holder_user = best->session->user();
  task->deadline = now + std::min(task->ack_deadline, left);
  q.in_flight[task->delivery_id] = task;
  if (task->deadline < task->expires_at) {
    PushDue(Due{task->deadline, task->queue, task->delivery_id, task});
  }
  Emit(v1::EVENT_TYPE_TASK_ASSIGNED, *task, best->session->id(), best->session->user());
  return true;
}

void TaskDispatcher::Drain(Queue& q, absl::Time now) {
  while (!q.waiting.empty()) {
    if (!Assign(q, q.waiting.front(), nullptr, now)) return;
    q.waiting.pop_front();
  }
}

void TaskDispatcher::Requeue(Queue& q, const std::shared_ptr<Task>& task, absl::Time now,
                             const char* reason) {
  q.in_flight.erase(task->delivery_id);
  const Session* previous = task->holder;
  if (Worker* w = FindWorker(q, previous); w != nullptr && w->in_flight > 0) --w->in_flight;
  task->holder = nullptr;
  ++q.redelivered;
  Emit(v1::EVENT_TYPE_TASK_REDELIVERED, *task, task->holder_id, task->holder_user, reason);
  if (!Assign(q, task, previous, now)) q.waiting.push_front(task);
}

absl::StatusOr<v1::DispatchTaskResponse> TaskDispatcher::Dispatch(
    const std::string& queue, std::shared_ptr<const std::string> data_json,
    absl::Duration ack_deadline, absl::Duration ttl, absl::Time now) {
  WakeAfterUnlock wake(this);
  core::MutexLock lock(&mu_);
  Queue& q = queues_[queue];
  if (q.waiting.size() >= limits_.max_queue_depth) {
    return absl::ResourceExhaustedError(absl::StrCat("queue: ", queue, " has ", q.waiting.size(),
                                                     " tasks waiting for a worker (the limit)"));
  }
  auto task = std::make_shared<Task>();
  task->id = absl::StrCat("t", ++next_task_);
  task->queue = queue;
  task->data_json = std::move(data_json);
  task->ack_deadline = ack_deadline;
  task->expires_at = now + ttl;
  PushDue(Due{task->expires_at, queue, "", task});
  ++live_tasks_;
  ++q.dispatched;
  v1::DispatchTaskResponse resp;
  resp.set_task_id(task->id);
  if (q.waiting.empty() && Assign(q, task, nullptr, now)) {
    resp.set_assigned_connection_id(task->holder_id);
  } else {
    q.waiting.push_back(task);
  }
  resp.set_queue_depth(static_cast<uint32_t>(q.waiting.size()));
  return resp;
}

void TaskDispatcher::Join(const std::shared_ptr<Session>& session, const std::string& queue,
                          absl::Time now) {
  WakeAfterUnlock wake(this);
  core::MutexLock lock(&mu_);
  Queue& q = queues_[queue];
  if (FindWorker(q, session.get()) == nullptr) q.workers.push_back(Worker{session, 0});
  Drain(q, now);
}

void TaskDispatcher::Leave(const Session& session, const std::string& queue, absl::Time now) {
  WakeAfterUnlock wake(this);
  core::MutexLock lock(&mu_);
  auto it = queues_.find(queue);
  if (it == queues_.end()) return;
  Queue& q = it->second;
  std::vector<std::shared_ptr<Task>> held;
  for (const auto& [id, task] : q.in_flight) {
    if (task->holder == &session) held.push_back(task);
  }
  q.workers.erase(std::remove_if(q.workers.begin(), q.workers.end(),
                                 [&](const Worker& w) { return w.session.get() == &session; }),
                  q.workers.end());
  for (const auto& task : held) Requeue(q, task, now, "worker left");
}

void TaskDispatcher::RemoveWorker(const Session& session, absl::Time now) {
  std::vector<std::string> queues;
  {
    core::MutexLock lock(&mu_);
    for (auto& [name, q] : queues_) {
      if (FindWorker(q, &session) != nullptr) queues.push_back(name);
    }
  }
  for (const std::string& name : queues) Leave(session, name, now);
}

absl::Status TaskDispatcher::Ack(const Session& session, const std::string& delivery_id,
                                 absl::Time now) {
  WakeAfterUnlock wake(this);
  core::MutexLock lock(&mu_);
  for (auto& [name, q] : queues_) {
    auto it = q.in_flight.find(delivery_id);
    if (it == q.in_flight.end()) continue;
    std::shared_ptr<Task> task = it->second;
    if (task->holder != &session) break;
    q.in_flight.erase(it);
    Finish(*task);
    if (Worker* w = FindWorker(q, &session); w != nullptr && w->in_flight > 0) --w->in_flight;
    ++q.acked;
    Emit(v1::EVENT_TYPE_TASK_ACKED, *task, session.id(), session.user());
    Drain(q, now);
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat("ack.delivery_id: ", delivery_id,
                   " is not a task this connection holds (already acked, redelivered or expired)"));
}

absl::Status TaskDispatcher::Nack(const Session& session, const std::string& delivery_id,
                                  absl::Time now) {
  WakeAfterUnlock wake(this);
  core::MutexLock lock(&mu_);
  for (auto& [name, q] : queues_) {
    auto it = q.in_flight.find(delivery_id);
    if (it == q.in_flight.end() || it->second->holder != &session) continue;
    std::shared_ptr<Task> task = it->second;  // Requeue() erases the map entry
    Requeue(q, task, now, "nack");
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat("nack.delivery_id: ", delivery_id, " is not a task this connection holds"));
}

void TaskDispatcher::Tick(absl::Time now) {
  WakeAfterUnlock wake(this);
  core::MutexLock lock(&mu_);
  while (!due_.empty() && due_.front().at <= now) {
    std::pop_heap(due_.begin(), due_.end(), std::greater<Due>());
    Due due = std::move(due_.back());
    due_.pop_back();
    std::shared_ptr<Task> task = due.task.lock();
    if (task == nullptr || task->done) continue;
    auto qit = queues_.find(due.queue);
    if (qit == queues_.end()) continue;
    Queue& q = qit->second;
    if (task->expires_at <= now) {
      // Past its TTL, wherever it is: in flight (any delivery) or waiting.
      Finish(*task);
      if (auto it = q.in_flight.find(task->delivery_id);
          it != q.in_flight.end() && it->second == task) {
        q.in_flight.erase(it);
        if (Worker* w = FindWorker(q, task->holder); w != nullptr && w->in_flight > 0) {
          --w->in_flight;
        }
      } else if (auto w = std::find(q.waiting.begin(), q.waiting.end(), task);
                 w != q.waiting.end()) {
        q.waiting.erase(w);
      }
      ++q.expired;
      Emit(v1::EVENT_TYPE_TASK_EXPIRED, *task, task->holder_id, task->holder_user, "ttl passed");
      Drain(q, now);
      continue;
    }
    // An ack deadline: still the delivery it was set for, and still held.
    if (due.delivery_id.empty() || task->delivery_id != due.delivery_id ||
        task->holder == nullptr || task->deadline > now) {
      continue;
    }
    Requeue(q, task, now, "ack deadline passed");
  }
}

v1::ListQueuesResponse TaskDispatcher::List() const {
  core::MutexLock lock(&mu_);
  v1::ListQueuesResponse resp;
  std::vector<const std::string*> names;
  for (const auto& [name, q] : queues_) names.push_back(&name);
  std::sort(names.begin(), names.end(), [](auto* a, auto* b) { return *a < *b; });
  for (const std::string* name : names) {
    const Queue& q = queues_.at(*name);
    v1::QueueInfo* info = resp.add_queues();
    info->set_queue(*name);
    info->set_workers(static_cast<uint32_t>(q.workers.size()));
    info->set_waiting(static_cast<uint32_t>(q.waiting.size()));
    info->set_dispatched(q.dispatched);
    info->set_acked(q.acked);
    info->set_redelivered(q.redelivered);
    info->set_expired(q.expired);
    for (const auto& [id, task] : q.in_flight) {
      v1::TaskInfo* t = info->add_in_flight();
      t->set_task_id(task->id);
      t->set_delivery_id(task->delivery_id);
      t->set_connection_id(task->holder_id);
      t->set_attempt(task->attempt);
      t->set_deadline_ms(absl::ToUnixMillis(task->deadline));
    }
  }
  return resp;
}

}  // namespace herald::core
