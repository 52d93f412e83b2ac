// core::AckWaiters on its own: how a wait ends (first matching ack, deadline, shutdown), and the
// order of publish and ack it must tolerate.
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "server/core/acks.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;

class AckWaitersTest : public ::testing::Test {
 protected:
  // A completion that records the outcome in `out`.
  static AckWaiters::Done Into(std::optional<v1::AckOutcome>* out) {
    return [out](v1::AckOutcome outcome) {
      EXPECT_FALSE(out->has_value()) << "completed twice";
      *out = std::move(outcome);
    };
  }

  const absl::Time t0_ = absl::FromUnixSeconds(1000);
  AckWaiters acks_;
  FakeSession alice_{"c-1", "alice"};
  FakeSession bob_{"c-2", "bob"};
};

TEST_F(AckWaitersTest, TheFirstAckOfTheUserCompletesTheWaitOnce) {
  auto id = acks_.Start("alice", t0_, absl::Seconds(3));
  acks_.AddTarget(id, "customer:alice", 7);
  std::optional<v1::AckOutcome> out;
  acks_.Await(id, Into(&out));
  EXPECT_FALSE(out.has_value());
  acks_.OnAck(bob_, "customer:alice", 7, t0_ + absl::Milliseconds(10));    // not the user
  acks_.OnAck(alice_, "customer:alice", 8, t0_ + absl::Milliseconds(20));  // not the target
  EXPECT_FALSE(out.has_value());
  acks_.OnAck(alice_, "customer:alice", 7, t0_ + absl::Milliseconds(40));
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(out->acked());
  EXPECT_EQ(out->connection_id(), "c-1");
  EXPECT_EQ(out->user(), "alice");
  EXPECT_EQ(out->channel(), "customer:alice");
  EXPECT_EQ(out->offset(), 7u);
  EXPECT_EQ(out->latency_ms(), 40u);
  acks_.OnAck(alice_, "customer:alice", 7, t0_ + absl::Milliseconds(50));
  acks_.Expire(t0_ + absl::Seconds(10));
  EXPECT_EQ(acks_.size(), 0u);
}

TEST_F(AckWaitersTest, AnAckBeforeThePublishIsDoneCompletesAtAwait) {
  // A fast client acks the first channel of an order while the publish still runs.
  auto id = acks_.Start("", t0_, absl::Seconds(3));
  acks_.AddTarget(id, "orders", 1);
  acks_.OnAck(bob_, "orders", 1, t0_ + absl::Milliseconds(5));
  acks_.AddTarget(id, "store:4", 9);
  std::optional<v1::AckOutcome> out;
  acks_.Await(id, Into(&out));
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(out->acked());
  EXPECT_EQ(out->connection_id(), "c-2");
  EXPECT_EQ(out->channel(), "orders");
  EXPECT_EQ(acks_.size(), 0u);
}

TEST_F(AckWaitersTest, ExpireEndsOnlyTheWaitsPastTheirDeadline) {
  auto short_wait = acks_.Start("", t0_, absl::Milliseconds(100));
  auto long_wait = acks_.Start("", t0_, absl::Seconds(5));
  acks_.AddTarget(short_wait, "a", 1);
  acks_.AddTarget(long_wait, "a", 1);
  std::optional<v1::AckOutcome> short_out, long_out;
  acks_.Await(short_wait, Into(&short_out));
  acks_.Await(long_wait, Into(&long_out));
  acks_.Expire(t0_ + absl::Milliseconds(99));
  EXPECT_FALSE(short_out.has_value());
  acks_.Expire(t0_ + absl::Milliseconds(100));
  ASSERT_TRUE(short_out.has_value());
  EXPECT_FALSE(short_out->acked());
  EXPECT_FALSE(long_out.has_value());
  // The expired wait no longer listens; the other one still does.
  acks_.OnAck(alice_, "a", 1, t0_ + absl::Seconds(1));
  ASSERT_TRUE(long_out.has_value());
  EXPECT_TRUE(long_out->acked());
  EXPECT_EQ(acks_.size(), 0u);
}

TEST_F(AckWaitersTest, CancelForgetsAWaitWithoutCompletingIt) {
  auto id = acks_.Start("", t0_, absl::Seconds(1));
  acks_.AddTarget(id, "a", 1);
  acks_.Cancel(id);
  EXPECT_EQ(acks_.size(), 0u);
  acks_.OnAck(alice_, "a", 1, t0_);
  acks_.Expire(t0_ + absl::Seconds(2));
}

TEST_F(AckWaitersTest, ExpireAllEndsPendingWaitsAndLaterOnesAtOnce) {
  auto pending = acks_.Start("", t0_, absl::Seconds(30));
  auto running = acks_.Start("", t0_, absl::Seconds(30));  // its publish has not finished
  std::optional<v1::AckOutcome> pending_out, running_out;
  acks_.Await(pending, Into(&pending_out));
  acks_.ExpireAll();
  ASSERT_TRUE(pending_out.has_value());
  EXPECT_FALSE(pending_out->acked());
  acks_.Await(running, Into(&running_out));
  ASSERT_TRUE(running_out.has_value());
  EXPECT_FALSE(running_out->acked());
  EXPECT_EQ(acks_.size(), 0u);
}

TEST_F(AckWaitersTest, ACompletionMayStartAnotherWait) {
  // Completions run after the lock is released, so they may use AckWaiters again.
  auto id = acks_.Start("", t0_, absl::Seconds(1));
  std::optional<AckWaiters::WaitId> next;
  acks_.Await(id, [&](v1::AckOutcome) {
    next = acks_.Start("", t0_, absl::Seconds(1));
    acks_.Cancel(*next);
  });
  acks_.Expire(t0_ + absl::Seconds(1));
  EXPECT_TRUE(next.has_value());
  EXPECT_EQ(acks_.size(), 0u);
}

}  // namespace
}  // namespace herald::core
