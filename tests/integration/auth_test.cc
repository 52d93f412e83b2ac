// JWT authentication of WebSocket clients, against the real herald: handshake tokens, the
// connect/refresh frames, channel permissions, expiry and the documented close codes.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/auth/jwt.h"
#include "server/core/protocol.h"
#include "tests/support/herald_process.h"
#include "tests/support/rsa_keys.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kSecret[] = "integration-secret-7c1f";

std::string Token(const std::string& sub, absl::Duration ttl = absl::Hours(1),
                  std::vector<std::string> channels = {"store:42", "order:*"},
                  const std::string& secret = kSecret) {
  auto t = auth::SignJwt("HS256", secret, auth::ClaimsJson(sub, absl::Now() + ttl, channels));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

std::string Frame(uint32_t id, const std::string& kind, const std::string& body) {
  return absl::StrCat(R"({"id":)", id, R"(,")", kind, R"(":)", body, "}");
}

v1::ServerFrame Connect(WsClient& c, const std::string& token, uint32_t id = 1) {
  c.Send(Frame(id, "connect", absl::StrCat(R"({"token":")", token, R"("})")));
  return c.WaitReply(id);
}

int64_t ListedUsers(const HeraldProcess& h, const std::string& user) {
  auto stub = h.Stub();
  grpc::ClientContext ctx;
  v1::ListConnectionsRequest req;
  req.set_user(user);
  v1::ListConnectionsResponse resp;
  EXPECT_TRUE(stub->ListConnections(&ctx, req, &resp).ok());
  return resp.total();
}

class AuthTest : public ::testing::Test {
 protected:
  AuthTest() : herald_({"--jwt-hs256-secret", kSecret, "--auth-timeout-ms", "1500"}) {}
  void SetUp() override { ASSERT_TRUE(herald_.ok()); }
  HeraldProcess herald_;
};

TEST_F(AuthTest, ValidHandshakeTokenMakesSubTheConnectionsUser) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url("?token=" + Token("u-hand"))));
  EXPECT_FALSE(c.Frames().at(0).welcome().connect_required());  // the URL's token did it
  EXPECT_EQ(ListedUsers(herald_, "u-hand"), 1);
  EXPECT_TRUE(c.Subscribe("store:42"));
  // Already authenticated: a second connect is refused, the connection stays.
  v1::ServerFrame again = Connect(c, Token("u-other"), 5);
  ASSERT_TRUE(again.has_error());
  EXPECT_EQ(again.error().code(), "FAILED_PRECONDITION");
  EXPECT_TRUE(c.open());
  // SendToUser reaches it by the token's user.
  auto stub = herald_.Stub();
  grpc::ClientContext ctx;
  v1::SendToUserRequest req;
  req.set_user("u-hand");
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({"hi":1})", req.mutable_data()).ok());
  v1::SendResponse resp;
  ASSERT_TRUE(stub->SendToUser(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.queued(), 1u);
  c.WaitFrame([](const v1::ServerFrame& f) { return f.has_push(); }, "push to the user");
}

TEST_F(AuthTest, BadHandshakeTokensGetHttp401) {
  const int64_t exp = absl::ToUnixSeconds(absl::Now() + absl::Hours(1));
  auto raw = [](const std::string& header, const std::string& claims) {
    return absl::StrCat(auth::Base64Url(header), ".", auth::Base64Url(claims), ".",
                        auth::Base64Url("sig"));
  };
  struct Case {
    std::string name, token, body;
  };
  const std::vector<Case> cases = {
      {"expired", Token("u1", -absl::Seconds(10)), "token.exp: expired"},
      {"wrong signature", Token("u1", absl::Hours(1), {}, "wrong-secret"),
       "token.signature: does not verify"},
      {"alg none",
       absl::StrCat(auth::Base64Url(R"({"alg":"none"})"), ".",
                    auth::Base64Url(absl::StrCat(R"({"sub":"u1","exp":)", exp, "}")), "."),
       "'none' is not accepted"},
      {"RS256 on an HS256 server", raw(R"({"alg":"RS256"})", R"({"sub":"u1"})"),
       "RS256 is not accepted"},
      {"malformed", "not-a-jwt", "token: malformed"},
      {"missing sub", *auth::SignJwt("HS256", kSecret, absl::StrCat(R"({"exp":)", exp, "}")),
       "token.sub: required"},
      {"missing exp", *auth::SignJwt("HS256", kSecret, R"({"sub":"u1"})"), "token.exp: required"},
  };
  for (const Case& c : cases) {
    WsClient client;
    EXPECT_FALSE(client.Connect(herald_.ws_url("?token=" + c.token))) << c.name;
    EXPECT_EQ(client.http_status(), 401) << c.name;
  }
  // The body names the problem (checked over plain HTTP for one case).
  CommandResult curl = RunCommand(
      {"/usr/bin/env", "curl", "-s", "-i", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
       "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
       "http://" + herald_.ws_address() + "/ws?token=" + cases[0].token});
  if (curl.exit_code == 0) {
    EXPECT_THAT(curl.out, HasSubstr("401"));
    EXPECT_THAT(curl.out, HasSubstr("invalid token: token.exp: expired at"));
  }
  EXPECT_EQ(ListedUsers(herald_, "u1"), 0);
}

