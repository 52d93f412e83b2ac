// The HTTP/1.1 server of the control API (server/http) against the real herald, byte by byte on
// raw sockets: keep-alive, pipelining (replies in request order, also behind a publish that
// waits for an ack), Connection: close, the head and body bounds, the idle timeout, and a
// half-sent request next to other connections.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_http.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kApiKey[] = "http1-key";

std::string Post(const std::string& method, const std::string& body,
                 const std::string& extra_headers = "") {
  return absl::StrCat("POST /api/v1/", method, " HTTP/1.1\r\nHost: herald\r\n",
                      "Authorization: Bearer ", kApiKey, "\r\n",
                      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n",
                      extra_headers, "\r\n", body);
}

std::string PublishNews(int i) {
  return Post("Publish", absl::StrCat(R"({"channel":"news","data":)", i, "}"));
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(herald_.ok());
    ASSERT_TRUE(subscriber_.Connect(herald_.ws_url()));
    ASSERT_TRUE(subscriber_.Subscribe("news"));
  }

  HeraldProcess herald_{{"--api-key", kApiKey, "--threads", "1", "--max-http-body-bytes", "4096",
                         "--max-http-head-bytes", "2048", "--http-idle-timeout-ms", "1500"}};
  WsClient subscriber_;
};

TEST_F(HttpServerTest, TwoRequestsShareOneConnection) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(Post("Stats", "{}")));
  std::optional<RawResponse> stats = c.ReadResponse();
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->status, 200) << stats->body;
  EXPECT_THAT(stats->head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(stats->header("content-type"), "application/json");
  EXPECT_EQ(stats->header("connection"), "");  // HTTP/1.1: kept alive without saying so
  EXPECT_THAT(stats->body, HasSubstr(R"("connections":1)"));
  // The same socket carries the next request.
  ASSERT_TRUE(c.Send(PublishNews(7)));
  std::optional<RawResponse> publish = c.ReadResponse();
  ASSERT_TRUE(publish.has_value());
  EXPECT_EQ(publish->status, 200) << publish->body;
  EXPECT_THAT(publish->body, HasSubstr(R"("queued":1)"));
  EXPECT_EQ(subscriber_.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "pub")
                .pub()
                .data()
                .number_value(),
            7);
  EXPECT_TRUE(c.buffer().empty());
}

TEST_F(HttpServerTest, AHundredPublishesOverOneConnection) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(c.Send(PublishNews(i))) << i;
    std::optional<RawResponse> r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << "request " << i << " got no reply";
    ASSERT_EQ(r->status, 200) << r->body;
    ASSERT_THAT(r->body, HasSubstr(absl::StrCat(R"("offset":")", i + 1, R"(")")));
  }
  subscriber_.WaitFrame(
      [](const v1::ServerFrame& f) { return f.has_pub() && f.pub().data().number_value() == 99; },
      "the 100th publication");
  EXPECT_EQ(subscriber_.Publications().size(), 100u);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  // Five requests in one send, with replies of different statuses and lengths.
  ASSERT_TRUE(
      c.Send(absl::StrCat(PublishNews(1), Post("GetConnection", R"({"connectionId":"x"})"),
                          PublishNews(2), Post("NoSuchMethod", "{}"), Post("Stats", "{}"))));
  std::vector<RawResponse> replies;
  for (int i = 0; i < 5; ++i) {
    std::optional<RawResponse> r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << "reply " << i;
    replies.push_back(*r);
  }
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_THAT(replies[0].body, HasSubstr(R"("offset":"1")"));
  EXPECT_EQ(replies[1].status, 404);
  EXPECT_THAT(replies[1].body, HasSubstr(R"("code":"NOT_FOUND")"));
  EXPECT_EQ(replies[2].status, 200);
  EXPECT_THAT(replies[2].body, HasSubstr(R"("offset":"2")"));
  EXPECT_EQ(replies[3].status, 404);
  EXPECT_THAT(replies[3].body, HasSubstr("no unary method 'NoSuchMethod'"));
  EXPECT_EQ(replies[4].status, 200);
  // Requests run as they are read; on the memory engine each publish is done when the next is
  // read. With --engine redis they overlap their Redis round trips (only the replies' order is
  // promised), so Stats may count fewer.
  if (!OnRedisEngine()) EXPECT_THAT(replies[4].body, HasSubstr(R"("publications":"2")"));
  EXPECT_TRUE(c.buffer().empty());
}

