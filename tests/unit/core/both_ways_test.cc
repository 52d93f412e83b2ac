// What clients do beside receiving: publish to channels, see who is there (presence, member
// notices), and how users go online and offline — through the Hub with fake sessions, on the
// raw frames a client reads.
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
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
using ::testing::IsEmpty;
using Kind = v1::ServerFrame::KindCase;

constexpr char kSecret[] = "both-ways-secret";

class BothWaysTest : public ::testing::Test {
 protected:
  // `jwt`: tokens required (connect frames); otherwise development mode.
  void Start(Limits limits, bool jwt = false) {
    limits.disconnect_grace = absl::Seconds(5);
    limits.history.size = 10;
    if (jwt) verifier_ = *auth::JwtVerifier::Create({kSecret, ""});
    engine_ = std::make_unique<engine::MemoryEngine>(limits, [this] { return Now(); });
    hub_ = std::make_unique<TestHub>(limits, "n1", engine_.get(), &frames_, verifier_.get(),
                                     [this] { return Now(); });
  }

  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    {
      absl::MutexLock lock(&clock_mu_);
      now_ += d;
    }
    hub_->Tick();
  }

  std::shared_ptr<FakeSession> Connect(const std::string& user = "") {
    auto s = std::make_shared<FakeSession>(hub_->NextConnectionId(), user);
    EXPECT_TRUE(hub_->Register(s).ok());
    return s;
  }
  // A connection that authenticates with a token carrying `claims` (a JSON object's members).
  std::string Token(const std::string& sub, const std::string& claims) {
    return *auth::SignJwt("HS256", kSecret,
                          absl::StrCat(R"({"sub":")", sub, R"(","exp":)",
                                       absl::ToUnixSeconds(Now() + absl::Hours(1)), claims, "}"));
  }
  std::shared_ptr<FakeSession> ConnectWithToken(const std::string& sub, const std::string& claims) {
    const std::string token = Token(sub, claims);
    auto s = Connect();
    hub_->OnClientFrame(s, absl::StrCat(R"({"id":1,"connect":{"token":")", token, R"("}})"));
    EXPECT_EQ(s->Last().kind_case(), Kind::kConnected) << s->Frames().back();
    return s;
  }
  void Send(const std::shared_ptr<FakeSession>& s, const std::string& text) {
    hub_->OnClientFrame(s, text);
  }

  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::unique_ptr<const auth::JwtVerifier> verifier_;
  std::unique_ptr<engine::MemoryEngine> engine_;
  StringFrameFactory frames_;
  std::unique_ptr<TestHub> hub_;
};

TEST_F(BothWaysTest, ClientPublishIsRefusedUnlessAPrefixAllowsIt) {
  Limits l;
  l.client_publish_prefixes = {"room:"};
  Start(l);
  auto a = Connect(), b = Connect();
  Send(b, R"({"id":1,"subscribe":{"channel":"room:1"}})");
  Send(a, R"({"id":2,"publish":{"channel":"news","data":{"t":"x"}}})");
  EXPECT_EQ(a->Frames().back(),
            R"({"id":2,"error":{"code":"PERMISSION_DENIED","message":"publish.channel: 'news' is )"
            R"(not allowed: clients publish only where the token's publish claim or )"
            R"(--client-publish-prefixes allows it"}})");
  Send(a, R"({"id":3,"publish":{"channel":"room:1"}})");
  EXPECT_THAT(a->Frames().back(), HasSubstr("publish.data: required"));
  Send(a, R"({"id":4,"publish":{"channel":"room:1","data":{"t":"hi"}}})");
  const v1::ServerFrame reply = a->Last();
  ASSERT_EQ(reply.kind_case(), Kind::kPublished) << a->Frames().back();
  EXPECT_EQ(reply.id(), 4u);
  EXPECT_EQ(reply.published().channel(), "room:1");
  EXPECT_EQ(reply.published().offset(), 1u);
  EXPECT_EQ(b->Frames().back(), R"({"pub":{"channel":"room:1","offset":"1","data":{"t":"hi"}}})");
  // Kept in history like a backend's publication: a subscriber that recovers gets it.
  auto c = Connect();
  Send(c, absl::StrCat(R"({"id":5,"subscribe":{"channel":"room:1","recover":{"epoch":")",
                       reply.published().epoch(), R"(","offset":"0"}}})"));
  EXPECT_THAT(c->Frames().back(), HasSubstr(R"("recovered":true,"publications":[{"channel":)"
                                            R"("room:1","offset":"1","data":{"t":"hi"}}])"));
  // The data as the client sent it, as an HTTP publication's: key order, numbers as written.
  Send(
      a,
      R"({"id":6,"publish":{"channel":"room:1","data": {"b":1,"a":12345678901234567890,"c":1.50} }})");
  EXPECT_EQ(b->Frames().back(), R"({"pub":{"channel":"room:1","offset":"2","data":{"b":1,)"
                                R"("a":12345678901234567890,"c":1.50}}})");
  Send(a, R"({"id":7,"publish":{"channel":"room:1","data":{"a":1,"a":2}}})");
  EXPECT_THAT(a->Frames().back(), HasSubstr("publish.data: Repeated map key: 'a' is already set."));
}

