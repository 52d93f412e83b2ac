#ifndef HERALD_SERVER_CORE_REQUEST_RATE_LIMITER_H_
#define HERALD_SERVER_CORE_REQUEST_RATE_LIMITER_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/mutex.h"
#include "server/core/token_bucket.h"

namespace herald::core {

// Request rate per caller (an API key, or a client IP), for the HTTP/JSON control API
// (Limits::api_rate, api_burst): one TokenBucket per key, created full on the key's first
// request. Buckets that have refilled completely are dropped whenever the map has doubled since
// the last sweep, so memory stays proportional to the callers active within one refill period
// (burst / rate). Thread-safe: one core::Mutex, held for a map lookup and a bucket update.
class RequestRateLimiter {
 public:
  // `rate` requests per second with bursts of `burst`; `rate` 0: no limit.
  RequestRateLimiter(double rate, double burst);

  // Zero when a request of `key` may proceed now (it took a token); otherwise how long until
  // one may.
  absl::Duration Take(absl::string_view key, absl::Time now);
  // Keys with a bucket (for tests of the sweep).
  size_t keys() const;

 private:
  static constexpr size_t kMinSweepSize = 1024;

  const double rate_;
  const double burst_;
  mutable core::Mutex mu_;
  absl::flat_hash_map<std::string, TokenBucket> buckets_ ABSL_GUARDED_BY(mu_);
  size_t sweep_at_ ABSL_GUARDED_BY(mu_) = kMinSweepSize;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_REQUEST_RATE_LIMITER_H_
