// Webhooks (docs/api.md "Webhooks"): the real herald with --proxy-*-url and --webhook-url
// against a real HTTP backend (tests/support/webhook_backend.py, which checks every signature),
// asserting on what a WebSocket client sees on its socket and what the backend received.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/background_process.h"
#include "tests/support/herald_process.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using Struct = google::protobuf::Struct;

constexpr char kSecret[] = "webhook-test-secret";

// One request the backend received: path, headers, parsed body, what it answered.
struct Received {
  std::string path;
  Struct headers;
  Struct body;
  int status = 0;
  bool verified = false;

  std::string Header(const std::string& name) const {
    auto it = headers.fields().find(name);
    return it == headers.fields().end() ? "" : it->second.string_value();
  }
  std::string Field(const std::string& name) const {
    auto it = body.fields().find(name);
    return it == body.fields().end() ? "" : it->second.string_value();
  }
  double Number(const std::string& name) const {
    auto it = body.fields().find(name);
    return it == body.fields().end() ? -1 : it->second.number_value();
  }
};

// tests/support/webhook_backend.py on a port of its own choosing (port 0), so that no other
// process can take it between a choice and the bind.
class Backend {
 public:
  Backend()
      : process_({HERALD_TEST_PYTHON, HERALD_WEBHOOK_BACKEND, "0", kSecret}),
        port_(WaitForPrintedPort(process_, "listening on ")) {}
  bool ok() const { return port_ > 0; }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  std::string Output() const { return process_.Output(); }

  std::vector<Received> Requests(const std::string& path = "") const {
    HttpCall call;
    call.method = "GET";
    call.url = Url("/_requests");
    call.content_type = "";
    HttpResult r = Http(call);
    google::protobuf::ListValue list;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &list).ok()) << r.body;
    std::vector<Received> out;
    for (const google::protobuf::Value& v : list.values()) {
      const auto& f = v.struct_value().fields();
      Received rec;
      rec.path = f.at("path").string_value();
      rec.headers = f.at("headers").struct_value();
      rec.body = f.at("body").struct_value();
      rec.status = static_cast<int>(f.at("status").number_value());
      rec.verified = f.at("verified").bool_value();
      if (path.empty() || rec.path == path) out.push_back(std::move(rec));
    }
    return out;
  }
  // Waits until the backend received at least `n` requests to `path`.
  std::vector<Received> WaitRequests(const std::string& path, size_t n,
                                     absl::Duration timeout = absl::Seconds(10)) const {
    std::vector<Received> got;
    WaitFor([&] { return (got = Requests(path)).size() >= n; }, timeout);
    return got;
  }

 private:
  BackgroundProcess process_;
  int port_;
};

std::string StructField(const google::protobuf::Value& v, const std::string& name) {
  auto it = v.struct_value().fields().find(name);
  return it == v.struct_value().fields().end() ? "<absent>" : it->second.string_value();
}

// The value of the /metrics sample `line_prefix` ("name{labels}"), or -1.
double Metric(const HeraldProcess& herald, const std::string& sample) {
  HttpCall call;
  call.method = "GET";
  call.url = absl::StrCat("http://", herald.ws_address(), "/metrics");
  call.content_type = "";
  const std::string body = Http(call).body;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::ConsumePrefix(&line, sample) && absl::ConsumePrefix(&line, " ")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return -1;
}

v1::ServerFrame Reply(WsClient& c, uint32_t id, const std::string& frame) {
  c.Send(frame);
  return c.WaitReply(id);
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(backend_.ok()) << backend_.Output(); }
  std::vector<std::string> Args(std::vector<std::string> more) const {
    more.insert(more.end(), {"--proxy-secret", kSecret});
    return more;
  }

  Backend backend_;
};

// --- connect ------------------------------------------------------------------------------------