TEST_F(BothWaysTest, ClientPublishFollowsTheTokensPublishClaim) {
  Limits l;
  l.client_publish_prefixes = {"chat:"};
  Start(l, /*jwt=*/true);
  auto alice = ConnectWithToken("alice", R"(,"channels":["chat:*"],"publish":["orders:alice"])");
  Send(alice, R"({"id":2,"publish":{"channel":"orders:alice","data":1}})");
  EXPECT_EQ(alice->Last().kind_case(), Kind::kPublished) << alice->Frames().back();
  // The prefix allows it, and so does the channels claim.
  Send(alice, R"({"id":3,"publish":{"channel":"chat:7","data":2}})");
  EXPECT_EQ(alice->Last().kind_case(), Kind::kPublished) << alice->Frames().back();
  // A publish-prefix channel the token may not subscribe to.
  auto bob = ConnectWithToken("bob", R"(,"channels":["store:1"])");
  Send(bob, R"({"id":4,"publish":{"channel":"chat:7","data":3}})");
  EXPECT_THAT(bob->Frames().back(), HasSubstr("PERMISSION_DENIED"));
  Send(bob, R"({"id":5,"publish":{"channel":"orders:alice","data":3}})");
  EXPECT_THAT(bob->Frames().back(), HasSubstr("PERMISSION_DENIED"));
}

TEST_F(BothWaysTest, WatchersSeeClientPublications) {
  Limits l;
  l.client_publish_prefixes = {"room:"};
  Start(l);
  v1::WatchEventsRequest req;
  req.add_types(v1::EVENT_TYPE_PUBLISH);
  auto watcher = *hub_->Watch(req, nullptr);
  auto a = Connect("alice");
  Send(a, R"({"publish":{"channel":"room:1","data":{"t":"hi"}}})");
  EXPECT_THAT(a->Frames(), ::testing::Not(::testing::Contains(HasSubstr("published"))));
  auto e = watcher->Pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->user(), "alice");
  EXPECT_EQ(e->channel(), "room:1");
  EXPECT_EQ(e->offset(), 1u);
  EXPECT_EQ(e->data().struct_value().fields().at("t").string_value(), "hi");
}

TEST_F(BothWaysTest, MembersSeeJoinsAndLeavesOnJoinLeaveChannels) {
  Limits l;
  l.join_leave_prefixes = {"room:"};
  Start(l, /*jwt=*/true);
  auto alice =
      ConnectWithToken("alice", R"(,"channels":["room:*","news"],"info":{"name":"Alice"})");
  auto bob = ConnectWithToken("bob", R"(,"channels":["room:*","news"])");
  Send(alice, R"({"id":2,"subscribe":{"channel":"room:1"}})");
  Send(alice, R"({"id":3,"subscribe":{"channel":"news"}})");
  Send(bob, R"({"id":2,"subscribe":{"channel":"room:1"}})");
  // Alice sees Bob join (and saw herself); Bob sees only what happened after he was in.
  EXPECT_EQ(alice->Frames().back(),
            absl::StrCat(R"({"memberJoined":{"channel":"room:1","member":{"connectionId":")",
                         bob->id(), R"(","user":"bob","node":"n1","joinedAtMs":")",
                         absl::ToUnixMillis(Now()), R"("}}})"));
  EXPECT_EQ(alice->OfKind(Kind::kMemberJoined).size(), 2u);
  EXPECT_EQ(alice->OfKind(Kind::kMemberJoined)[0]
                .member_joined()
                .member()
                .info()
                .fields()
                .at("name")
                .string_value(),
            "Alice");
  hub_->Unregister(*alice, 1000, "bye");
  EXPECT_EQ(
      bob->Frames().back(),
      absl::StrCat(R"({"memberLeft":{"channel":"room:1","member":{"connectionId":")", alice->id(),
                   R"(","user":"alice","node":"n1","joinedAtMs":"0","info":{"name":"Alice"}}}})"));
  // Not a join/leave channel: nothing.
  auto carol = ConnectWithToken("carol", R"(,"channels":["news"])");
  Send(carol, R"({"id":2,"subscribe":{"channel":"news"}})");
  EXPECT_THAT(carol->OfKind(Kind::kMemberJoined), IsEmpty());
}

