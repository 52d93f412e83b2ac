#include "server/core/tasks.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"

namespace herald::core {
namespace {

absl::Status NotHeld(const char* what, const std::string& delivery_id) {
  return absl::NotFoundError(
      absl::StrCat(what, ".delivery_id: ", delivery_id,
                   " is not a task this connection holds (already acked, redelivered or expired)"));
}

}  // namespace

TaskDispatcher::TaskDispatcher(const Limits& limits, std::string node, TaskStore* store,
                               const FrameFactory* frames, EventBus* events)
    : limits_(limits), node_(std::move(node)), store_(store), frames_(frames), events_(events) {
  store_->SetEventHandler(this);
}

TaskDispatcher::WakeAfterUnlock::~WakeAfterUnlock() {
  WatchersToWake to_wake;
  {
    core::MutexLock lock(&d_->mu_);
    to_wake.swap(d_->to_wake_);
  }
  for (const auto& w : to_wake) w->Wake();
}

std::string TaskDispatcher::HolderOf(const Session& session) const {
  return absl::StrCat(node_, "/", session.id());
}

absl::string_view TaskDispatcher::ConnectionOf(absl::string_view holder) {
  size_t slash = holder.find('/');
  return slash == absl::string_view::npos ? holder : holder.substr(slash + 1);
}

void TaskDispatcher::Emit(v1::EventType type, const Lease& lease, absl::string_view connection_id,
                          const std::string& user, const std::string& reason) {
  if (!events_->has_watchers()) return;
  v1::Event e;
  e.set_type(type);
  e.set_queue(lease.queue);
  e.set_task_id(lease.task_id);
  e.set_delivery_id(lease.delivery_id);
  e.set_attempt(lease.attempt);
  e.set_connection_id(std::string(connection_id));
  e.set_user(user);
  e.set_reason(reason);
  events_->Emit(std::move(e), &to_wake_);
}

TaskDispatcher::Worker* TaskDispatcher::FindWorker(Queue& q, absl::string_view holder) {
  for (Worker& w : q.workers) {
    if (w.holder == holder) return &w;
  }
  return nullptr;
}

bool TaskDispatcher::Take(Queue& q, const Lease& lease) {
  Worker* w = FindWorker(q, lease.holder);
  if (w == nullptr) return false;
  const uint32_t deadline_ms =
      static_cast<uint32_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(lease.ack_deadline)));
  std::string frame =
      absl::StrCat(R"({"task":{"deliveryId":")", lease.delivery_id, R"(","queue":")", lease.queue,
                   R"(","data":)", *lease.data_json, R"(,"ackDeadlineMs":)", deadline_ms,
                   R"(,"attempt":)", lease.attempt, "}}");
  if (!w->session->Send(frames_->Make(std::move(frame)))) {
    w->closing = true;  // RemoveWorker() follows; lease nothing more for it
    return false;
  }
  w->held.insert(lease.delivery_id);
  Held& h = held_[lease.delivery_id];
  h.lease = lease;
  h.lease.data_json = nullptr;
  h.connection_id = w->session->id();
  h.user = w->session->user();
  Emit(v1::EVENT_TYPE_TASK_ASSIGNED, lease, h.connection_id, h.user);
  return true;
}

bool TaskDispatcher::Forget(const std::string& delivery_id, Held* held) {
  auto it = held_.find(delivery_id);
  if (it == held_.end()) return false;
  if (auto q = queues_.find(it->second.lease.queue); q != queues_.end()) {
    if (Worker* w = FindWorker(q->second, it->second.lease.holder); w != nullptr) {
      w->held.erase(delivery_id);
    }
  }
  *held = std::move(it->second);
  held_.erase(it);
  return true;
}

const TaskDispatcher::Held* TaskDispatcher::HeldBy(const Session& session,
                                                   const std::string& delivery_id) const {
  auto it = held_.find(delivery_id);
  if (it == held_.end() || it->second.releasing || it->second.connection_id != session.id()) {
    return nullptr;
  }
  return &it->second;
}

