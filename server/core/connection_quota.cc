#include "server/core/connection_quota.h"

#include <utility>

#include "absl/hash/hash.h"

namespace herald::core {

ConnectionQuota::Slot::Counts::Stripe& ConnectionQuota::Slot::Counts::StripeFor(
    absl::string_view key) {
  return stripes[absl::HashOf(key) % kStripes];
}

ConnectionQuota::Slot& ConnectionQuota::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    counts_ = std::move(other.counts_);
    key_ = std::move(other.key_);
  }
  return *this;
}

void ConnectionQuota::Slot::Release() {
  if (counts_ == nullptr) return;
  Counts::Stripe& stripe = counts_->StripeFor(key_);
  {
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.by_key.find(key_);
    if (it != stripe.by_key.end() && --it->second == 0) stripe.by_key.erase(it);
  }
  counts_ = nullptr;
}

ConnectionQuota::ConnectionQuota(size_t max_per_key)
    : max_per_key_(max_per_key), counts_(std::make_shared<Slot::Counts>()) {}

std::optional<ConnectionQuota::Slot> ConnectionQuota::TryAcquire(absl::string_view key) {
  if (max_per_key_ == 0) return Slot();
  Slot::Counts::Stripe& stripe = counts_->StripeFor(key);
  {
    core::MutexLock lock(&stripe.mu);
    size_t& count = stripe.by_key[key];
    if (count >= max_per_key_) return std::nullopt;
    ++count;
  }
  return Slot(counts_, std::string(key));
}

size_t ConnectionQuota::Count(absl::string_view key) const {
  Slot::Counts::Stripe& stripe = counts_->StripeFor(key);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.by_key.find(key);
  return it == stripe.by_key.end() ? 0 : it->second;
}

size_t ConnectionQuota::keys() const {
  size_t n = 0;
  for (Slot::Counts::Stripe& stripe : counts_->stripes) {
    core::MutexLock lock(&stripe.mu);
    n += stripe.by_key.size();
  }
  return n;
}

absl::string_view ClientIp(absl::string_view remote_address) {
  if (!remote_address.empty() && remote_address.front() == '[') {
    const size_t close = remote_address.find(']');
    if (close != absl::string_view::npos) return remote_address.substr(1, close - 1);
    return remote_address;
  }
  const size_t colon = remote_address.rfind(':');
  // More than one colon without brackets: a bare IPv6 address.
  if (colon == absl::string_view::npos || remote_address.find(':') != colon) return remote_address;
  return remote_address.substr(0, colon);
}

}  // namespace herald::core