TEST_F(AuthTest, ConnectFrameAuthenticates) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  EXPECT_TRUE(c.Frames().at(0).welcome().connect_required());
  const absl::Time before = absl::Now();
  v1::ServerFrame reply = Connect(c, Token("u-frame", absl::Minutes(10)));
  ASSERT_TRUE(reply.has_connected()) << reply.DebugString();
  EXPECT_EQ(reply.connected().user(), "u-frame");
  EXPECT_NEAR(static_cast<double>(reply.connected().expires_at_ms()),
              static_cast<double>(absl::ToUnixMillis(before + absl::Minutes(10))), 2000);
  EXPECT_EQ(ListedUsers(herald_, "u-frame"), 1);
  EXPECT_TRUE(c.Subscribe("order:o-77", 2));
  // Disconnect by user reaches a connection that authenticated with a frame.
  auto stub = herald_.Stub();
  grpc::ClientContext ctx;
  v1::DisconnectRequest req;
  req.set_user("u-frame");
  req.set_code(4000);
  v1::DisconnectResponse resp;
  ASSERT_TRUE(stub->Disconnect(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.disconnected(), 1u);
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 4000);
  EXPECT_TRUE(WaitFor([&] { return ListedUsers(herald_, "u-frame") == 0; }));
}

TEST_F(AuthTest, InvalidConnectTokenGetsAnErrorAndClose4003) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  v1::ServerFrame reply = Connect(c, Token("u1", absl::Hours(1), {}, "wrong-secret"));
  ASSERT_TRUE(reply.has_error());
  EXPECT_EQ(reply.error().code(), "UNAUTHENTICATED");
  EXPECT_EQ(reply.error().message(), "connect.token.signature: does not verify");
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), core::kCloseUnauthorized);
  EXPECT_THAT(c.close_reason(), StartsWith("invalid token: token.signature"));
}

TEST_F(AuthTest, ExpiredConnectTokenClosesWith4001) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  v1::ServerFrame reply = Connect(c, Token("u1", -absl::Seconds(1)));
  ASSERT_TRUE(reply.has_error());
  EXPECT_THAT(reply.error().message(), StartsWith("connect.token.exp: expired at"));
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), core::kCloseTokenExpired);
  EXPECT_THAT(c.close_reason(), StartsWith("token expired: token.exp: expired at"));
}

// A token without a usable `exp` never worked: invalid (4003), not expired (4001, which tells a
// client to fetch a fresh token and try again).
TEST_F(AuthTest, AConnectTokenWithoutANumericExpCloses4003) {
  for (const std::string claims : {R"({"sub":"u1"})", R"({"sub":"u1","exp":"soon"})"}) {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald_.ws_url()));
    v1::ServerFrame reply = Connect(c, *auth::SignJwt("HS256", kSecret, claims));
    EXPECT_EQ(reply.error().code(), "UNAUTHENTICATED") << claims;
    ASSERT_TRUE(c.WaitClosed()) << claims;
    EXPECT_EQ(c.close_code(), core::kCloseUnauthorized) << claims;
    EXPECT_THAT(c.close_reason(), StartsWith("invalid token: token.exp: ")) << claims;
  }
}

TEST_F(AuthTest, FirstFrameMustBeConnect) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.Send(R"({"id":3,"subscribe":{"channel":"store:42"}})");
  v1::ServerFrame reply = c.WaitReply(3);
  ASSERT_TRUE(reply.has_error());
  EXPECT_EQ(reply.error().code(), "UNAUTHENTICATED");
  EXPECT_THAT(reply.error().message(), StartsWith("connect: the first frame must be connect"));
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), core::kCloseUnauthorized);
}

// Nor may anything that is not a valid frame come first: its error, then 4003 at once (not at
// the auth deadline).
TEST_F(AuthTest, AMalformedOrUnknownFirstFrameCloses4003) {
  for (const std::string frame : {R"({"id":4,"bogus":{}})", "[1,2]", "{not json"}) {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald_.ws_url()));
    c.Send(frame);
    const absl::Time sent = absl::Now();
    ASSERT_TRUE(c.WaitClosed(absl::Seconds(5))) << frame;
    EXPECT_LT(absl::Now() - sent, absl::Milliseconds(1000)) << frame;  // the deadline is 1.5 s
    EXPECT_EQ(c.close_code(), core::kCloseUnauthorized) << frame;
    EXPECT_EQ(c.close_reason(), "unauthorized: the first frame must be connect") << frame;
  }
}

