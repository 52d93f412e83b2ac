#include "server/core/acks.h"

#include <algorithm>

namespace herald::core {

v1::AckOutcome AckWaiters::Waiter::Wait(absl::Duration timeout) {
  done_.WaitForNotificationWithTimeout(timeout);
  core::MutexLock lock(&mu_);
  return outcome_;
}

std::shared_ptr<AckWaiters::Waiter> AckWaiters::Start(std::string user, absl::Time now) {
  return std::make_shared<Waiter>(std::move(user), now);
}

void AckWaiters::AddTarget(const std::shared_ptr<Waiter>& waiter, const std::string& channel,
                           uint64_t offset) {
  core::MutexLock lock(&mu_);
  waiter->targets_.emplace_back(channel, offset);
  by_target_[{channel, offset}].push_back(waiter);
}

void AckWaiters::Finish(const std::shared_ptr<Waiter>& waiter) {
  core::MutexLock lock(&mu_);
  for (const auto& target : waiter->targets_) {
    auto it = by_target_.find(target);
    if (it == by_target_.end()) continue;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), waiter), list.end());
    if (list.empty()) by_target_.erase(it);
  }
}

void AckWaiters::OnAck(const Session& session, const std::string& channel, uint64_t offset,
                       absl::Time now) {
  std::vector<std::shared_ptr<Waiter>> matched;
  {
    core::MutexLock lock(&mu_);
    auto it = by_target_.find(std::make_pair(channel, offset));
    if (it == by_target_.end()) return;
    for (const auto& w : it->second) {
      if (w->user_.empty() || w->user_ == session.user()) matched.push_back(w);
    }
  }
  for (const auto& w : matched) {
    core::MutexLock lock(&w->mu_);
    if (w->outcome_.acked()) continue;
    w->outcome_.set_acked(true);
    w->outcome_.set_connection_id(session.id());
    w->outcome_.set_user(session.user());
    w->outcome_.set_channel(channel);
    w->outcome_.set_offset(offset);
    w->outcome_.set_latency_ms(
        static_cast<uint32_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(now - w->started_))));
    w->done_.Notify();
  }
}

}  // namespace herald::core
