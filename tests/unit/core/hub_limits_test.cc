// Hub limits with fake sessions and a fake clock: each connection's frame rate (errors, then
// close 4029), connections per IP and per user (at the handshake and at `connect`, counts back to
// zero on close), and how every refusal shows in Stats and /metrics.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/jwt.h"
#include "server/core/connection_quota.h"
#include "server/core/hub.h"
#include "server/core/metrics.h"
#include "server/core/protocol.h"
#include "server/engine/memory_engine.h"
#include "tests/support/test_hub.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::herald::testing::StringFrameFactory;
using ::herald::testing::TestHub;
using ::testing::HasSubstr;
using Kind = v1::ServerFrame::KindCase;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

class HubLimitsTest : public ::testing::Test {
 protected:
  static constexpr char kSecret[] = "hub-limits-secret";

  HubLimitsTest()
      : verifier_(*auth::JwtVerifier::Create({kSecret, ""})),
        engine_(MakeLimits()),
        auth_engine_(MakeLimits()),
        hub_(MakeLimits(), "n1", &engine_, &frames_, nullptr, [this] { return now_; }),
        auth_hub_(MakeLimits(), "n1", &auth_engine_, &frames_, verifier_.get(),
                  [this] { return now_; }) {}

  static Limits MakeLimits() {
    Limits l;
    l.max_frame_rate = 10;
    l.frame_burst = 5;
    l.max_rate_refusals = 3;
    l.max_connections_per_ip = 2;
    l.max_connections_per_user = 2;
    return l;
  }

  std::shared_ptr<FakeSession> Open(TestHub& hub, const std::string& remote = "10.0.0.1:5000",
                                    const std::string& user = "") {
    absl::StatusOr<Node::ConnectionSlots> slots = hub.AdmitConnection(remote, user);
    if (!slots.ok()) return nullptr;
    auto s = std::make_shared<FakeSession>(hub.NextConnectionId(), user, remote);
    for (auto& slot : *slots) s->HoldSlot(std::move(slot));
    EXPECT_TRUE(hub.Register(s).ok());
    return s;
  }

  static std::string Token(const std::string& sub) {
    return *auth::SignJwt("HS256", kSecret,
                          auth::ClaimsJson(sub, absl::Now() + absl::Hours(1), {}));
  }

  absl::Time now_ = kT0;
  std::unique_ptr<const auth::JwtVerifier> verifier_;
  // One engine per hub: an engine serves one node (its control bus answers for that node).
  engine::MemoryEngine engine_;
  engine::MemoryEngine auth_engine_;
  StringFrameFactory frames_;
  TestHub hub_;
  TestHub auth_hub_;
};

