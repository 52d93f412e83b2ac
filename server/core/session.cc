#include "server/core/session.h"

#include <algorithm>
#include <utility>

namespace herald::core {

Session::Session(ConnectionMeta meta) : meta_(std::move(meta)), user_(meta_.user) {}

std::string Session::user() const {
  core::MutexLock lock(&auth_mu_);
  return user_;
}

std::shared_ptr<const auth::Claims> Session::grant() const {
  core::MutexLock lock(&auth_mu_);
  return grant_;
}

void Session::SetGrant(std::shared_ptr<const auth::Claims> grant) {
  core::MutexLock lock(&auth_mu_);
  user_ = grant->user;
  grant_ = std::move(grant);
}

bool Session::Send(const OutFramePtr& frame) {
  if (!DoSend(frame)) return false;
  frames_out_.fetch_add(1, std::memory_order_relaxed);
  bytes_out_.fetch_add(frame->payload().size(), std::memory_order_relaxed);
  return true;
}

void Session::CountIn(size_t bytes) {
  frames_in_.fetch_add(1, std::memory_order_relaxed);
  bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
}

SessionCounters Session::counters() const {
  SessionCounters c;
  c.frames_in = frames_in_.load(std::memory_order_relaxed);
  c.frames_out = frames_out_.load(std::memory_order_relaxed);
  c.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  c.bytes_out = bytes_out_.load(std::memory_order_relaxed);
  return c;
}

FrameRateLimiter::Verdict Session::CheckFrameRate(double rate, double burst, uint32_t max_refusals,
                                                  absl::Time now) {
  core::MutexLock lock(&limits_mu_);
  if (!frame_rate_.has_value()) frame_rate_.emplace(rate, burst, max_refusals, now);
  return frame_rate_->Check(now);
}

void Session::HoldSlot(ConnectionQuota::Slot slot) {
  if (!slot.held()) return;
  core::MutexLock lock(&limits_mu_);
  if (slots_released_) return;  // `slot` releases itself on return
  slots_.push_back(std::move(slot));
}

void Session::ReleaseSlots() {
  std::vector<ConnectionQuota::Slot> slots;
  {
    core::MutexLock lock(&limits_mu_);
    slots_released_ = true;
    slots.swap(slots_);
  }
  // Released here, outside limits_mu_: each takes its quota's stripe lock.
}

bool Session::IsSubscribed(const std::string& channel) const {
  core::MutexLock lock(&mu_);
  return channels_.contains(channel);
}

bool Session::Accepts(const std::string& channel, uint64_t offset) const {
  core::MutexLock lock(&mu_);
  auto it = channels_.find(channel);
  return it != channels_.end() && offset > it->second;
}

std::vector<std::string> Session::Subscriptions() const {
  std::vector<std::string> out;
  {
    core::MutexLock lock(&mu_);
    for (const auto& [channel, after] : channels_) out.push_back(channel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t Session::SubscriptionCount() const {
  core::MutexLock lock(&mu_);
  return channels_.size();
}

void Session::SetPresenceJoinedAt(const std::string& channel, int64_t ms) {
  core::MutexLock lock(&mu_);
  if (closed_ || !channels_.contains(channel)) return;
  if (presence_joined_ == nullptr) {
    presence_joined_ = std::make_unique<absl::flat_hash_map<std::string, int64_t>>();
  }
  (*presence_joined_)[channel] = ms;
}

std::vector<std::pair<std::string, int64_t>> Session::PresenceJoins() const {
  core::MutexLock lock(&mu_);
  if (presence_joined_ == nullptr) return {};
  return {presence_joined_->begin(), presence_joined_->end()};
}

std::vector<std::string> Session::MarkClosed() {
  core::MutexLock lock(&mu_);
  closed_ = true;
  removals_.fetch_add(1, std::memory_order_acq_rel);
  presence_joined_.reset();
  std::vector<std::string> out;
  for (const auto& [channel, after] : channels_) out.push_back(channel);
  channels_.clear();
  return out;
}

}  // namespace herald::core