TEST_F(HttpServerTest, APipelinedReplyWaitsForAnEarlierPublishWaitingForItsAck) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(
      absl::StrCat(Post("Publish", R"({"channel":"news","data":"ack me","ack":{"waitMs":10000}})"),
                   Post("Stats", "{}"), PublishNews(3))));
  v1::ServerFrame pub = subscriber_.WaitFrame(
      [](const v1::ServerFrame& f) { return f.has_pub() && f.pub().ack_requested(); }, "pub");
  // The later requests ran (the third publication arrived) but their replies wait their turn.
  subscriber_.WaitFrame(
      [](const v1::ServerFrame& f) { return f.has_pub() && f.pub().data().number_value() == 3; },
      "the third request's publication");
  EXPECT_TRUE(c.QuietFor(absl::Milliseconds(300))) << c.buffer();
  subscriber_.Send(
      absl::StrCat(R"({"id":5,"ack":{"channel":"news","offset":")", pub.pub().offset(), R"("}})"));
  std::optional<RawResponse> first = c.ReadResponse();
  std::optional<RawResponse> second = c.ReadResponse();
  std::optional<RawResponse> third = c.ReadResponse();
  ASSERT_TRUE(first.has_value() && second.has_value() && third.has_value()) << c.buffer();
  EXPECT_EQ(first->status, 200);
  EXPECT_THAT(first->body, HasSubstr(R"("acked":true)"));
  // Stats ran second: after the first publish, before the third request's (with --engine redis
  // the requests overlap their Redis round trips, so only the replies' order is checked).
  if (!OnRedisEngine()) EXPECT_THAT(second->body, HasSubstr(R"("publications":"1")"));
  EXPECT_THAT(third->body, HasSubstr(R"("offset":"2")"));
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  // The request after the one that says close is not answered.
  ASSERT_TRUE(c.Send(absl::StrCat(Post("Stats", "{}", "Connection: close\r\n"), PublishNews(9))));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
  EXPECT_EQ(c.buffer(), "");
  EXPECT_TRUE(subscriber_.Publications().empty());
}

TEST_F(HttpServerTest, Http10ClosesUnlessAskedToKeepAlive) {
  const std::string body = "{}";
  const std::string request =
      absl::StrCat("POST /api/v1/Stats HTTP/1.0\r\nAuthorization: Bearer ", kApiKey,
                   "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n");
  {
    RawHttpConnection c(herald_.ws_address());
    ASSERT_TRUE(c.Send(absl::StrCat(request, "\r\n", body)));
    std::optional<RawResponse> r = c.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
  }
  RawHttpConnection c(herald_.ws_address());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Send(absl::StrCat(request, "Connection: keep-alive\r\n\r\n", body)));
    std::optional<RawResponse> r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("connection"), "keep-alive");
  }
}

TEST_F(HttpServerTest, AnOversizedHeadGets431AndTheConnectionCloses) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send(absl::StrCat(PublishNews(1), "POST /api/v1/Stats HTTP/1.1\r\nX-Pad: ",
                                  std::string(4000, 'a'), "\r\n\r\n")));
  std::optional<RawResponse> ok = c.ReadResponse();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);  // the request before it is answered
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(r->body,
            "{\"code\":\"RESOURCE_EXHAUSTED\",\"message\":\"request head: more than 2048 bytes "
            "(--max-http-head-bytes)\"}\n");
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
}

TEST_F(HttpServerTest, AnOversizedBodyGets413BeforeItIsSentAndTheConnectionCloses) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.ok());
  // Only the head: the refusal comes without the body.
  ASSERT_TRUE(c.Send(absl::StrCat(
      "POST /api/v1/Publish HTTP/1.1\r\nHost: h\r\nAuthorization: ", "Bearer ", kApiKey,
      "\r\nContent-Type: application/json\r\nContent-Length: 4097\r\n"
      "\r\n")));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_THAT(r->body, HasSubstr(R"("code":"RESOURCE_EXHAUSTED")"));
  EXPECT_THAT(r->body, HasSubstr("Content-Length 4097 is more than the limit of 4096"));
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponseThenTheReply) {
  RawHttpConnection c(herald_.ws_address());
  const std::string body = R"({"channel":"news","data":5})";
  ASSERT_TRUE(
      c.Send(absl::StrCat("POST /api/v1/Publish HTTP/1.1\r\nAuthorization: Bearer ", kApiKey,
                          "\r\nContent-Type: application/json\r\n",
                          "Expect: 100-continue\r\nContent-Length: ", body.size(), "\r\n\r\n")));
  std::optional<RawResponse> go = c.ReadResponse();
  ASSERT_TRUE(go.has_value());
  EXPECT_EQ(go->head, "HTTP/1.1 100 Continue");
  ASSERT_TRUE(c.Send(body));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(HttpServerTest, AnIdleKeepAliveConnectionIsClosedAfterTheTimeout) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.Send(Post("Stats", "{}")));
  ASSERT_TRUE(c.ReadResponse().has_value());
  const absl::Time answered = absl::Now();
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(10)));
  const absl::Duration idle = absl::Now() - answered;
  EXPECT_GE(idle, absl::Milliseconds(1400));  // --http-idle-timeout-ms 1500
  EXPECT_LT(idle, absl::Milliseconds(5000));
  EXPECT_EQ(c.buffer(), "");
}

