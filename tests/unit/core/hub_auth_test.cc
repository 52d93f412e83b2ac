// Hub with a JWT verifier: connect/refresh frames, auth deadlines and channel permissions, with
// fake sessions (the transport's timer is replaced by calling CheckAuthDeadline directly).
#include <memory>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/jwt.h"
#include "server/core/hub.h"
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

constexpr char kSecret[] = "hub-auth-secret";

std::string Token(const std::string& sub, absl::Duration ttl = absl::Hours(1)) {
  return *auth::SignJwt("HS256", kSecret,
                        auth::ClaimsJson(sub, absl::Now() + ttl, {"store:42", "order:*"}));
}

class HubAuthTest : public ::testing::Test {
 protected:
  HubAuthTest()
      : verifier_(*auth::JwtVerifier::Create({kSecret, ""})),
        engine_(MakeLimits()),
        hub_(MakeLimits(), "n1", &engine_, &frames_, verifier_.get()) {}

  static Limits MakeLimits() {
    Limits l;
    l.auth_timeout_ms = 200;
    return l;
  }

  std::shared_ptr<FakeSession> Connect() {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId());
    EXPECT_TRUE(hub_.Register(s).ok());
    return s;
  }

  v1::ListConnectionsResponse ByUser(const std::string& user) {
    v1::ListConnectionsRequest req;
    req.set_user(user);
    return *hub_.ListConnections(req);
  }

  std::unique_ptr<const auth::JwtVerifier> verifier_;
  engine::MemoryEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_F(HubAuthTest, UnauthenticatedSessionGetsAConnectDeadline) {
  auto s = Connect();
  EXPECT_EQ(s->auth_deadline(), s->meta().connected_at + absl::Milliseconds(200));
  // A check before the deadline (timer fired early) only re-arms.
  hub_.CheckAuthDeadline(s);
  EXPECT_EQ(s->close_code(), 0);
  // Wait for the deadline to pass (a condition, bounded by the 200 ms deadline itself).
  while (absl::Now() <= s->auth_deadline()) absl::SleepFor(absl::Milliseconds(5));
  hub_.CheckAuthDeadline(s);
  EXPECT_EQ(s->close_code(), kCloseUnauthorized);
  EXPECT_EQ(s->close_reason(), "unauthorized: no connect frame within 200 ms");
}

TEST_F(HubAuthTest, ConnectSetsTheUserIndexAndTheExpiryDeadline) {
  auto s = Connect();
  hub_.OnClientFrame(s, R"({"id":1,"connect":{"token":")" + Token("u1") + R"("}})");
  ASSERT_EQ(s->Last().kind_case(), Kind::kConnected) << s->Frames().back();
  EXPECT_EQ(s->Last().connected().user(), "u1");
  EXPECT_EQ(s->user(), "u1");
  EXPECT_EQ(ByUser("u1").total(), 1u);
  EXPECT_EQ(ByUser("u1").connections(0).user(), "u1");
  EXPECT_EQ(absl::ToUnixMillis(s->auth_deadline()), s->Last().connected().expires_at_ms());
  hub_.CheckAuthDeadline(s);  // not expired: stays open
  EXPECT_EQ(s->close_code(), 0);
  hub_.Unregister(*s);
  EXPECT_EQ(ByUser("u1").total(), 0u);
}

TEST_F(HubAuthTest, ConnectEventWaitsForTheConnectFrameAndNamesTheUser) {
  auto watcher = *hub_.Watch(v1::WatchEventsRequest(), nullptr);
  auto s = Connect();
  EXPECT_FALSE(watcher->Pop().has_value());  // not announced before it says who it is
  hub_.OnClientFrame(s, R"({"id":1,"connect":{"token":")" + Token("u1") + R"("}})");
  std::optional<v1::Event> e = watcher->Pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type(), v1::EVENT_TYPE_CONNECT);
  EXPECT_EQ(e->user(), "u1");
  EXPECT_EQ(e->connection_id(), s->id());
  e = watcher->Pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type(), v1::EVENT_TYPE_USER_ONLINE);
  EXPECT_EQ(e->user(), "u1");
  hub_.Unregister(*s, 1000, "bye");
  e = watcher->Pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type(), v1::EVENT_TYPE_DISCONNECT);
  EXPECT_EQ(e->user(), "u1");
  e = watcher->Pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type(), v1::EVENT_TYPE_USER_OFFLINE);  // no grace period here
  EXPECT_EQ(e->user(), "u1");
  // One that never authenticates comes and goes unannounced.
  auto anonymous = Connect();
  hub_.Unregister(*anonymous, 4003, "unauthorized");
  EXPECT_FALSE(watcher->Pop().has_value());
}

TEST_F(HubAuthTest, AnythingButConnectFirstIsRefusedAndCloses) {
  auto s = Connect();
  hub_.OnClientFrame(s, R"({"id":4,"ping":{}})");
  ASSERT_EQ(s->Last().kind_case(), Kind::kError);
  EXPECT_EQ(s->Last().error().code(), "UNAUTHENTICATED");
  EXPECT_EQ(s->close_code(), kCloseUnauthorized);
}

TEST_F(HubAuthTest, SubscribeChecksTheTokensChannels) {
  auto s = Connect();
  hub_.OnClientFrame(s, R"({"id":1,"connect":{"token":")" + Token("u1") + R"("}})");
  hub_.OnClientFrame(s, R"({"id":2,"subscribe":{"channel":"order:o-5"}})");
  EXPECT_EQ(s->Last().kind_case(), Kind::kSubscribed);
  hub_.OnClientFrame(s, R"({"id":3,"subscribe":{"channel":"store:1"}})");
  ASSERT_EQ(s->Last().kind_case(), Kind::kError);
  EXPECT_EQ(s->Last().error().code(), "PERMISSION_DENIED");
  EXPECT_THAT(s->Last().error().message(), HasSubstr("subscribe.channel: 'store:1'"));
  EXPECT_FALSE(s->IsSubscribed("store:1"));
  // A backend may still subscribe the user anywhere (the control API is trusted).
  v1::SubscribeRequest req;
  req.set_user("u1");
  req.set_channel("store:1");
  EXPECT_EQ(hub_.Subscribe(req)->subscribed(), 1u);
}

TEST_F(HubAuthTest, RefreshReplacesTheGrantOnlyForTheSameUser) {
  auto s = Connect();
  hub_.OnClientFrame(s,
                     R"({"id":1,"connect":{"token":")" + Token("u1", absl::Seconds(30)) + R"("}})");
  const absl::Time first = s->auth_deadline();
  hub_.OnClientFrame(s, R"({"id":2,"refresh":{"token":")" + Token("u2") + R"("}})");
  ASSERT_EQ(s->Last().kind_case(), Kind::kError);
  EXPECT_EQ(s->Last().error().code(), "PERMISSION_DENIED");
  EXPECT_EQ(s->user(), "u1");
  EXPECT_EQ(s->auth_deadline(), first);
  hub_.OnClientFrame(s, R"({"id":3,"refresh":{"token":")" + Token("u1") + R"("}})");
  ASSERT_EQ(s->Last().kind_case(), Kind::kRefreshed);
  EXPECT_GT(s->auth_deadline(), first + absl::Minutes(30));
  EXPECT_EQ(s->close_code(), 0);
}

}  // namespace
}  // namespace herald::core