void TaskDispatcher::Dispatch(const std::string& queue,
                              std::shared_ptr<const std::string> data_json,
                              absl::Duration ack_deadline, absl::Duration ttl,
                              Done<v1::DispatchTaskResponse> done) {
  std::string offer_to;
  {
    core::MutexLock lock(&mu_);
    if (auto it = queues_.find(queue); it != queues_.end()) {
      Worker* best = nullptr;
      for (Worker& w : it->second.workers) {
        if (w.closing || w.busy() >= limits_.max_tasks_per_worker) continue;
        if (best == nullptr || w.busy() < best->busy()) best = &w;
      }
      if (best != nullptr) {
        ++best->reserved;
        offer_to = best->holder;
      }
    }
  }
  TaskSpec spec{std::move(data_json), ack_deadline, ttl};
  store_->Enqueue(
      queue, std::move(spec), offer_to,
      [this, queue, offer_to, done = std::move(done)](absl::StatusOr<Enqueued> r) mutable {
        v1::DispatchTaskResponse resp;
        std::vector<Lease> unused;
        {
          WakeAfterUnlock wake(this);
          core::MutexLock lock(&mu_);
          auto it = queues_.find(queue);
          Worker* w =
              offer_to.empty() || it == queues_.end() ? nullptr : FindWorker(it->second, offer_to);
          if (w != nullptr && w->reserved > 0) --w->reserved;
          if (r.ok() && r->lease.has_value()) {
            if (it != queues_.end() && Take(it->second, *r->lease)) {
              resp.set_assigned_connection_id(std::string(ConnectionOf(offer_to)));
            } else {
              unused.push_back(*r->lease);
            }
          }
        }
        Abandon(std::move(unused));
        // The offered worker is free and the task waits behind others: lease (the store's
        // TasksWaiting may have come before this completion, while the slot was reserved).
        if (!offer_to.empty() && !(r.ok() && r->lease.has_value())) Drain(queue);
        if (!r.ok()) return done(r.status());
        resp.set_task_id(r->task_id);
        resp.set_queue_depth(r->waiting);
        done(std::move(resp));
      });
}

void TaskDispatcher::Drain(const std::string& queue) {
  std::vector<std::string> holders;
  {
    core::MutexLock lock(&mu_);
    auto it = queues_.find(queue);
    if (it == queues_.end()) return;
    Queue& q = it->second;
    if (q.leasing) {
      q.again = true;
      return;
    }
    // Free slots, least busy worker first (ties: the earliest joined), one per task wanted.
    using Slot = std::pair<size_t, size_t>;  // (busy, worker index)
    std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> free;
    for (size_t i = 0; i < q.workers.size(); ++i) {
      if (!q.workers[i].closing && q.workers[i].busy() < limits_.max_tasks_per_worker) {
        free.emplace(q.workers[i].busy(), i);
      }
    }
    while (!free.empty() && holders.size() < kLeaseBatch) {
      auto [busy, i] = free.top();
      free.pop();
      Worker& w = q.workers[i];
      ++w.reserved;
      holders.push_back(w.holder);
      if (busy + 1 < limits_.max_tasks_per_worker) free.emplace(busy + 1, i);
    }
    if (holders.empty()) return;
    q.leasing = true;
    q.again = false;
  }
  std::vector<std::string> asked = holders;
  store_->Lease(queue, std::move(asked),
                [this, queue,
                 holders = std::move(holders)](absl::StatusOr<std::vector<Lease>> leases) mutable {
                  Leased(queue, std::move(holders), std::move(leases));
                });
}

void TaskDispatcher::Leased(const std::string& queue, std::vector<std::string> holders,
                            absl::StatusOr<std::vector<Lease>> leases) {
  std::vector<Lease> unused;
  bool again = false;
  {
    WakeAfterUnlock wake(this);
    core::MutexLock lock(&mu_);
    Queue& q = queues_[queue];
    absl::flat_hash_map<std::string, size_t> reserved;
    for (const std::string& h : holders) ++reserved[h];
    for (Worker& w : q.workers) {
      if (auto it = reserved.find(w.holder); it != reserved.end()) {
        w.reserved -= std::min(w.reserved, it->second);
      }
    }
    if (leases.ok()) {
      for (const Lease& lease : *leases) {
        if (!Take(q, lease)) unused.push_back(lease);
      }
      // A full batch: the queue may have more.
      if (leases->size() == holders.size() && holders.size() == kLeaseBatch) q.again = true;
    }
    again = q.again;
    q.again = false;
    q.leasing = false;
  }
  Abandon(std::move(unused));
  if (again) Drain(queue);
}