TEST_F(HttpServerTest, AHalfSentRequestStallsNoOtherConnectionAndTimesOut) {
  RawHttpConnection stalled(herald_.ws_address());
  ASSERT_TRUE(
      stalled.Send(absl::StrCat("POST /api/v1/Publish HTTP/1.1\r\nAuthorization: Bearer ", kApiKey,
                                "\r\nContent-Type: application/json\r\nContent-Length: "
                                "100\r\n\r\n{\"chan")));
  const absl::Time start = absl::Now();
  // Same I/O thread (--threads 1): the other connection is served at once, several times.
  RawHttpConnection other(herald_.ws_address());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(other.Send(PublishNews(i)));
    std::optional<RawResponse> r = other.ReadResponse(absl::Seconds(1));
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_TRUE(stalled.WaitClosed(absl::Seconds(10)));
  EXPECT_EQ(stalled.buffer(), "");
}

TEST_F(HttpServerTest, AHeadTricklingInIsClosedTheTimeoutAfterItsStart) {
  RawHttpConnection c(herald_.ws_address());
  const std::string head = Post("Stats", "{}");
  const absl::Time start = absl::Now();
  // The request line's start at once (so the port routes it to the HTTP/1.1 server), then a
  // byte every 200 ms: never idle for the 1.5 s timeout, but the head takes far longer.
  ASSERT_TRUE(c.Send(head.substr(0, 16)));
  bool closed = false;
  for (size_t i = 16; i < head.size() && !closed; ++i) {
    ASSERT_LT(absl::Now() - start, absl::Seconds(8)) << "still open";
    if (!c.Send(head.substr(i, 1))) break;
    closed = !c.QuietFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(closed || c.WaitClosed(absl::Seconds(1)));
  EXPECT_EQ(c.buffer(), "");  // no reply: the request never completed
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(1400));
  EXPECT_LT(took, absl::Milliseconds(4000));
}

TEST_F(HttpServerTest, AConnectionThatSendsNothingIsClosedAfterTheHandshakeTimeout) {
  RawHttpConnection c(herald_.ws_address());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(15)));
  const absl::Duration took = absl::Now() - start;
  // The first request's timeout, 5 s, from when the kernel hands the connection over: with
  // TCP_DEFER_ACCEPT, about a second after the TCP handshake for a peer that sends nothing.
  EXPECT_GE(took, absl::Milliseconds(4900));
  EXPECT_LT(took, absl::Milliseconds(9000));
  EXPECT_EQ(c.buffer(), "");
}

TEST_F(HttpServerTest, AConnectionSilentForSecondsKeepsItsFirstRequestsServer) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.QuietFor(absl::Milliseconds(2500)));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Send(Post("Stats", "{}")));
    std::optional<RawResponse> r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->header("connection"), "close");  // the HTTP/1.1 server's keep-alive
  }
}

TEST_F(HttpServerTest, OtherPathsOnAKeptAliveConnectionAreServedToo) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.Send(absl::StrCat(Post("Stats", "{}"), "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
                                  "GET /nothing-here HTTP/1.1\r\nHost: h\r\n\r\n",
                                  "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n")));
  std::optional<RawResponse> stats = c.ReadResponse();
  std::optional<RawResponse> health = c.ReadResponse();
  std::optional<RawResponse> missing = c.ReadResponse();
  std::optional<RawResponse> ws = c.ReadResponse();
  ASSERT_TRUE(stats && health && missing && ws) << c.buffer();
  EXPECT_EQ(stats->status, 200);
  EXPECT_EQ(health->status, 200);
  EXPECT_THAT(health->body, HasSubstr(R"("status":"ok")"));
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(ws->status, 426);
  EXPECT_THAT(ws->head, StartsWith("HTTP/1.1 426 Upgrade Required\r\n"));
}

TEST_F(HttpServerTest, AConnectionThatStartsWithAnotherPathIsKeptAliveToo) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("connection"), "");
  ASSERT_TRUE(c.Send(Post("Stats", "{}")));
  std::optional<RawResponse> stats = c.ReadResponse();
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->status, 200);
}

}  // namespace
}  // namespace herald::testing