TEST_F(AuthTest, NoConnectWithinTheDeadlineCloses4003) {
  WsClient c;
  const absl::Time before_open = absl::Now();  // the server's deadline starts after this
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  ASSERT_TRUE(c.WaitClosed(absl::Seconds(10)));
  EXPECT_EQ(c.close_code(), core::kCloseUnauthorized);
  EXPECT_EQ(c.close_reason(), "unauthorized: no connect frame within 1500 ms");
  const absl::Duration open_for = absl::Now() - before_open;
  EXPECT_GE(open_for, absl::Milliseconds(1500));
  // Deadlines are checked every 250 ms here (at most every quarter second); a second more for
  // slow builds.
  EXPECT_LT(open_for, absl::Milliseconds(1500 + 250 + 1000));
}

TEST_F(AuthTest, ForbiddenChannelIsPermissionDenied) {
  WsClient c;
  ASSERT_TRUE(
      c.Connect(herald_.ws_url("?token=" + Token("u5", absl::Hours(1), {"store:42", "order:*"}))));
  uint32_t id = 10;
  for (const std::string& allowed : {"store:42", "order:o-1", "customer:u5"}) {
    EXPECT_TRUE(c.Subscribe(allowed, ++id)) << allowed;
  }
  for (const std::string& forbidden : {"store:7", "store:420", "orders", "customer:u6"}) {
    c.Send(Frame(++id, "subscribe", absl::StrCat(R"({"channel":")", forbidden, R"("})")));
    v1::ServerFrame reply = c.WaitReply(id);
    ASSERT_TRUE(reply.has_error()) << forbidden;
    EXPECT_EQ(reply.error().code(), "PERMISSION_DENIED") << forbidden;
    EXPECT_EQ(reply.error().message(),
              absl::StrCat("subscribe.channel: '", forbidden,
                           "' is not allowed by the token's channels claim"));
  }
  EXPECT_TRUE(c.open());
  // Nothing of a forbidden channel arrives.
  auto stub = herald_.Stub();
  grpc::ClientContext ctx;
  v1::PublishRequest req;
  req.set_channel("store:7");
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({"x":1})", req.mutable_data()).ok());
  v1::PublishResponse resp;
  ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.delivery().queued(), 0u);
}

TEST_F(AuthTest, RefreshBeforeExpiryKeepsTheConnection) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  // `exp` has whole seconds: this token lives 2 to 3 seconds.
  const absl::Time start = absl::Now();
  v1::ServerFrame connected = Connect(c, Token("u-r", absl::Seconds(3)));
  ASSERT_TRUE(connected.has_connected());
  const absl::Time first_expiry = absl::FromUnixMillis(connected.connected().expires_at_ms());
  // A token for someone else is refused, and the connection stays.
  c.Send(Frame(2, "refresh", absl::StrCat(R"({"token":")", Token("u-x"), R"("})")));
  v1::ServerFrame wrong = c.WaitReply(2);
  ASSERT_TRUE(wrong.has_error());
  EXPECT_EQ(wrong.error().code(), "PERMISSION_DENIED");
  EXPECT_THAT(wrong.error().message(), StartsWith("refresh.token.sub: 'u-x'"));
  // So is an invalid one.
  c.Send(Frame(3, "refresh", R"({"token":"garbage"})"));
  EXPECT_EQ(c.WaitReply(3).error().code(), "UNAUTHENTICATED");
  c.Send(
      Frame(4, "refresh", absl::StrCat(R"({"token":")", Token("u-r", absl::Minutes(5)), R"("})")));
  v1::ServerFrame refreshed = c.WaitReply(4);
  ASSERT_TRUE(refreshed.has_refreshed()) << refreshed.DebugString();
  EXPECT_GT(absl::FromUnixMillis(refreshed.refreshed().expires_at_ms()), start + absl::Minutes(4));
  // Well past the first token's expiry the connection still works.
  ASSERT_TRUE(WaitFor([&] { return absl::Now() > first_expiry + absl::Milliseconds(700); },
                      absl::Seconds(10)));
  c.Send(R"({"id":5,"ping":{}})");
  EXPECT_TRUE(c.WaitReply(5).has_pong());
  EXPECT_TRUE(c.open());
}

