#include "server/core/request_rate_limiter.h"

#include <algorithm>

namespace herald::core {

RequestRateLimiter::RequestRateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}

absl::Duration RequestRateLimiter::Take(absl::string_view key, absl::Time now) {
  if (rate_ <= 0) return absl::ZeroDuration();
  core::MutexLock lock(&mu_);
  if (buckets_.size() >= sweep_at_) {
    absl::erase_if(buckets_, [&](auto& entry) { return entry.second.Full(now); });
    sweep_at_ = std::max(kMinSweepSize, 2 * buckets_.size());
  }
  auto it = buckets_.find(key);
  if (it == buckets_.end()) it = buckets_.emplace(key, TokenBucket(rate_, burst_, now)).first;
  if (it->second.TryTake(now)) return absl::ZeroDuration();
  return it->second.TimeToNextToken(now);
}

size_t RequestRateLimiter::keys() const {
  core::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace herald::core