void TaskDispatcher::Abandon(std::vector<Lease> leases) {
  for (const Lease& lease : leases) store_->Release(lease.delivery_id, lease.holder, [](auto) {});
}

void TaskDispatcher::Join(const std::shared_ptr<Session>& session, const std::string& queue) {
  {
    core::MutexLock lock(&mu_);
    Queue& q = queues_[queue];
    std::string holder = HolderOf(*session);
    if (FindWorker(q, holder) == nullptr) {
      Worker w;
      w.session = session;
      w.holder = std::move(holder);
      q.workers.push_back(std::move(w));
    }
  }
  Drain(queue);
}

void TaskDispatcher::Leave(const Session& session, const std::string& queue) {
  std::vector<Lease> held;
  {
    core::MutexLock lock(&mu_);
    auto it = queues_.find(queue);
    if (it == queues_.end()) return;
    Queue& q = it->second;
    const std::string holder = HolderOf(session);
    auto w = std::find_if(q.workers.begin(), q.workers.end(),
                          [&](const Worker& w) { return w.holder == holder; });
    if (w == q.workers.end()) return;
    for (const std::string& delivery_id : w->held) {
      if (auto h = held_.find(delivery_id); h != held_.end()) {
        h->second.releasing = true;
        held.push_back(h->second.lease);
      }
    }
    q.workers.erase(w);
  }
  std::sort(held.begin(), held.end(),
            [](const Lease& a, const Lease& b) { return a.deadline < b.deadline; });
  for (const Lease& lease : held) {
    store_->Release(lease.delivery_id, lease.holder, [this, lease](absl::Status st) {
      WakeAfterUnlock wake(this);
      core::MutexLock lock(&mu_);
      Held h;
      // NOT_FOUND: time or an ack ended the lease first, and that path forgets it.
      if (st.ok() && Forget(lease.delivery_id, &h)) {
        Emit(v1::EVENT_TYPE_TASK_REDELIVERED, h.lease, h.connection_id, h.user, "worker left");
      }
    });
  }
}

void TaskDispatcher::RemoveWorker(const Session& session) {
  std::vector<std::string> queues;
  {
    core::MutexLock lock(&mu_);
    if (queues_.empty()) return;  // every connection's close comes here: no holder to build
    const std::string holder = HolderOf(session);
    for (auto& [name, q] : queues_) {
      if (FindWorker(q, holder) != nullptr) queues.push_back(name);
    }
  }
  for (const std::string& name : queues) Leave(session, name);
}

void TaskDispatcher::Ack(const Session& session, const std::string& delivery_id, StatusDone done) {
  std::string holder;
  {
    core::MutexLock lock(&mu_);
    const Held* h = HeldBy(session, delivery_id);
    if (h == nullptr) return done(NotHeld("ack", delivery_id));
    holder = h->lease.holder;
  }
  store_->Ack(delivery_id, holder,
              [this, delivery_id, done = std::move(done)](absl::Status st) mutable {
                std::string queue;
                {
                  WakeAfterUnlock wake(this);
                  core::MutexLock lock(&mu_);
                  Held h;
                  if (st.ok() && Forget(delivery_id, &h)) {
                    queue = h.lease.queue;
                    Emit(v1::EVENT_TYPE_TASK_ACKED, h.lease, h.connection_id, h.user);
                  }
                }
                if (!queue.empty()) Drain(queue);  // a slot is free
                if (absl::IsNotFound(st)) st = NotHeld("ack", delivery_id);
                done(std::move(st));
              });
}