TEST_F(BothWaysTest, ClientsAskWhoIsInAPresenceChannel) {
  Limits l;
  l.presence_prefixes = {"room:"};
  Start(l);
  auto a = Connect("alice"), b = Connect("bob");
  Send(a, R"({"id":1,"subscribe":{"channel":"room:1"}})");
  Send(b, R"({"id":1,"subscribe":{"channel":"room:1"}})");
  Send(a, R"({"id":2,"presence":{"channel":"room:1"}})");
  const v1::ServerFrame reply = a->Last();
  ASSERT_EQ(reply.kind_case(), Kind::kPresence) << a->Frames().back();
  EXPECT_EQ(reply.id(), 2u);
  ASSERT_EQ(reply.presence().members_size(), 2);
  EXPECT_EQ(reply.presence().members(0).user(), "alice");
  EXPECT_EQ(reply.presence().members(1).connection_id(), b->id());
  Send(a, R"({"id":3,"presence":{"channel":"news"}})");
  EXPECT_THAT(a->Frames().back(), HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(a->Frames().back(), HasSubstr("--presence-prefixes"));
}

// A refresh's new `info` replaces the old one in the presence entries already listed, which keep
// the time their subscription went live.
TEST_F(BothWaysTest, ARefreshedInfoIsListedInPresenceWithItsJoinTime) {
  Limits l;
  l.presence_prefixes = {"room:"};
  Start(l, /*jwt=*/true);
  auto alice = ConnectWithToken("alice", R"(,"channels":["room:*"],"info":{"name":"Old"})");
  Send(alice, R"({"id":2,"subscribe":{"channel":"room:1"}})");
  const int64_t joined = absl::ToUnixMillis(Now());
  Advance(absl::Seconds(3));
  Send(alice,
       absl::StrCat(R"({"id":3,"refresh":{"token":")",
                    Token("alice", R"(,"channels":["room:*"],"info":{"name":"New"})"), R"("}})"));
  ASSERT_EQ(alice->Last().kind_case(), Kind::kRefreshed) << alice->Frames().back();
  Send(alice, R"({"id":4,"presence":{"channel":"room:1"}})");
  const v1::ServerFrame reply = alice->Last();
  ASSERT_EQ(reply.kind_case(), Kind::kPresence) << alice->Frames().back();
  ASSERT_EQ(reply.presence().members_size(), 1);
  EXPECT_EQ(reply.presence().members(0).info().fields().at("name").string_value(), "New");
  EXPECT_EQ(reply.presence().members(0).joined_at_ms(), joined);
  // Left: not listed again by a later refresh.
  Send(alice, R"({"id":5,"unsubscribe":{"channel":"room:1"}})");
  Send(alice, absl::StrCat(R"({"id":6,"refresh":{"token":")",
                           Token("alice", R"(,"channels":["room:*"])"), R"("}})"));
  ASSERT_EQ(alice->Last().kind_case(), Kind::kRefreshed) << alice->Frames().back();
  auto bob = ConnectWithToken("bob", R"(,"channels":["room:*"])");
  Send(bob, R"({"id":2,"presence":{"channel":"room:1"}})");
  ASSERT_EQ(bob->Last().kind_case(), Kind::kPresence) << bob->Frames().back();
  EXPECT_EQ(bob->Last().presence().members_size(), 0);
}

TEST_F(BothWaysTest, UsersGoOfflineWhenTheirLastTabClosesAfterTheGrace) {
  Start(Limits());
  v1::WatchEventsRequest req;
  req.add_types(v1::EVENT_TYPE_USER_ONLINE);
  req.add_types(v1::EVENT_TYPE_USER_OFFLINE);
  auto watcher = *hub_->Watch(req, nullptr);
  auto next = [&]() -> std::string {
    auto e = watcher->Pop();
    if (!e.has_value()) return "none";
    return absl::StrCat(e->type() == v1::EVENT_TYPE_USER_ONLINE ? "online " : "offline ",
                        e->user());
  };
  // Two users, two tabs each.
  auto a1 = Connect("alice"), a2 = Connect("alice"), b1 = Connect("bob"), b2 = Connect("bob");
  EXPECT_EQ(next(), "online alice");
  EXPECT_EQ(next(), "online bob");
  EXPECT_EQ(next(), "none");
  // One tab closes: still online.
  hub_->Unregister(*a1, 1001, "tab closed");
  Advance(absl::Seconds(10));
  EXPECT_EQ(next(), "none");
  // The last tab closes: offline after the grace period, not before.
  hub_->Unregister(*a2, 1001, "tab closed");
  Advance(absl::Seconds(4));
  EXPECT_EQ(next(), "none");
  Advance(absl::Seconds(2));
  EXPECT_EQ(next(), "offline alice");
  // A reload within the grace period is neither offline nor online.
  hub_->Unregister(*b1, 1001, "");
  hub_->Unregister(*b2, 1001, "reload");
  Advance(absl::Seconds(3));
  auto b3 = Connect("bob");
  Advance(absl::Seconds(10));
  EXPECT_EQ(next(), "none");
  // Anonymous connections are no user.
  auto anon = Connect();
  hub_->Unregister(*anon, 1000, "");
  EXPECT_EQ(next(), "none");
  hub_->Unregister(*b3, 1000, "bye");
  Advance(absl::Seconds(6));
  EXPECT_EQ(next(), "offline bob");
}

}  // namespace
}  // namespace herald::core