TEST_F(AuthTest, ExpiryWithoutRefreshClosesWith4001) {
  WsClient c;
  // `exp` has whole seconds: this token expires 1 to 2 seconds from now.
  const absl::Time expires_by = absl::Now() + absl::Seconds(2);
  ASSERT_TRUE(c.Connect(herald_.ws_url("?token=" + Token("u-e", absl::Seconds(2)))));
  ASSERT_TRUE(c.Subscribe("store:42"));
  ASSERT_TRUE(c.WaitClosed(absl::Seconds(10)));
  EXPECT_EQ(c.close_code(), core::kCloseTokenExpired);
  EXPECT_EQ(c.close_reason(), "token expired");
  // Closed at most one sweep (250 ms) after the expiry; a second more for slow builds.
  EXPECT_LT(absl::Now(), expires_by + absl::Milliseconds(250 + 1000));
}

class Rs256AuthTest : public ::testing::Test {
 protected:
  static std::string KeyFile() {
    static const std::string* path = [] {
      keys_ = new RsaKeyPair(GenerateRsaKeyPair());
      auto* p =
          new std::string(absl::StrCat(::testing::TempDir(), "/herald-rs256-", getpid(), ".pem"));
      std::ofstream(*p) << keys_->public_pem;
      return p;
    }();
    return *path;
  }
  Rs256AuthTest() : herald_({"--jwt-rs256-public-key", KeyFile()}) {}
  void SetUp() override { ASSERT_TRUE(herald_.ok()); }

  static RsaKeyPair* keys_;
  HeraldProcess herald_;
};
RsaKeyPair* Rs256AuthTest::keys_ = nullptr;

TEST_F(Rs256AuthTest, AcceptsRs256AndRefusesHsRsConfusion) {
  auto claims = auth::ClaimsJson("u-rs", absl::Now() + absl::Hours(1), {"store:42"});
  auto good = auth::SignJwt("RS256", keys_->private_pem, claims);
  ASSERT_TRUE(good.ok());
  WsClient ok;
  ASSERT_TRUE(ok.Connect(herald_.ws_url()));
  v1::ServerFrame reply = Connect(ok, *good);
  ASSERT_TRUE(reply.has_connected()) << reply.DebugString();
  EXPECT_EQ(reply.connected().user(), "u-rs");

  // An HS256 token whose HMAC key is the server's public key: the classic confusion attack.
  auto forged = auth::SignJwt("HS256", keys_->public_pem, claims);
  ASSERT_TRUE(forged.ok());
  WsClient handshake;
  EXPECT_FALSE(handshake.Connect(herald_.ws_url("?token=" + *forged)));
  EXPECT_EQ(handshake.http_status(), 401);
  WsClient frame;
  ASSERT_TRUE(frame.Connect(herald_.ws_url()));
  v1::ServerFrame refused = Connect(frame, *forged);
  ASSERT_TRUE(refused.has_error());
  EXPECT_THAT(refused.error().message(), HasSubstr("HS256 is not accepted by this server"));
  ASSERT_TRUE(frame.WaitClosed());
  EXPECT_EQ(frame.close_code(), core::kCloseUnauthorized);
}

TEST(AuthConfigTest, UnreadableOrBadKeyExitsWithCode2) {
  CommandResult missing =
      RunCommand({HeraldBinary(), "--jwt-rs256-public-key", "/nonexistent/key.pem"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--jwt-rs256-public-key: cannot read"));
  const std::string bad = absl::StrCat(::testing::TempDir(), "/herald-bad-", getpid(), ".pem");
  std::ofstream(bad) << "not a key\n";
  CommandResult garbage = RunCommand({HeraldBinary(), "--ws-listen", "127.0.0.1:0", "--grpc-listen",
                                      "127.0.0.1:0", "--jwt-rs256-public-key", bad});
  EXPECT_EQ(garbage.exit_code, 2);
  EXPECT_THAT(garbage.err, HasSubstr("jwt-rs256-public-key: not a PEM RSA public key"));
}

TEST(DevModeTest, WithoutAKeyClientsAreAnonymousAndConnectIsAccepted) {
  HeraldProcess h;
  ASSERT_TRUE(h.ok());
  // The warning is logged right after the listening lines.
  EXPECT_TRUE(WaitFor([&] {
    return h.Stderr().find("DEVELOPMENT MODE: no JWT key configured") != std::string::npos;
  })) << h.Stderr();
  WsClient c;
  ASSERT_TRUE(c.Connect(h.ws_url("?token=whatever")));
  EXPECT_FALSE(c.Frames().at(0).welcome().connect_required());
  v1::ServerFrame reply = Connect(c, "anything");
  ASSERT_TRUE(reply.has_connected());
  EXPECT_EQ(reply.connected().user(), "");
  EXPECT_TRUE(c.Subscribe("store:7", 2));
}

}  // namespace
}  // namespace herald::testing
