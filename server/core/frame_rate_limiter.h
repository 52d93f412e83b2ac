#ifndef HERALD_SERVER_CORE_FRAME_RATE_LIMITER_H_
#define HERALD_SERVER_CORE_FRAME_RATE_LIMITER_H_

#include <cstdint>

#include "absl/time/time.h"
#include "server/core/token_bucket.h"

namespace herald::core {

// The frame-rate policy of one connection (Limits::max_frame_rate, frame_burst,
// max_rate_refusals): a token bucket over its client frames, and how many refused frames it gets
// before it is closed. Refusals are forgiven once the bucket has refilled completely, i.e. after
// the client was quiet for burst/rate seconds: a page that overshoots once and backs off is
// never closed, a client that keeps sending over the rate is. Not thread-safe: one connection's
// frames are handled one at a time (its owner serialises the calls).
class FrameRateLimiter {
 public:
  enum class Verdict {
    kAdmit,   // within the rate: handle the frame
    kRefuse,  // over the rate: answer RESOURCE_EXHAUSTED, do not act on the frame
    kClose,   // over the rate once too often: answer, then close the connection (4029)
    kDrop,    // the connection is already being closed for its rate: ignore the frame
  };

  FrameRateLimiter(double rate, double burst, uint32_t max_refusals, absl::Time now);

  Verdict Check(absl::Time now);

 private:
  TokenBucket bucket_;
  const uint32_t max_refusals_;
  uint32_t refusals_ = 0;  // since the bucket was last full
  bool closed_ = false;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_FRAME_RATE_LIMITER_H_