void TaskDispatcher::Nack(const Session& session, const std::string& delivery_id, StatusDone done) {
  std::string holder;
  {
    core::MutexLock lock(&mu_);
    const Held* h = HeldBy(session, delivery_id);
    if (h == nullptr) return done(NotHeld("nack", delivery_id));
    holder = h->lease.holder;
  }
  store_->Release(
      delivery_id, holder, [this, delivery_id, done = std::move(done)](absl::Status st) mutable {
        std::string queue;
        {
          WakeAfterUnlock wake(this);
          core::MutexLock lock(&mu_);
          Held h;
          if (st.ok() && Forget(delivery_id, &h)) {
            queue = h.lease.queue;
            Emit(v1::EVENT_TYPE_TASK_REDELIVERED, h.lease, h.connection_id, h.user, "nack");
          }
        }
        if (!queue.empty()) Drain(queue);  // the task waits, and a slot is free
        if (absl::IsNotFound(st)) st = NotHeld("nack", delivery_id);
        done(std::move(st));
      });
}

void TaskDispatcher::TasksWaiting(const std::string& queue) { Drain(queue); }

void TaskDispatcher::TaskTimedOut(const Lease& lease, TaskTimeout why) {
  const bool expired = why == TaskTimeout::kTtl;
  const v1::EventType type =
      expired ? v1::EVENT_TYPE_TASK_EXPIRED : v1::EVENT_TYPE_TASK_REDELIVERED;
  const char* reason = expired ? "ttl passed" : "ack deadline passed";
  bool freed = false;
  {
    WakeAfterUnlock wake(this);
    core::MutexLock lock(&mu_);
    Held h;
    if (Forget(lease.delivery_id, &h)) {
      freed = true;
      Emit(type, lease, h.connection_id, h.user, reason);
    } else if (lease.holder.empty()) {
      // Expired while waiting: reported by the node that found it, naming its last holder.
      Emit(type, lease, ConnectionOf(lease.previous_holder), "", reason);
    }
  }
  if (freed) Drain(lease.queue);
}

v1::ListQueuesResponse TaskDispatcher::Workers() const {
  v1::ListQueuesResponse resp;
  core::MutexLock lock(&mu_);
  std::vector<const std::string*> names;
  for (const auto& [name, q] : queues_) names.push_back(&name);
  std::sort(names.begin(), names.end(), [](auto* a, auto* b) { return *a < *b; });
  for (const std::string* name : names) {
    v1::QueueInfo* info = resp.add_queues();
    info->set_queue(*name);
    info->set_workers(static_cast<uint32_t>(queues_.at(*name).workers.size()));
  }
  return resp;
}

v1::ListQueuesResponse TaskDispatcher::Describe(const v1::ListQueuesResponse& workers,
                                                const std::vector<QueueState>& states) {
  absl::flat_hash_map<std::string, uint32_t> count;
  std::vector<std::string> names;
  for (const v1::QueueInfo& q : workers.queues()) {
    auto [it, fresh] = count.try_emplace(q.queue(), 0);
    it->second += q.workers();
    if (fresh) names.push_back(q.queue());
  }
  absl::flat_hash_map<std::string, const QueueState*> by_name;
  for (const QueueState& s : states) {
    by_name[s.queue] = &s;
    if (!count.contains(s.queue)) names.push_back(s.queue);
  }
  std::sort(names.begin(), names.end());
  v1::ListQueuesResponse resp;
  for (const std::string& name : names) {
    v1::QueueInfo* info = resp.add_queues();
    info->set_queue(name);
    if (auto it = count.find(name); it != count.end()) info->set_workers(it->second);
    auto s = by_name.find(name);
    if (s == by_name.end()) continue;
    const QueueState& state = *s->second;
    info->set_waiting(state.waiting);
    info->set_dispatched(state.dispatched);
    info->set_acked(state.acked);
    info->set_redelivered(state.redelivered);
    info->set_expired(state.expired);
    for (const Lease& lease : state.leased) {
      v1::TaskInfo* t = info->add_in_flight();
      t->set_task_id(lease.task_id);
      t->set_delivery_id(lease.delivery_id);
      t->set_connection_id(std::string(ConnectionOf(lease.holder)));
      t->set_attempt(lease.attempt);
      t->set_deadline_ms(absl::ToUnixMillis(lease.deadline));
    }
  }
  return resp;
}

}  // namespace herald::core
