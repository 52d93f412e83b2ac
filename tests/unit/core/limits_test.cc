// The building blocks of Herald's limits on their own, with a fake clock: TokenBucket,
// FrameRateLimiter, ConnectionQuota (and ClientIp), RequestRateLimiter.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/connection_quota.h"
#include "server/core/frame_rate_limiter.h"
#include "server/core/request_rate_limiter.h"
#include "server/core/token_bucket.h"

namespace herald::core {
namespace {

using Verdict = FrameRateLimiter::Verdict;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(TokenBucketTest, StartsFullTakesTheBurstThenRefillsAtTheRate) {
  TokenBucket bucket(/*rate=*/10, /*burst=*/3, kT0);
  EXPECT_TRUE(bucket.Full(kT0));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake(kT0)) << i;
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_EQ(bucket.TimeToNextToken(kT0), absl::Milliseconds(100));
  EXPECT_FALSE(bucket.TryTake(kT0 + absl::Milliseconds(99)));
  EXPECT_TRUE(bucket.TryTake(kT0 + absl::Milliseconds(100)));
  EXPECT_FALSE(bucket.TryTake(kT0 + absl::Milliseconds(100)));
  // Never more than the burst, however long the pause.
  const absl::Time later = kT0 + absl::Hours(1);
  EXPECT_TRUE(bucket.Full(later));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake(later)) << i;
  EXPECT_FALSE(bucket.TryTake(later));
}

TEST(TokenBucketTest, AClockThatStepsBackRefillsNothing) {
  TokenBucket bucket(1, 1, kT0);
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0 - absl::Seconds(5)));
  EXPECT_FALSE(bucket.TryTake(kT0 + absl::Milliseconds(999)));
  EXPECT_TRUE(bucket.TryTake(kT0 + absl::Seconds(1)));
}

TEST(TokenBucketTest, FractionalRates) {
  TokenBucket bucket(0.5, 1, kT0);  // one every two seconds
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_EQ(bucket.TimeToNextToken(kT0 + absl::Milliseconds(500)), absl::Milliseconds(1500));
  EXPECT_FALSE(bucket.TryTake(kT0 + absl::Seconds(1)));
  EXPECT_TRUE(bucket.TryTake(kT0 + absl::Seconds(2)));
}

TEST(FrameRateLimiterTest, RefusesOverTheRateAndClosesAtTheNthRefusal) {
  FrameRateLimiter limiter(/*rate=*/10, /*burst=*/5, /*max_refusals=*/3, kT0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.Check(kT0), Verdict::kAdmit) << i;
  EXPECT_EQ(limiter.Check(kT0), Verdict::kRefuse);
  EXPECT_EQ(limiter.Check(kT0), Verdict::kRefuse);
  EXPECT_EQ(limiter.Check(kT0), Verdict::kClose);
  // Closing: nothing more is handled or answered, even once tokens are back.
  EXPECT_EQ(limiter.Check(kT0), Verdict::kDrop);
  EXPECT_EQ(limiter.Check(kT0 + absl::Hours(1)), Verdict::kDrop);
}

TEST(FrameRateLimiterTest, AClientThatStaysJustOverTheRateIsClosed) {
  // Two frames per token: every other frame is refused, and a refusal is never forgiven because
  // the bucket never refills.
  FrameRateLimiter limiter(/*rate=*/10, /*burst=*/2, /*max_refusals=*/4, kT0);
  absl::Time t = kT0;
  int refused = 0;
  std::optional<int> closed_at;
  for (int i = 0; i < 100 && !closed_at.has_value(); ++i) {
    t += absl::Milliseconds(50);
    const Verdict v = limiter.Check(t);
    if (v == Verdict::kRefuse) ++refused;
    if (v == Verdict::kClose) closed_at = i;
  }
  ASSERT_TRUE(closed_at.has_value());
  EXPECT_EQ(refused, 3);
}

TEST(FrameRateLimiterTest, RefusalsAreForgivenOnceTheBucketHasRefilled) {
  FrameRateLimiter limiter(/*rate=*/10, /*burst=*/2, /*max_refusals=*/3, kT0);
  absl::Time t = kT0;
  for (int round = 0; round < 20; ++round) {
    // A burst of four: two admitted, two refused; then a pause that refills the bucket.
    EXPECT_EQ(limiter.Check(t), Verdict::kAdmit);
    EXPECT_EQ(limiter.Check(t), Verdict::kAdmit);
    EXPECT_EQ(limiter.Check(t), Verdict::kRefuse);
    EXPECT_EQ(limiter.Check(t), Verdict::kRefuse) << "round " << round;
    t += absl::Milliseconds(200);
  }
}