TEST_F(ProxyTest, ConnectAcceptedSetsUserDataAndServerSideChannels) {
  HeraldProcess herald(Args({"--proxy-connect-url", backend_.Url("/connect")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url(), {{"Cookie", "PHPSESSID=abc123"}}));
  v1::ServerFrame connected =
      Reply(c, 1, R"({"id":1,"connect":{"token":"alice","data":{"page":"checkout"}}})");
  ASSERT_TRUE(connected.has_connected()) << connected.DebugString();
  EXPECT_EQ(connected.connected().user(), "u-alice");
  EXPECT_EQ(StructField(connected.connected().data(), "plan"), "gold");
  EXPECT_EQ(StructField(connected.connected().data(), "cookie"), "PHPSESSID=abc123");
  EXPECT_EQ(connected.connected().expires_at_ms(), 0);  // the connection's life
  // The backend's `channels`: subscribed server-side, pushed without id.
  v1::ServerFrame pushed = c.WaitFrame([](const v1::ServerFrame& f) { return f.has_subscribed(); },
                                       "subscribed user:u-alice");
  EXPECT_EQ(pushed.id(), 0u);
  EXPECT_EQ(pushed.subscribed().channel(), "user:u-alice");
  // `allow`: the client's own subscribes, like a token's channels claim.
  EXPECT_TRUE(Reply(c, 2, R"({"id":2,"subscribe":{"channel":"room:7"}})").has_subscribed());
  v1::ServerFrame denied = Reply(c, 3, R"({"id":3,"subscribe":{"channel":"store:7"}})");
  EXPECT_EQ(denied.error().code(), "PERMISSION_DENIED");
  EXPECT_EQ(denied.error().message(),
            "subscribe.channel: 'store:7' is not allowed by the connect backend's allow list");

  std::vector<Received> got = backend_.Requests("/connect");
  ASSERT_THAT(got, SizeIs(1));
  const Received& r = got[0];
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(r.Header("X-Herald-Event"), "connect");
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_FALSE(r.Header("X-Herald-Request-Id").empty());
  EXPECT_EQ(r.Field("event"), "connect");
  EXPECT_EQ(r.Field("connectionId"), c.connection_id());
  EXPECT_EQ(r.Field("token"), "alice");
  EXPECT_THAT(r.Field("remoteAddress"), HasSubstr("127.0.0.1:"));
  EXPECT_EQ(StructField(r.body.fields().at("headers"), "Cookie"), "PHPSESSID=abc123");
  EXPECT_EQ(StructField(r.body.fields().at("data"), "page"), "checkout");
}

TEST_F(ProxyTest, ConnectRejectedByTheBackendClosesWith4003) {
  HeraldProcess herald(Args({"--proxy-connect-url", backend_.Url("/connect")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame refused = Reply(c, 1, R"({"id":1,"connect":{"token":"reject"}})");
  EXPECT_EQ(refused.error().code(), "PERMISSION_DENIED");
  EXPECT_EQ(refused.error().message(), "banned user");
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 4003);
  EXPECT_EQ(c.close_reason(), "unauthorized: banned user");

  // Any other frame first: no token is involved, and the error says so.
  WsClient d;
  ASSERT_TRUE(d.Connect(herald.ws_url()));
  v1::ServerFrame first = Reply(d, 2, R"({"id":2,"subscribe":{"channel":"room:1"}})");
  EXPECT_EQ(first.error().code(), "UNAUTHENTICATED");
  EXPECT_EQ(first.error().message(),
            "connect: the first frame must be connect (the connect proxy's backend authenticates "
            "it)");
  ASSERT_TRUE(d.WaitClosed());
  EXPECT_EQ(d.close_code(), 4003);
}

TEST_F(ProxyTest, ConnectDisconnectReplyClosesWithTheBackendsCode) {
  HeraldProcess herald(Args({"--proxy-connect-url", backend_.Url("/connect")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  c.Send(R"({"id":1,"connect":{"token":"kick"}})");
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 4403);
  EXPECT_EQ(c.close_reason(), "go away");
}

TEST_F(ProxyTest, ConnectBackendFailureClosesWith1013) {
  HeraldProcess herald(Args({"--proxy-connect-url", backend_.Url("/connect")}));
  ASSERT_TRUE(herald.ok());
  for (const char* token : {"fail", "nouser", "empty"}) {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald.ws_url()));
    v1::ServerFrame failed =
        Reply(c, 1, absl::StrCat(R"({"id":1,"connect":{"token":")", token, R"("}})"));
    if (std::string(token) == "fail") {
      EXPECT_EQ(failed.error().code(), "UNAVAILABLE");
      EXPECT_EQ(failed.error().message(), "connect: backend answered HTTP 500");
    } else {
      EXPECT_EQ(failed.error().code(), "INTERNAL") << token;
      EXPECT_EQ(failed.error().message(),
                "connect: backend reply: result.user: required, at most 255 bytes")
          << token;
    }
    ASSERT_TRUE(c.WaitClosed());
    EXPECT_EQ(c.close_code(), 1013) << token;
  }
}

// A connect frame sent in time waits for its backend past --auth-timeout-ms: the backend's own
// bound is --proxy-timeout-ms. The connection was closed at the auth timeout with 4003 "no
// connect frame within 500 ms", although one had come.
TEST_F(ProxyTest, AConnectWhoseBackendAnswersAfterTheAuthTimeoutIsAccepted) {
  HeraldProcess herald(Args({"--proxy-connect-url", backend_.Url("/connect"), "--auth-timeout-ms",
                             "500", "--proxy-timeout-ms", "5000"}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame connected = Reply(c, 1, R"({"id":1,"connect":{"token":"slow-1.2"}})");
  EXPECT_EQ(connected.connected().user(), "u-slow-1.2") << connected.DebugString();
  EXPECT_TRUE(Reply(c, 2, R"({"id":2,"ping":{}})").has_pong());
  EXPECT_TRUE(c.open());
  // Without a connect frame the auth timeout still closes the connection.
  WsClient silent;
  ASSERT_TRUE(silent.Connect(herald.ws_url()));
  ASSERT_TRUE(silent.WaitClosed(absl::Seconds(5)));
  EXPECT_EQ(silent.close_code(), 4003);
  EXPECT_EQ(silent.close_reason(), "unauthorized: no connect frame within 500 ms");
}

TEST_F(ProxyTest, FramesSentBeforeTheConnectAnswerAreServedAfterItInOrder) {
  HeraldProcess herald(Args(
      {"--proxy-connect-url", backend_.Url("/connect"), "--proxy-rpc-url", backend_.Url("/rpc")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  // Pipelined, as a page sends them on open: none may be refused for coming before `connected`.
  c.Send(R"({"id":1,"connect":{"token":"bob"}})");
  c.Send(R"({"id":2,"subscribe":{"channel":"room:1"}})");
  c.Send(R"({"id":3,"rpc":{"method":"echo","data":3}})");
  c.Send(R"({"id":4,"ping":{}})");
  EXPECT_TRUE(c.WaitReply(4).has_pong());
  EXPECT_TRUE(c.WaitReply(3).has_rpc_result());
  EXPECT_TRUE(c.WaitReply(2).has_subscribed());
  // Handled in order; rpc 3 answers when its backend answers, and, with --engine redis,
  // subscribe 2 when Redis does (a round trip; the memory engine answers at once).
  std::vector<uint32_t> order;
  for (const v1::ServerFrame& f : c.Frames()) {
    if (f.id() != 0 && f.id() != 3 && !(OnRedisEngine() && f.id() == 2)) order.push_back(f.id());
  }
  const std::vector<uint32_t> expected =
      OnRedisEngine() ? std::vector<uint32_t>{1, 4} : std::vector<uint32_t>{1, 2, 4};
  EXPECT_EQ(order, expected);
  // The rpc ran as the user the backend named.
  EXPECT_EQ(StructField(c.WaitReply(3).rpc_result().data(), "user"), "u-bob");
}

TEST_F(ProxyTest, WithAConnectProxyTheFirstFrameMustBeConnect) {
  HeraldProcess herald(Args({"--proxy-connect-url", backend_.Url("/connect")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  EXPECT_TRUE(c.Frames().at(0).welcome().connect_required());  // what herald.js goes by
  EXPECT_EQ(Reply(c, 1, R"({"id":1,"subscribe":{"channel":"room:1"}})").error().code(),
            "UNAUTHENTICATED");
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 4003);
  EXPECT_THAT(backend_.Requests(), SizeIs(0));
}

// --- subscribe, message, rpc --------------------------------------------------------------------

TEST_F(ProxyTest, SubscribeAllowedOrDeniedByTheBackendPerPrefix) {
  // Every channel goes to the backend, except public:* (an empty URL under a shorter prefix).
  HeraldProcess herald(Args(
      {"--proxy-subscribe-url", backend_.Url("/subscribe"), "--proxy-subscribe-url", "public:="}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame denied = Reply(c, 1, R"({"id":1,"subscribe":{"channel":"secret:plans"}})");
  EXPECT_EQ(denied.error().code(), "PERMISSION_DENIED");
  EXPECT_EQ(denied.error().message(), "not for you");
  EXPECT_TRUE(Reply(c, 2, R"({"id":2,"subscribe":{"channel":"room:1"}})").has_subscribed());
  EXPECT_TRUE(Reply(c, 3, R"({"id":3,"subscribe":{"channel":"public:news"}})").has_subscribed());
  std::vector<Received> got = backend_.Requests("/subscribe");
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].Field("channel"), "secret:plans");
  EXPECT_EQ(got[1].Field("channel"), "room:1");
  // A `disconnect` reply closes the connection with the backend's code.
  c.Send(R"({"id":4,"subscribe":{"channel":"kick:1"}})");
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 4409);
}

TEST_F(ProxyTest, MessageIsSentOnlyAfterTheBackendTookIt) {
  HeraldProcess herald(Args({"--proxy-message-url", backend_.Url("/message")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  EXPECT_TRUE(Reply(c, 1, R"({"id":1,"message":{"data":{"text":"courier is here"}}})").has_sent());
  std::vector<Received> got = backend_.Requests("/message");
  ASSERT_THAT(got, SizeIs(1));  // already there when `sent` came
  EXPECT_EQ(StructField(got[0].body.fields().at("data"), "text"), "courier is here");
  EXPECT_EQ(got[0].Field("connectionId"), c.connection_id());
  v1::ServerFrame refused = Reply(c, 2, R"({"id":2,"message":{"data":{"text":"bad"}}})");
  EXPECT_EQ(refused.error().code(), "INVALID_ARGUMENT");
  EXPECT_EQ(refused.error().message(), "bad text");
}

TEST_F(ProxyTest, RpcRoundTripAndTheBackendsErrors) {
  HeraldProcess herald(Args({"--proxy-rpc-url", absl::StrCat("shop.=", backend_.Url("/rpc")),
                             "--proxy-rpc-url", backend_.Url("/rpc")}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame result =
      Reply(c, 7, R"({"id":7,"rpc":{"method":"echo","data":{"order":"o-1","qty":2}}})");
  ASSERT_TRUE(result.has_rpc_result()) << result.DebugString();
  const google::protobuf::Value& echo =
      result.rpc_result().data().struct_value().fields().at("echo");
  EXPECT_EQ(StructField(echo, "order"), "o-1");
  EXPECT_EQ(echo.struct_value().fields().at("qty").number_value(), 2);
  std::vector<Received> got = backend_.Requests("/rpc");
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].Field("method"), "echo");
  EXPECT_EQ(got[0].Header("X-Herald-Event"), "rpc");

  v1::ServerFrame refused = Reply(c, 8, R"({"id":8,"rpc":{"method":"refuse"}})");
  EXPECT_EQ(refused.error().code(), "NOT_FOUND");
  EXPECT_EQ(refused.error().message(), "no such order");
  v1::ServerFrame strange = Reply(c, 9, R"({"id":9,"rpc":{"method":"strange"}})");
  EXPECT_EQ(strange.error().code(), "UNKNOWN");  // not a canonical code name
  EXPECT_EQ(strange.error().message(), "sold out");
  v1::ServerFrame bad = Reply(c, 10, R"({"id":10,"rpc":{"method":"no spaces"}})");
  EXPECT_EQ(bad.error().code(), "INVALID_ARGUMENT");
  EXPECT_THAT(bad.error().message(), HasSubstr("rpc.method"));
}

TEST_F(ProxyTest, RpcWithoutABackendIsUnimplemented) {
  HeraldProcess herald(Args({"--proxy-rpc-url", absl::StrCat("shop.=", backend_.Url("/rpc"))}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame none = Reply(c, 1, R"({"id":1,"rpc":{"method":"admin.wipe"}})");
  EXPECT_EQ(none.error().code(), "UNIMPLEMENTED");
  EXPECT_THAT(backend_.Requests(), SizeIs(0));
}

TEST_F(ProxyTest, RpcBackendFailureAndTimeoutAreErrorFrames) {
  HeraldProcess herald(
      Args({"--proxy-rpc-url", backend_.Url("/rpc"), "--proxy-timeout-ms", "300"}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame failed = Reply(c, 1, R"({"id":1,"rpc":{"method":"fail"}})");
  EXPECT_EQ(failed.error().code(), "UNAVAILABLE");
  EXPECT_EQ(failed.error().message(), "rpc: backend answered HTTP 500");
  const absl::Time start = absl::Now();
  v1::ServerFrame late = Reply(c, 2, R"({"id":2,"rpc":{"method":"slow","data":2}})");
  EXPECT_EQ(late.error().code(), "DEADLINE_EXCEEDED");
  EXPECT_EQ(late.error().message(), "rpc: backend did not answer within 300 ms");
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  // The connection is fine, and so is the backend for the next call.
  EXPECT_TRUE(Reply(c, 3, R"({"id":3,"rpc":{"method":"echo"}})").has_rpc_result());
  EXPECT_EQ(Metric(herald, R"(herald_proxy_requests_total{event="rpc",result="timeout"})"), 1);
  EXPECT_EQ(Metric(herald, R"(herald_proxy_requests_total{event="rpc",result="http_error"})"), 1);
}

TEST_F(ProxyTest, RpcBackendReplyNotJsonHugeOrDeepIsRefusedAndBounded) {
  HeraldProcess herald(
      Args({"--proxy-rpc-url", backend_.Url("/rpc"), "--proxy-max-reply-bytes", "65536"}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame notjson = Reply(c, 1, R"({"id":1,"rpc":{"method":"notjson"}})");
  EXPECT_EQ(notjson.error().code(), "INTERNAL");
  EXPECT_THAT(notjson.error().message(), HasSubstr("rpc: backend reply: not valid JSON"));
  v1::ServerFrame huge = Reply(c, 2, R"({"id":2,"rpc":{"method":"huge"}})");
  EXPECT_EQ(huge.error().code(), "INTERNAL");
  EXPECT_EQ(huge.error().message(), "rpc: backend reply larger than 65536 bytes");
  v1::ServerFrame deep = Reply(c, 3, R"({"id":3,"rpc":{"method":"deep"}})");
  EXPECT_EQ(deep.error().code(), "INTERNAL");
  EXPECT_THAT(deep.error().message(), HasSubstr("nested deeper than"));
  EXPECT_TRUE(Reply(c, 4, R"({"id":4,"ping":{}})").has_pong());
  EXPECT_EQ(Metric(herald, R"(herald_proxy_requests_total{event="rpc",result="too_large"})"), 1);
}

// --- signatures ---------------------------------------------------------------------------------

TEST_F(ProxyTest, AWrongSecretIsRejectedByTheBackendAndReported) {
  HeraldProcess herald({"--proxy-rpc-url", backend_.Url("/rpc"), "--proxy-secret", "not-it"});
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  v1::ServerFrame refused = Reply(c, 1, R"({"id":1,"rpc":{"method":"echo"}})");
  EXPECT_EQ(refused.error().code(), "UNAVAILABLE");
  EXPECT_EQ(refused.error().message(), "rpc: backend answered HTTP 401");
  std::vector<Received> got = backend_.Requests("/rpc");
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_FALSE(got[0].verified);
  EXPECT_EQ(got[0].status, 401);
  EXPECT_EQ(Metric(herald, R"(herald_proxy_requests_total{event="rpc",result="http_error"})"), 1);
  // The operator sees it: the backend, the status and the request.
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(herald.Stderr(), "backend answered HTTP 401");
  })) << herald.Stderr();
  EXPECT_THAT(herald.Stderr(), HasSubstr(backend_.Url("/rpc")));
}

TEST_F(ProxyTest, StartRefusedWithoutASecret) {
  CommandResult r = RunCommand({HeraldBinary(), "--proxy-rpc-url", backend_.Url("/rpc")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--proxy-secret is required"));
  r = RunCommand({HeraldBinary(), "--proxy-connect-url", "chat:=http://x", "--proxy-secret", "s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--proxy-connect-url: expected an http:// or https:// URL"));
  r = RunCommand({HeraldBinary(), "--webhook-url", "http://x", "--webhook-events", "online,gone",
                  "--proxy-secret", "s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--webhook-events: unknown event 'gone'; expected disconnect, "
                               "join, leave, online or offline"));
}

// --- notifications ------------------------------------------------------------------------------

TEST_F(ProxyTest, DisconnectNotificationArrives) {
  HeraldProcess herald(Args({"--webhook-url", backend_.Url("/hook")}));
  ASSERT_TRUE(herald.ok());
  std::string id;
  {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald.ws_url()));
    id = c.connection_id();
    c.Close(4000, "bye");
    ASSERT_TRUE(c.WaitClosed());
  }
  std::vector<Received> got = backend_.WaitRequests("/hook", 1);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_TRUE(got[0].verified);
  EXPECT_EQ(got[0].Header("X-Herald-Event"), "disconnect");
  EXPECT_EQ(got[0].Header("X-Herald-Attempt"), "1");
  EXPECT_EQ(got[0].Field("event"), "disconnect");
  EXPECT_EQ(got[0].Field("connectionId"), id);
  EXPECT_EQ(got[0].Number("code"), 4000);
  EXPECT_EQ(got[0].Field("reason"), "bye");
}

TEST_F(ProxyTest, DisconnectOfAUserWaitsForTheGracePeriodAndIsDroppedOnReconnect) {
  HeraldProcess herald(
      Args({"--proxy-connect-url", backend_.Url("/connect"), "--webhook-url", backend_.Url("/hook"),
            "--webhook-events", "disconnect", "--disconnect-grace", "1"}));
  ASSERT_TRUE(herald.ok());
  auto connect = [&](WsClient& c, const std::string& token) {
    ASSERT_TRUE(c.Connect(herald.ws_url()));
    ASSERT_TRUE(Reply(c, 1, absl::StrCat(R"({"id":1,"connect":{"token":")", token, R"("}})"))
                    .has_connected());
  };
  {
    // Carol reloads the page: closes and is back within the grace period. No disconnect.
    WsClient first;
    connect(first, "carol");
    first.Close();
    ASSERT_TRUE(first.WaitClosed());
    WsClient second;
    connect(second, "carol");
    // Dave leaves for good.
    WsClient dave;
    connect(dave, "dave");
    const absl::Time closed = absl::Now();
    dave.Close();
    ASSERT_TRUE(dave.WaitClosed());
    std::vector<Received> got = backend_.WaitRequests("/hook", 1);
    ASSERT_THAT(got, SizeIs(1));
    EXPECT_GE(absl::Now() - closed, absl::Milliseconds(900));  // held for the grace period
    EXPECT_EQ(got[0].Field("user"), "u-dave");
  }
  // Carol's second tab closed at the end of the block: her disconnect follows after the grace.
  std::vector<Received> got = backend_.WaitRequests("/hook", 2);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[1].Field("user"), "u-carol");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(backend_.Requests("/hook"), SizeIs(2));  // carol's reload sent none
}

// Two users with two tabs each in a room: one tab closing is a leave but not an offline; the
// last tab closing is a leave to the others at once and one offline webhook after the grace.
TEST_F(ProxyTest, UserOfflineAfterTheLastTabAndTheGraceNotAfterOneOfTwo) {
  HeraldProcess herald(
      Args({"--proxy-connect-url", backend_.Url("/connect"), "--webhook-url", backend_.Url("/hook"),
            "--webhook-events", "online,offline", "--disconnect-grace", "1", "--presence-prefixes",
            "room:", "--join-leave-prefixes", "room:"}));
  ASSERT_TRUE(herald.ok());
  auto open = [&](WsClient& c, const std::string& token) {
    ASSERT_TRUE(c.Connect(herald.ws_url()));
    ASSERT_TRUE(Reply(c, 1, absl::StrCat(R"({"id":1,"connect":{"token":")", token, R"("}})"))
                    .has_connected());
    ASSERT_TRUE(c.Subscribe("room:1", 2));
  };
  auto left = [](WsClient& c, const std::string& connection_id) {
    return c
        .WaitFrame(
            [&](const v1::ServerFrame& f) {
              return f.has_member_left() &&
                     f.member_left().member().connection_id() == connection_id;
            },
            "memberLeft of " + connection_id)
        .member_left();
  };
  WsClient erin1, erin2, gus1, gus2;
  open(erin1, "erin");
  std::vector<Received> got = backend_.WaitRequests("/hook", 1);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_TRUE(got[0].verified);
  EXPECT_EQ(got[0].Header("X-Herald-Event"), "online");
  EXPECT_EQ(got[0].Field("event"), "online");
  EXPECT_EQ(got[0].Field("user"), "u-erin");
  EXPECT_EQ(got[0].Field("connectionId"), erin1.connection_id());  // the tab that did it
  open(erin2, "erin");  // a second tab: erin was online already
  open(gus1, "gus");
  open(gus2, "gus");
  got = backend_.WaitRequests("/hook", 2);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[1].Field("user"), "u-gus");

  // One of erin's tabs closes: the others see that connection leave, but erin stays online.
  const std::string erin1_id = erin1.connection_id();
  erin1.Close();
  ASSERT_TRUE(erin1.WaitClosed());
  EXPECT_EQ(left(gus1, erin1_id).member().user(), "u-erin");
  EXPECT_EQ(left(erin2, erin1_id).member().user(), "u-erin");
  absl::SleepFor(absl::Milliseconds(1500));  // past the grace period
  EXPECT_THAT(backend_.Requests("/hook"), SizeIs(2));

  // Her last tab closes: a leave to the others at once, offline once the grace period passed.
  const std::string erin2_id = erin2.connection_id();
  const absl::Time closed = absl::Now();
  erin2.Close();
  ASSERT_TRUE(erin2.WaitClosed());
  EXPECT_EQ(left(gus1, erin2_id).member().user(), "u-erin");
  EXPECT_EQ(left(gus2, erin2_id).member().user(), "u-erin");
  EXPECT_THAT(backend_.Requests("/hook"), SizeIs(2));  // the leave is not held back: no offline yet
  got = backend_.WaitRequests("/hook", 3);
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_GE(absl::Now() - closed, absl::Milliseconds(900));
  EXPECT_TRUE(got[2].verified);
  EXPECT_EQ(got[2].Header("X-Herald-Event"), "offline");
  EXPECT_EQ(got[2].Field("event"), "offline");
  EXPECT_EQ(got[2].Field("user"), "u-erin");
  EXPECT_EQ(got[2].Field("connectionId"), "");
  EXPECT_FALSE(got[2].Field("node").empty());
  EXPECT_FALSE(got[2].Field("timeMs").empty());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(backend_.Requests("/hook"), SizeIs(3));  // one offline, and none for gus
}

TEST_F(ProxyTest, AReloadWithinTheGraceIsNeitherOfflineNorOnlineAgain) {
  HeraldProcess herald(
      Args({"--proxy-connect-url", backend_.Url("/connect"), "--webhook-url", backend_.Url("/hook"),
            "--webhook-events", "online,offline", "--disconnect-grace", "1"}));
  ASSERT_TRUE(herald.ok());
  auto connect = [&](WsClient& c) {
    ASSERT_TRUE(c.Connect(herald.ws_url()));
    ASSERT_TRUE(Reply(c, 1, R"({"id":1,"connect":{"token":"fay"}})").has_connected());
  };
  {
    WsClient page;
    connect(page);
    backend_.WaitRequests("/hook", 1);
  }
  WsClient reloaded;  // back within the grace period
  connect(reloaded);
  absl::SleepFor(absl::Milliseconds(1500));
  std::vector<Received> got = backend_.Requests("/hook");
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].Field("event"), "online");
}

TEST_F(ProxyTest, AnOfflineRefusedWithA500IsRetried) {
  HeraldProcess herald(
      Args({"--proxy-connect-url", backend_.Url("/connect"), "--webhook-url",
            backend_.Url("/flaky"), "--webhook-events", "offline", "--webhook-backoff-ms", "50"}));
  ASSERT_TRUE(herald.ok());
  {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald.ws_url()));
    ASSERT_TRUE(Reply(c, 1, R"({"id":1,"connect":{"token":"hal"}})").has_connected());
  }
  std::vector<Received> got = backend_.WaitRequests("/flaky", 2);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].status, 500);
  EXPECT_EQ(got[1].status, 200);
  EXPECT_EQ(got[1].Header("X-Herald-Attempt"), "2");
  EXPECT_EQ(got[0].Header("X-Herald-Request-Id"), got[1].Header("X-Herald-Request-Id"));
  EXPECT_EQ(got[1].Field("event"), "offline");
  EXPECT_EQ(got[1].Field("user"), "u-hal");
  EXPECT_TRUE(got[1].verified);
}

TEST_F(ProxyTest, NotificationRetriedAfterA500IsDeliveredOnce) {
  HeraldProcess herald(
      Args({"--webhook-url", backend_.Url("/flaky"), "--webhook-backoff-ms", "50"}));
  ASSERT_TRUE(herald.ok());
  {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald.ws_url()));
  }
  std::vector<Received> got = backend_.WaitRequests("/flaky", 2);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0].status, 500);
  EXPECT_EQ(got[0].Header("X-Herald-Attempt"), "1");
  EXPECT_EQ(got[1].status, 200);
  EXPECT_EQ(got[1].Header("X-Herald-Attempt"), "2");
  // The same notification: one request id, the same body; signed again (fresh timestamp).
  EXPECT_EQ(got[0].Header("X-Herald-Request-Id"), got[1].Header("X-Herald-Request-Id"));
  EXPECT_EQ(got[0].Field("connectionId"), got[1].Field("connectionId"));
  EXPECT_TRUE(got[1].verified);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(backend_.Requests("/flaky"), SizeIs(2));  // delivered once: no third attempt
  EXPECT_EQ(Metric(herald, "herald_webhook_retries_total"), 1);
  EXPECT_EQ(Metric(herald, R"(herald_webhooks_dropped_total{reason="failed"})"), 0);
}

TEST_F(ProxyTest, NotificationsThatKeepFailingOrDoNotFitAreDroppedAndCounted) {
  HeraldProcess herald(Args({"--webhook-url", backend_.Url("/down"), "--webhook-attempts", "3",
                             "--webhook-backoff-ms", "10"}));
  ASSERT_TRUE(herald.ok());
  {
    WsClient c;
    ASSERT_TRUE(c.Connect(herald.ws_url()));
  }
  EXPECT_THAT(backend_.WaitRequests("/down", 3), SizeIs(3));
  EXPECT_TRUE(WaitFor(
      [&] { return Metric(herald, R"(herald_webhooks_dropped_total{reason="failed"})") == 1; }));
  EXPECT_EQ(Metric(herald, "herald_webhook_retries_total"), 2);
  EXPECT_EQ(Metric(herald, "herald_webhook_queue"), 0);

  // A queue of one: while the first notification waits for its retry, the next does not fit.
  HeraldProcess small(Args({"--webhook-url", backend_.Url("/down"), "--webhook-queue-size", "1",
                            "--webhook-attempts", "2", "--webhook-backoff-ms", "2000"}));
  ASSERT_TRUE(small.ok());
  for (int i = 0; i < 2; ++i) {
    WsClient c;
    ASSERT_TRUE(c.Connect(small.ws_url()));
    c.Close();
    ASSERT_TRUE(c.WaitClosed());
  }
  EXPECT_TRUE(WaitFor(
      [&] { return Metric(small, R"(herald_webhooks_dropped_total{reason="queue_full"})") == 1; }));
  EXPECT_EQ(Metric(small, "herald_webhook_queue"), 1);
}

TEST_F(ProxyTest, PresenceJoinAndLeaveAreNotified) {
  HeraldProcess herald(Args({"--presence-prefixes", "chat:", "--webhook-url", backend_.Url("/hook"),
                             "--webhook-events", "join,leave"}));
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  ASSERT_TRUE(c.Subscribe("chat:1", 1));
  ASSERT_TRUE(c.Subscribe("news", 2));  // not a presence channel: nothing
  std::vector<Received> got = backend_.WaitRequests("/hook", 1);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].Field("event"), "join");
  EXPECT_EQ(got[0].Field("channel"), "chat:1");
  EXPECT_EQ(got[0].Field("connectionId"), c.connection_id());
  EXPECT_TRUE(Reply(c, 3, R"({"id":3,"unsubscribe":{"channel":"chat:1"}})").has_unsubscribed());
  got = backend_.WaitRequests("/hook", 2);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[1].Field("event"), "leave");
  // Closing leaves too (and no disconnect: not in --webhook-events).
  ASSERT_TRUE(c.Subscribe("chat:2", 4));
  backend_.WaitRequests("/hook", 3);
  c.Close();
  ASSERT_TRUE(c.WaitClosed());
  got = backend_.WaitRequests("/hook", 4);
  ASSERT_THAT(got, SizeIs(4));
  EXPECT_EQ(got[3].Field("event"), "leave");
  EXPECT_EQ(got[3].Field("channel"), "chat:2");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_THAT(backend_.Requests("/hook"), SizeIs(4));
}

}  // namespace
}  // namespace herald::testing
