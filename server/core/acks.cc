#include "server/core/acks.h"

#include <algorithm>
#include <optional>

#include "absl/random/random.h"

namespace herald::core {

AckWaiters::AckWaiters() : next_id_(absl::Uniform<WaitId>(absl::BitGen()) >> 2) {}

AckWaiters::WaitId AckWaiters::Start(std::string user, absl::Time now, absl::Duration timeout) {
  core::MutexLock lock(&mu_);
  WaitId id = ++next_id_;
  if (id == 0) id = ++next_id_;  // 0 means "no wait"
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
  std::vector<WaitId>& waits = by_target_[{channel, offset}];
  if (std::find(waits.begin(), waits.end(), id) != waits.end()) return;
  it->second.targets.emplace_back(channel, offset);
  waits.push_back(id);
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
  std::optional<Forward> forward;
  {
    core::MutexLock lock(&mu_);
    v1::AckOutcome ack;
    ack.set_acked(true);
    ack.set_connection_id(session.id());
    ack.set_user(session.user());
    ack.set_channel(channel);
    ack.set_offset(offset);
    if (auto target = by_target_.find(std::make_pair(channel, offset));
        target != by_target_.end()) {
      // Copied: ending a wait edits by_target_.
      const std::vector<WaitId> ids = target->second;
      for (WaitId id : ids) {
        auto it = waits_.find(id);
        if (it != waits_.end()) AnswerLocked(it, ack, now, ready);
      }
    }
    if (auto remote = remote_.find(std::make_pair(channel, offset));
        remote != remote_.end() && remote->second.forwarded.insert(session.user()).second) {
      forward = Forward{remote->second.origin, remote->second.wait, std::move(ack)};
    }
  }
  Run(std::move(ready));
  if (forward.has_value() && relay_ != nullptr) {
    relay_->ForwardAck(forward->node, forward->wait, forward->ack);
  }
}

void AckWaiters::AddRemoteTarget(const std::string& origin, WaitId wait, const std::string& channel,
                                 uint64_t offset, absl::Time until) {
  core::MutexLock lock(&mu_);
  Target target(channel, offset);
  auto [it, added] = remote_.try_emplace(target);
  if (!added) return;
  it->second.origin = origin;
  it->second.wait = wait;
  remote_expiry_.emplace_back(until, std::move(target));
}

void AckWaiters::OnRemoteAck(WaitId wait, const v1::AckOutcome& ack, absl::Time now) {
  Ready ready;
  {
    core::MutexLock lock(&mu_);
    auto it = waits_.find(wait);
    if (it != waits_.end()) AnswerLocked(it, ack, now, ready);
  }
  Run(std::move(ready));
}

void AckWaiters::AnswerLocked(Waits::iterator it, const v1::AckOutcome& ack, absl::Time now,
                              Ready& ready) {
  Wait& wait = it->second;
  if (wait.outcome.acked()) return;
  if (!wait.user.empty() && wait.user != ack.user()) return;
  wait.outcome = ack;
  wait.outcome.set_acked(true);
  wait.outcome.set_latency_ms(
      static_cast<uint32_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(now - wait.started))));
  // A wait whose publish is still running keeps the outcome until Await.
  if (wait.awaited) EndLocked(it, ready);
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
    while (!remote_expiry_.empty() && remote_expiry_.front().first <= now) {
      remote_.erase(remote_expiry_.front().second);
      remote_expiry_.pop_front();
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
