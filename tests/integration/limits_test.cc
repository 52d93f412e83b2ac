// Limits against the real herald: a connection's frame rate (errors, then close 4029, while a
// well-behaved connection is unaffected), connections per IP and per user (refused, then accepted
// again once one closes), the HTTP API's request rate (429 with Retry-After), the handshake
// timeout against slowloris sockets, and every refusal counted in /metrics.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/auth/jwt.h"
#include "server/core/protocol.h"
#include "tests/support/herald_process.h"
#include "tests/support/http_client.h"
#include "tests/support/raw_http.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using Kind = v1::ServerFrame::KindCase;

constexpr char kSecret[] = "limits-secret-41d2";

std::string Token(const std::string& sub) {
  auto t = auth::SignJwt("HS256", kSecret, auth::ClaimsJson(sub, absl::Now() + absl::Hours(1), {}));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

v1::StatsResponse Stats(const HeraldProcess& h) {
  auto stub = h.Stub();
  grpc::ClientContext ctx;
  v1::StatsResponse resp;
  EXPECT_TRUE(stub->Stats(&ctx, v1::StatsRequest(), &resp).ok());
  return resp;
}

// The value of `herald_limit_refusals_total{reason="<reason>"}` in /metrics, or -1.
int64_t Refusals(const HeraldProcess& h, const std::string& reason) {
  HttpCall call;
  call.method = "GET";
  call.url = "http://" + h.ws_address() + "/metrics";
  call.content_type = "";
  HttpResult r = Http(call);
  EXPECT_EQ(r.status, 200) << r.error;
  const std::string sample = absl::StrCat("herald_limit_refusals_total{reason=\"", reason, "\"} ");
  const size_t at = r.body.find(sample);
  if (at == std::string::npos) return -1;
  int64_t value = -1;
  const size_t start = at + sample.size();
  absl::SimpleAtoi(r.body.substr(start, r.body.find('\n', start) - start), &value);
  return value;
}

// Waits until the server counts `n` open connections.
bool WaitConnections(const HeraldProcess& h, uint32_t n) {
  return WaitFor([&] { return Stats(h).connections() == n; });
}

TEST(FrameRateTest, AFloodGetsErrorsThenClose4029WhileACalmConnectionIsUnaffected) {
  HeraldProcess herald(
      {"--max-frame-rate", "20", "--frame-burst", "20", "--max-rate-refusals", "5"});
  ASSERT_TRUE(herald.ok());
  WsClient calm;
  ASSERT_TRUE(calm.Connect(herald.ws_url()));
  ASSERT_TRUE(calm.Subscribe("news", 1));
  // A raw client: it keeps sending until the server has closed, and then reads what came back.
  RawWsClient flooder;
  ASSERT_TRUE(flooder.Connect(herald.ws_address()));
  for (int i = 1; i <= 300; ++i) {
    if (!flooder.SendText(absl::StrCat(R"({"id":)", i, R"(,"message":{"data":{"n":)", i, "}}}"))) {
      break;  // closed by the server already
    }
  }
  int refused = 0;
  int sent = 0;
  int close_code = 0;
  while (std::optional<RawWsClient::Frame> raw = flooder.Read()) {
    if (raw->opcode == 8) {
      close_code = raw->close_code;
      EXPECT_THAT(raw->payload, HasSubstr("rate limit"));
      break;
    }
    v1::ServerFrame f;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(raw->payload, &f).ok()) << raw->payload;
    if (f.kind_case() == Kind::kSent) ++sent;
    if (f.kind_case() != Kind::kError) continue;
    ++refused;
    EXPECT_EQ(f.error().code(), "RESOURCE_EXHAUSTED");
    EXPECT_THAT(f.error().message(), HasSubstr("more than 20 frames per second"));
    EXPECT_NE(f.id(), 0u);  // the refused request's id is echoed
  }
  EXPECT_EQ(close_code, core::kCloseRateLimited);
  EXPECT_EQ(refused, 5);
  EXPECT_GE(sent, 20);   // the burst was served
  EXPECT_LT(sent, 300);  // the rest was not acted on
  const v1::StatsResponse stats = Stats(herald);
  EXPECT_EQ(stats.messages_from_clients(), static_cast<uint64_t>(sent));
  EXPECT_EQ(stats.rate_limited_frames(), 5u);
  EXPECT_EQ(stats.rate_limit_closes(), 1u);

  // The calm connection still gets replies and publications.
  calm.Send(R"({"id":2,"ping":{}})");
  EXPECT_EQ(calm.WaitReply(2).kind_case(), Kind::kPong);
  HttpResult pub = PostJson(herald.ws_address(), "/api/v1/Publish",
                            R"({"channel":"news","data":{"after":"flood"}})");
  EXPECT_EQ(pub.status, 200) << pub.body;
  calm.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
  EXPECT_TRUE(calm.open());
  EXPECT_EQ(Refusals(herald, "frame_rate"), 5);
  EXPECT_EQ(Refusals(herald, "frame_rate_close"), 1);
}