TEST(ConnectionQuotaTest, CountsPerKeyUpToTheMaximumAndReleasesOnDestruction) {
  ConnectionQuota quota(2);
  std::optional<ConnectionQuota::Slot> a = quota.TryAcquire("10.0.0.1");
  std::optional<ConnectionQuota::Slot> b = quota.TryAcquire("10.0.0.1");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(a->held());
  EXPECT_FALSE(quota.TryAcquire("10.0.0.1").has_value());
  std::optional<ConnectionQuota::Slot> other = quota.TryAcquire("10.0.0.2");
  EXPECT_TRUE(other.has_value());
  EXPECT_EQ(quota.Count("10.0.0.1"), 2u);
  EXPECT_EQ(quota.keys(), 2u);

  a->Release();
  a->Release();  // idempotent
  EXPECT_EQ(quota.Count("10.0.0.1"), 1u);
  std::optional<ConnectionQuota::Slot> c = quota.TryAcquire("10.0.0.1");
  ASSERT_TRUE(c.has_value());
  // Moving a slot moves the count, it does not double it or drop it.
  ConnectionQuota::Slot moved = *std::move(c);
  c.reset();
  EXPECT_EQ(quota.Count("10.0.0.1"), 2u);
  b.reset();
  { ConnectionQuota::Slot gone = std::move(moved); }
  other.reset();
  EXPECT_EQ(quota.Count("10.0.0.1"), 0u);
  EXPECT_EQ(quota.keys(), 0u);  // no entry left behind
}

TEST(ConnectionQuotaTest, ZeroMeansNoLimitAndNoCounting) {
  ConnectionQuota quota(0);
  std::vector<ConnectionQuota::Slot> slots;
  for (int i = 0; i < 1000; ++i) {
    std::optional<ConnectionQuota::Slot> s = quota.TryAcquire("k");
    ASSERT_TRUE(s.has_value());
    EXPECT_FALSE(s->held());
    slots.push_back(*std::move(s));
  }
  EXPECT_EQ(quota.keys(), 0u);
}

TEST(ConnectionQuotaTest, ASlotMayOutliveItsQuota) {
  std::optional<ConnectionQuota::Slot> slot;
  {
    ConnectionQuota quota(1);
    slot = quota.TryAcquire("u1");
    ASSERT_TRUE(slot.has_value());
  }
  slot.reset();  // must not touch freed memory (ASan)
}

TEST(ClientIpTest, StripsThePort) {
  EXPECT_EQ(ClientIp("10.0.0.1:5000"), "10.0.0.1");
  EXPECT_EQ(ClientIp("[::1]:5000"), "::1");
  EXPECT_EQ(ClientIp("[::ffff:10.0.0.1]:80"), "::ffff:10.0.0.1");
  EXPECT_EQ(ClientIp("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(ClientIp("::1"), "::1");
  EXPECT_EQ(ClientIp(""), "");
}

TEST(RequestRateLimiterTest, OneBucketPerKeyWithTheTimeUntilTheNextRequest) {
  RequestRateLimiter limiter(/*rate=*/2, /*burst=*/2);
  EXPECT_EQ(limiter.Take("a", kT0), absl::ZeroDuration());
  EXPECT_EQ(limiter.Take("a", kT0), absl::ZeroDuration());
  EXPECT_EQ(limiter.Take("a", kT0), absl::Milliseconds(500));
  EXPECT_EQ(limiter.Take("b", kT0), absl::ZeroDuration());  // its own bucket
  EXPECT_EQ(limiter.Take("a", kT0 + absl::Milliseconds(500)), absl::ZeroDuration());
}

TEST(RequestRateLimiterTest, ZeroRateIsNoLimit) {
  RequestRateLimiter limiter(0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limiter.Take("a", kT0), absl::ZeroDuration());
  EXPECT_EQ(limiter.keys(), 0u);
}

TEST(RequestRateLimiterTest, IdleBucketsAreSweptSoManyCallersUseBoundedMemory) {
  RequestRateLimiter limiter(/*rate=*/1, /*burst=*/1);
  absl::Time t = kT0;
  for (int i = 0; i < 100000; ++i) {
    // Each caller makes one request; a second later its bucket is full again and sweepable.
    t += absl::Milliseconds(10);
    limiter.Take(absl::StrCat("10.0.", i / 256, ".", i % 256), t);
  }
  // Callers active within one refill period (1 s: 100 of them), and at most a sweep's worth.
  EXPECT_LE(limiter.keys(), 2048u);
}

}  // namespace
}  // namespace herald::core