TEST_F(HubLimitsTest, AFloodGetsErrorsThenClose4029AndRefusedFramesAreNotActedOn) {
  auto flooder = Open(hub_);
  auto calm = Open(hub_, "10.0.0.9:1");
  for (int i = 1; i <= 5; ++i) {
    hub_.OnClientFrame(flooder, absl::StrCat(R"({"id":)", i, R"(,"ping":{}})"));
  }
  EXPECT_EQ(flooder->OfKind(Kind::kPong).size(), 5u);
  // Over the burst: refused with the request's id, and not acted on (no subscription).
  hub_.OnClientFrame(flooder, R"({"id":6,"subscribe":{"channel":"news"}})");
  v1::ServerFrame refused = flooder->Last();
  ASSERT_EQ(refused.kind_case(), Kind::kError);
  EXPECT_EQ(refused.id(), 6u);
  EXPECT_EQ(refused.error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_THAT(refused.error().message(), HasSubstr("more than 10 frames per second"));
  EXPECT_FALSE(flooder->IsSubscribed("news"));
  EXPECT_EQ(flooder->close_code(), 0);
  // Malformed frames count too (and still get their id echoed).
  hub_.OnClientFrame(flooder, R"({"id":7,"ping":)");
  EXPECT_EQ(flooder->Last().id(), 7u);
  EXPECT_EQ(flooder->Last().error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(flooder->close_code(), 0);
  hub_.OnClientFrame(flooder, R"({"id":8,"ping":{}})");  // the third refusal
  EXPECT_EQ(flooder->close_code(), kCloseRateLimited);
  EXPECT_THAT(flooder->close_reason(), HasSubstr("rate limit"));

  // Another connection is unaffected.
  for (int i = 1; i <= 5; ++i) hub_.OnClientFrame(calm, R"({"ping":{}})");
  EXPECT_EQ(calm->OfKind(Kind::kPong).size(), 5u);

  v1::StatsResponse stats = *hub_.Stats({});
  EXPECT_EQ(stats.rate_limited_frames(), 3u);
  EXPECT_EQ(stats.rate_limit_closes(), 1u);
  const std::string metrics = RenderMetrics(stats);
  EXPECT_THAT(metrics, HasSubstr("herald_limit_refusals_total{reason=\"frame_rate\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("herald_limit_refusals_total{reason=\"frame_rate_close\"} 1\n"));
}

TEST_F(HubLimitsTest, TheBucketRefillsOnTheHubsClock) {
  auto s = Open(hub_);
  for (int i = 0; i < 5; ++i) hub_.OnClientFrame(s, R"({"ping":{}})");
  hub_.OnClientFrame(s, R"({"id":1,"ping":{}})");
  EXPECT_EQ(s->Last().kind_case(), Kind::kError);
  now_ += absl::Milliseconds(100);  // one token at 10/s
  hub_.OnClientFrame(s, R"({"id":2,"ping":{}})");
  EXPECT_EQ(s->Last().kind_case(), Kind::kPong);
  hub_.OnClientFrame(s, R"({"id":3,"ping":{}})");
  EXPECT_EQ(s->Last().kind_case(), Kind::kError);
  now_ += absl::Seconds(1);  // full again: the refusals are forgiven
  for (int i = 0; i < 5; ++i) hub_.OnClientFrame(s, R"({"ping":{}})");
  hub_.OnClientFrame(s, R"({"ping":{}})");
  hub_.OnClientFrame(s, R"({"ping":{}})");
  EXPECT_EQ(s->close_code(), 0);
}

TEST_F(HubLimitsTest, ZeroFrameRateIsNoLimit) {
  Limits l = MakeLimits();
  l.max_frame_rate = 0;
  engine::MemoryEngine engine(l);
  TestHub hub(l, "n1", &engine, &frames_, nullptr, [this] { return now_; });
  auto s = std::make_shared<FakeSession>(hub.NextConnectionId());
  ASSERT_TRUE(hub.Register(s).ok());
  for (int i = 0; i < 1000; ++i) hub.OnClientFrame(s, R"({"ping":{}})");
  EXPECT_EQ(s->OfKind(Kind::kPong).size(), 1000u);
}

TEST_F(HubLimitsTest, PerIpCountComesBackToZeroWhenConnectionsClose) {
  auto a = Open(hub_, "10.0.0.1:1000");
  auto b = Open(hub_, "10.0.0.1:1001");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  absl::StatusOr<Node::ConnectionSlots> third = hub_.AdmitConnection("10.0.0.1:1002", "");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("--max-connections-per-ip"));
  EXPECT_NE(Open(hub_, "10.0.0.2:1000"), nullptr);  // another address
  EXPECT_EQ(hub_.ConnectionsFromIp("10.0.0.1"), 2u);

  hub_.Unregister(*a);
  EXPECT_EQ(hub_.ConnectionsFromIp("10.0.0.1"), 1u);
  auto c = Open(hub_, "10.0.0.1:1003");
  EXPECT_NE(c, nullptr);
  hub_.Unregister(*b);
  hub_.Unregister(*c);
  hub_.Unregister(*c);  // twice: counted once
  EXPECT_EQ(hub_.ConnectionsFromIp("10.0.0.1"), 0u);
  EXPECT_EQ(hub_.Stats({})->refused_connections_per_ip(), 1u);
}

TEST_F(HubLimitsTest, SlotsOfAHandshakeThatNeverOpensAreGivenBack) {
  {
    absl::StatusOr<Node::ConnectionSlots> slots = hub_.AdmitConnection("10.0.0.1:1", "");
    ASSERT_TRUE(slots.ok());
    EXPECT_EQ(hub_.ConnectionsFromIp("10.0.0.1"), 1u);
  }
  EXPECT_EQ(hub_.ConnectionsFromIp("10.0.0.1"), 0u);
}

TEST_F(HubLimitsTest, MaxConnectionsIsUnavailable) {
  Limits l = MakeLimits();
  l.max_connections = 1;
  engine::MemoryEngine engine(l);
  TestHub hub(l, "n1", &engine, &frames_, nullptr, [this] { return now_; });
  ASSERT_NE(Open(hub, "10.0.0.1:1"), nullptr);
  EXPECT_EQ(hub.AdmitConnection("10.0.0.2:1", "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(hub.Stats({})->refused_connections_max(), 1u);
}

TEST_F(HubLimitsTest, PerUserLimitAtTheHandshakeAndAtConnect) {
  // Two connections of u1: one with a handshake token, one with a connect frame.
  auto a = Open(auth_hub_, "10.0.0.1:1", "u1");
  ASSERT_NE(a, nullptr);
  auto b = Open(auth_hub_, "10.0.0.2:1");
  auth_hub_.OnClientFrame(b, R"({"id":1,"connect":{"token":")" + Token("u1") + R"("}})");
  ASSERT_EQ(b->Last().kind_case(), Kind::kConnected) << b->Frames().back();
  EXPECT_EQ(auth_hub_.ConnectionsOfUser("u1"), 2u);

  // A third at the handshake: refused, naming the limit.
  absl::StatusOr<Node::ConnectionSlots> third = auth_hub_.AdmitConnection("10.0.0.3:1", "u1");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("--max-connections-per-user"));
  // A third by connect frame: an error, close 4030, and it is not the user's connection.
  auto c = Open(auth_hub_, "10.0.0.3:1");
  auth_hub_.OnClientFrame(c, R"({"id":2,"connect":{"token":")" + Token("u1") + R"("}})");
  EXPECT_EQ(c->Last().error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(c->Last().id(), 2u);
  EXPECT_EQ(c->close_code(), kCloseTooManyConnections);
  EXPECT_TRUE(c->user().empty());
  // Another user is not affected.
  auto d = Open(auth_hub_, "10.0.0.4:1", "u2");
  EXPECT_NE(d, nullptr);
  EXPECT_EQ(auth_hub_.Stats({})->refused_connections_per_user(), 2u);

  // Closing gives the slots back: the user may connect again.
  auth_hub_.Unregister(*a);
  auth_hub_.Unregister(*c);
  EXPECT_EQ(auth_hub_.ConnectionsOfUser("u1"), 1u);
  EXPECT_NE(Open(auth_hub_, "10.0.0.5:1", "u1"), nullptr);
  auth_hub_.Unregister(*b);
  EXPECT_EQ(auth_hub_.ConnectionsOfUser("u1"), 1u);
}

TEST_F(HubLimitsTest, ASlotHandedToAClosedSessionIsReleasedAtOnce) {
  auto s = Open(hub_, "10.0.0.1:1");
  hub_.Unregister(*s);
  ConnectionQuota quota(5);
  std::optional<ConnectionQuota::Slot> slot = quota.TryAcquire("k");
  s->HoldSlot(*std::move(slot));
  EXPECT_EQ(quota.Count("k"), 0u);
}

}  // namespace
}  // namespace herald::core