TEST(ConnectionLimitTest, TheConnectionOverThePerIpLimitGets429AndOneIsAcceptedAfterAClose) {
  HeraldProcess herald({"--max-connections-per-ip", "3"});
  ASSERT_TRUE(herald.ok());
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    ASSERT_TRUE(clients.back()->Connect(herald.ws_url())) << i;
  }
  WsClient fourth;
  EXPECT_FALSE(fourth.Connect(herald.ws_url()));
  EXPECT_EQ(fourth.http_status(), 429);
  EXPECT_EQ(Refusals(herald, "connections_per_ip"), 1);

  clients[0]->Close();
  ASSERT_TRUE(WaitConnections(herald, 2));
  WsClient again;
  EXPECT_TRUE(again.Connect(herald.ws_url()));
  WsClient over;
  EXPECT_FALSE(over.Connect(herald.ws_url()));
  EXPECT_EQ(over.http_status(), 429);

  // Every count comes back: after all close, three connect again.
  again.Close();
  for (auto& c : clients) c->Close();
  ASSERT_TRUE(WaitConnections(herald, 0));
  std::vector<std::unique_ptr<WsClient>> later;
  for (int i = 0; i < 3; ++i) {
    later.push_back(std::make_unique<WsClient>());
    EXPECT_TRUE(later.back()->Connect(herald.ws_url())) << i;
  }
  EXPECT_EQ(Stats(herald).refused_connections_per_ip(), 2u);
}

