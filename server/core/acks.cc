#include "server/core/acks.h"

#include <algorithm>

namespace herald::core {

AckWaiters::WaitId AckWaiters::Start(std::string user, absl::Time now, absl::Duration timeout) {
  core::MutexLock lock(&mu_);
  const WaitId id = ++next_id_;
  Wait& wait = waits_[id];
  wait.user = std::move(user);
  wait.started = now;
  wait.deadline = now + timeout;
  return id;
}

void AckWaiters::AddTarget(WaitId id, const std::string& channel, uint64_t offset) {
  core::MutexLock lock(&mu_);
  auto it = waits_.find(id);
  if (it == waits_.end()) return;
  it->second.targets.emplace_back(channel, offset);
  by_target_[{channel, offset}].push_back(id);
}

void AckWaiters::Await(WaitId id, Done done) {
  Ready ready;
  {
    core::MutexLock lock(&mu_);
    auto it = waits_.find(id);
    if (it == waits_.end()) return;
    Wait& wait = it->second;
    wait.done = std::move(done);
    wait.awaited = true;
    if (wait.outcome.acked() || stopped_) {
      EndLocked(it, ready);
    } else {
      expiry_.emplace(wait.deadline, id);
    }
  }
  Run(std::move(ready));
}

void AckWaiters::Cancel(WaitId id) {
  Done dropped;  // destroyed after the lock is released: it may own anything
  {
    core::MutexLock lock(&mu_);
    auto it = waits_.find(id);
    if (it == waits_.end()) return;
    UnindexLocked(id, it->second);
    if (it->second.awaited) expiry_.erase({it->second.deadline, id});
    dropped = std::move(it->second.done);
    waits_.erase(it);
  }
}

void AckWaiters::OnAck(const Session& session, const std::string& channel, uint64_t offset,
                       absl::Time now) {
  Ready ready;
  {
    core::MutexLock lock(&mu_);
    auto target = by_target_.find(std::make_pair(channel, offset));
    if (target == by_target_.end()) return;
    // Copied: ending a wait edits by_target_.
    const std::vector<WaitId> ids = target->second;
    for (WaitId id : ids) {
      auto it = waits_.find(id);
      if (it == waits_.end()) continue;
      Wait& wait = it->second;
      if (wait.outcome.acked()) continue;
      if (!wait.user.empty() && wait.user != session.user()) continue;
      wait.outcome.set_acked(true);
      wait.outcome.set_connection_id(session.id());
      wait.outcome.set_user(session.user());
      wait.outcome.set_channel(channel);
      wait.outcome.set_offset(offset);
      wait.outcome.set_latency_ms(static_cast<uint32_t>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(now - wait.started))));
      // A wait whose publish is still running keeps the outcome until Await.
      if (wait.awaited) EndLocked(it, ready);
    }
  }
  Run(std::move(ready));
}

void AckWaiters::Expire(absl::Time now) {
  Ready ready;
  {
    core::MutexLock lock(&mu_);
    while (!expiry_.empty() && expiry_.begin()->first <= now) {
      const WaitId id = expiry_.begin()->second;
      auto it = waits_.find(id);
      if (it == waits_.end()) {  // cannot happen: ended waits leave the queue
        expiry_.erase(expiry_.begin());
        continue;
      }
      EndLocked(it, ready);
    }
  }
  Run(std::move(ready));
}

void AckWaiters::ExpireAll() {
  Ready ready;
  {
    core::MutexLock lock(&mu_);
    stopped_ = true;
    while (!expiry_.empty()) {
      auto it = waits_.find(expiry_.begin()->second);
      if (it == waits_.end()) {
        expiry_.erase(expiry_.begin());
        continue;
      }
      EndLocked(it, ready);
    }
  }
  Run(std::move(ready));
}

size_t AckWaiters::size() const {
  core::MutexLock lock(&mu_);
  return waits_.size();
}

void AckWaiters::EndLocked(Waits::iterator it, Ready& ready) {
  const WaitId id = it->first;
  Wait& wait = it->second;
  UnindexLocked(id, wait);
  expiry_.erase({wait.deadline, id});
  ready.emplace_back(std::move(wait.done), std::move(wait.outcome));
  waits_.erase(it);
}

void AckWaiters::UnindexLocked(WaitId id, const Wait& wait) {
  for (const auto& target : wait.targets) {
    auto it = by_target_.find(target);
    if (it == by_target_.end()) continue;
    auto& ids = it->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) by_target_.erase(it);
  }
}

void AckWaiters::Run(Ready ready) {
  for (auto& [done, outcome] : ready) {
    if (done) done(std::move(outcome));
  }
}

}  // namespace herald::core
