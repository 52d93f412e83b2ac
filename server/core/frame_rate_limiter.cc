#include "server/core/frame_rate_limiter.h"

namespace herald::core {

FrameRateLimiter::FrameRateLimiter(double rate, double burst, uint32_t max_refusals, absl::Time now)
    : bucket_(rate, burst, now), max_refusals_(max_refusals) {}

FrameRateLimiter::Verdict FrameRateLimiter::Check(absl::Time now) {
  if (closed_) return Verdict::kDrop;
  if (refusals_ > 0 && bucket_.Full(now)) refusals_ = 0;
  if (bucket_.TryTake(now)) return Verdict::kAdmit;
  if (++refusals_ < max_refusals_) return Verdict::kRefuse;
  closed_ = true;
  return Verdict::kClose;
}

}  // namespace herald::core