TEST(ConnectionLimitTest, PerUserLimitAtTheHandshakeAndAtConnectThenFreedOnClose) {
  HeraldProcess herald({"--jwt-hs256-secret", kSecret, "--max-connections-per-user", "2"});
  ASSERT_TRUE(herald.ok());
  WsClient a, b;
  ASSERT_TRUE(a.Connect(herald.ws_url("?token=" + Token("u1"))));
  ASSERT_TRUE(b.Connect(herald.ws_url("?token=" + Token("u1"))));
  WsClient handshake;
  EXPECT_FALSE(handshake.Connect(herald.ws_url("?token=" + Token("u1"))));
  EXPECT_EQ(handshake.http_status(), 429);

  WsClient by_frame;
  ASSERT_TRUE(by_frame.Connect(herald.ws_url()));
  by_frame.Send(absl::StrCat(R"({"id":1,"connect":{"token":")", Token("u1"), R"("}})"));
  v1::ServerFrame reply = by_frame.WaitReply(1);
  EXPECT_EQ(reply.error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_THAT(reply.error().message(), HasSubstr("--max-connections-per-user"));
  ASSERT_TRUE(by_frame.WaitClosed());
  EXPECT_EQ(by_frame.close_code(), core::kCloseTooManyConnections);

  WsClient other_user;
  EXPECT_TRUE(other_user.Connect(herald.ws_url("?token=" + Token("u2"))));
  EXPECT_EQ(Refusals(herald, "connections_per_user"), 2);

  a.Close();
  ASSERT_TRUE(WaitConnections(herald, 2));  // b and other_user
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  c.Send(absl::StrCat(R"({"id":1,"connect":{"token":")", Token("u1"), R"("}})"));
  EXPECT_EQ(c.WaitReply(1).kind_case(), Kind::kConnected);
  WsClient d;
  EXPECT_FALSE(d.Connect(herald.ws_url("?token=" + Token("u1"))));
  EXPECT_EQ(d.http_status(), 429);
}

TEST(ApiRateTest, OverTheRatePerApiKeyGets429WithRetryAfter) {
  HeraldProcess herald({"--api-key", "k1", "--api-rate", "0.1", "--api-burst", "2"});
  ASSERT_TRUE(herald.ok());
  // A wrong key is refused before the rate is looked at: it uses up nothing.
  EXPECT_EQ(PostJson(herald.ws_address(), "/api/v1/Stats", "{}", "wrong").status, 401);
  EXPECT_EQ(PostJson(herald.ws_address(), "/api/v1/Stats", "{}", "k1").status, 200);
  EXPECT_EQ(PostJson(herald.ws_address(), "/api/v1/Stats", "{}", "k1").status, 200);
  HttpResult over = PostJson(herald.ws_address(), "/api/v1/Stats", "{}", "k1");
  EXPECT_EQ(over.status, 429);
  EXPECT_THAT(over.body, HasSubstr(R"("code":"RESOURCE_EXHAUSTED")"));
  EXPECT_THAT(over.body, HasSubstr("--api-rate"));
  int retry_after = 0;
  ASSERT_TRUE(absl::SimpleAtoi(over.header("Retry-After"), &retry_after))
      << over.header("Retry-After");
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 10);
  // gRPC shares no bucket with the HTTP API: its calls go on.
  auto stub = herald.Stub();
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer k1");
    v1::StatsResponse stats;
    ASSERT_TRUE(stub->Stats(&ctx, v1::StatsRequest(), &stats).ok()) << i;
    EXPECT_EQ(stats.rate_limited_api_requests(), 1u);
  }
  EXPECT_EQ(Refusals(herald, "api_rate"), 1);
}

TEST(ApiRateTest, WithoutAnApiKeyTheRateIsPerClientAddress) {
  HeraldProcess herald({"--api-rate", "0.1", "--api-burst", "1"});
  ASSERT_TRUE(herald.ok());
  EXPECT_EQ(PostJson(herald.ws_address(), "/api/v1/Stats", "{}").status, 200);
  HttpResult over = PostJson(herald.ws_address(), "/api/v1/Stats", "{}");
  EXPECT_EQ(over.status, 429);
  EXPECT_FALSE(over.header("Retry-After").empty());
  // /metrics is not an API call.
  EXPECT_EQ(Refusals(herald, "api_rate"), 1);
  EXPECT_EQ(Stats(herald).rate_limited_api_requests(), 1u);
}

TEST(HandshakeTimeoutTest, SlowlorisSocketsAreClosedWhileClientsConnect) {
  HeraldProcess herald({"--max-connections-per-ip", "3"});
  ASSERT_TRUE(herald.ok());
  // Sockets that start a handshake and never finish it.
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    const int fd = ConnectTcp(herald.ws_address());
    ASSERT_GE(fd, 0);
    const std::string partial = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    ASSERT_EQ(send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(partial.size()));
    slow.push_back(fd);
  }
  // They hold no per-IP slot: the limit counts upgraded connections, so clients still connect.
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    EXPECT_TRUE(clients.back()->Connect(herald.ws_url())) << i;
  }
  // The server closes each slow socket (the 5 s bound on a connection's first request head).
  const absl::Time start = absl::Now();
  for (int fd : slow) {
    bool closed = false;
    while (!closed && absl::Now() - start < absl::Seconds(15)) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char buf[512];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        closed = n <= 0;  // EOF or reset; a 408 answer is read first, then EOF
      }
    }
    EXPECT_TRUE(closed) << "slowloris socket still open after 15 s";
    close(fd);
  }
  EXPECT_GE(absl::Now() - start, absl::Seconds(3));  // not closed at once: it is the timeout
  for (auto& c : clients) EXPECT_TRUE(c->open());
}

}  // namespace
}  // namespace herald::testing
