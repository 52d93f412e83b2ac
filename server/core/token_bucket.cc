#include "server/core/token_bucket.h"

#include <algorithm>

namespace herald::core {

TokenBucket::TokenBucket(double rate, double burst, absl::Time now)
    : rate_(rate), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now <= last_) return;
  tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
  last_ = now;
}

bool TokenBucket::TryTake(absl::Time now) {
  Refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

absl::Duration TokenBucket::TimeToNextToken(absl::Time now) {
  Refill(now);
  if (tokens_ >= 1.0) return absl::ZeroDuration();
  return absl::Seconds((1.0 - tokens_) / rate_);
}

bool TokenBucket::Full(absl::Time now) {
  Refill(now);
  return tokens_ >= burst_;
}

}  // namespace herald::core
