#ifndef HERALD_SERVER_CORE_TOKEN_BUCKET_H_
#define HERALD_SERVER_CORE_TOKEN_BUCKET_H_

#include "absl/time/time.h"

namespace herald::core {

// A token bucket: holds at most `burst` tokens, refilled continuously at `rate` tokens per
// second, and starts full. Time is passed in (the hub's clock), so tests drive it with a fake
// clock; a clock that steps backwards refills nothing. Plain value type, not thread-safe: its
// owner serialises the calls.
class TokenBucket {
 public:
  // `rate` > 0 and `burst` >= 1.
  TokenBucket(double rate, double burst, absl::Time now);

  // Takes one token if there is one.
  bool TryTake(absl::Time now);
  // How long until a token is there: zero when one is.
  absl::Duration TimeToNextToken(absl::Time now);
  // True when the bucket has refilled completely (its owner was quiet long enough).
  bool Full(absl::Time now);

 private:
  void Refill(absl::Time now);

  double rate_;
  double burst_;
  double tokens_;
  absl::Time last_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_TOKEN_BUCKET_H_
