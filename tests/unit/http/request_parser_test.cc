// http::RequestParser: requests one at a time, pipelined, in pieces; the head and body bounds
// and the framing refusals, decided before the bytes past them are looked at.
#include "server/http/request_parser.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::http {
namespace {

using ::testing::HasSubstr;
using Event = RequestParser::Event;

constexpr ParserLimits kLimits{/*max_head_bytes=*/256, /*max_body_bytes=*/64};

TEST(RequestParserTest, ReadsOneRequestAndStopsAtItsEnd) {
  RequestParser parser(kLimits);
  const std::string bytes =
      "POST /api/v1/Publish?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\nX-A: one\r\nx-a: two\r\n\r\n{}GET /next HTTP/1.1\r\n";
  size_t used = 0;
  ASSERT_EQ(parser.Feed(bytes, &used), Event::kRequest);
  EXPECT_EQ(bytes.substr(used), "GET /next HTTP/1.1\r\n");
  Request r = parser.TakeRequest();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.Path(), "/api/v1/Publish");
  EXPECT_EQ(r.Query(), "x=1");
  EXPECT_EQ(r.body, "{}");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("X-A"), "one, two");
  EXPECT_EQ(r.Header("Missing"), "");
  std::string joined;
  EXPECT_EQ(r.HeaderView("HOST", &joined), "h");
  EXPECT_EQ(joined, "");  // one field: viewed where it is, nothing joined
  EXPECT_EQ(r.HeaderView("x-A", &joined), "one, two");
  EXPECT_EQ(joined, "one, two");
  EXPECT_EQ(r.HeaderView("X-A-B", &joined), "");
  ASSERT_EQ(r.header_count(), 5u);
  EXPECT_EQ(r.header_name(4), "x-a");  // names as sent, in order
  EXPECT_EQ(r.header_value(4), "two");
  // The rest is the next request, incomplete.
  EXPECT_EQ(parser.Feed(bytes.substr(used), &used), Event::kNeedMore);
  EXPECT_TRUE(parser.in_request());
}

TEST(RequestParserTest, PipelinedRequestsComeOutInOrderAlsoByteByByte) {
  const std::string bytes =
      "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1;e=1\r\n!\r\n0\r\n\r\n"
      "GET /d HTTP/1.0\r\n\r\nGET /e HTTP/1.1\r\nConnection: close\r\n\r\n";
  for (size_t piece : {bytes.size(), size_t{1}, size_t{7}}) {
    SCOPED_TRACE(piece);
    RequestParser parser(kLimits);
    std::vector<std::string> seen;
    std::string pending;
    for (size_t off = 0; off < bytes.size(); off += piece) {
      pending += bytes.substr(off, piece);
      for (;;) {
        size_t used = 0;
        const Event e = parser.Feed(pending, &used);
        pending.erase(0, used);
        ASSERT_NE(e, Event::kError) << parser.error_message();
        if (e == Event::kNeedMore) break;
        if (e == Event::kRequest) {
          Request r = parser.TakeRequest();
          seen.push_back(absl::StrCat(r.method, " ", r.target, " ", r.body,
                                      r.keep_alive ? " keep" : " close",
                                      r.chunked ? " chunked" : ""));
        }
      }
    }
    EXPECT_THAT(
        seen, ::testing::ElementsAre("GET /a  keep", "POST /b xyz keep", "POST /c hi! keep chunked",
                                     "GET /d  close", "GET /e  close"));
  }
}

TEST(RequestParserTest, ExpectContinueStopsAfterTheHead) {
  RequestParser parser(kLimits);
  const std::string bytes =
      "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
  size_t used = 0;
  ASSERT_EQ(parser.Feed(bytes, &used), Event::kHeadComplete);
  EXPECT_THAT(bytes.substr(used), ::testing::EndsWith("ok"));
  EXPECT_EQ(parser.current().method, "POST");
  size_t more = 0;
  ASSERT_EQ(parser.Feed(bytes.substr(used), &more), Event::kRequest);
  EXPECT_EQ(parser.TakeRequest().body, "ok");
}

struct Refusal {
  std::string what;
  std::string bytes;
  int status;
  std::string message;
};

TEST(RequestParserTest, RefusesWhatItMustBeforeReadingFurther) {
  const std::vector<Refusal> cases = {
      {"head over the bound", absl::StrCat("GET / HTTP/1.1\r\nX: ", std::string(300, 'a')), 431,
       "request head: more than 256 bytes"},
      {"body over the bound (only its length sent)",
       "POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413,
       "body: Content-Length 65 is more than the limit of 64"},
      {"chunked body over the bound",
       absl::StrCat("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n",
                    std::string(65, 'b'), "\r\n0\r\n\r\n"),
       413, "body: more than the limit of 64 bytes"},
      {"two lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
       "request framing: "},
      {"length and chunked",
       "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
       "request framing: "},
      {"a coding before chunked",
       "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
       "request framing: Transfer-Encoding other than chunked"},
      {"a signed length", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na", 400,
       "request framing: "},
      {"a length past 64 bits is a size too large, not a framing error",
       "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", 413,
       "body: Content-Length is more than the limit of 64"},
      {"the largest 64-bit length",
       "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", 413,
       "body: Content-Length 18446744073709551615 is more than the limit of 64"},
      {"a length of 30 digits",
       "POST / HTTP/1.1\r\nContent-Length: 999999999999999999999999999999\r\n\r\n", 413,
       "more than the limit of 64"},
      {"not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "request: "},
      {"a length list", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\na", 400,
       "request framing: Content-Length is not one decimal number"},
      {"HTTP/2.0 in a request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505,
       "HTTP/2.0 is not supported"},
      {"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505, "HTTP/1.2 is not supported"},
      {"a version that is not one", "GET / HTTQ/1.1\r\n\r\n", 400, "request: "},
  };
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.what);
    RequestParser parser(kLimits);
    size_t used = 0;
    ASSERT_EQ(parser.Feed(c.bytes, &used), Event::kError);
    EXPECT_EQ(parser.error_status(), c.status);
    EXPECT_THAT(parser.error_message(), HasSubstr(c.message));
    // It stays refused.
    EXPECT_EQ(parser.Feed("GET / HTTP/1.1\r\n\r\n", &used), Event::kError);
  }
}

// RFC 9112 §2.2: a server skips empty lines before a request line (a client may send one after a
// body); an incomplete head is left untaken until it is whole, and given again.
TEST(RequestParserTest, EmptyLinesBeforeARequestAreSkippedAndAnIncompleteHeadWaits) {
  RequestParser parser(kLimits);
  size_t used = 0;
  EXPECT_EQ(parser.Feed("\r\n\r\nGET /a HTTP/1.1\r\nHost:", &used), Event::kNeedMore);
  EXPECT_TRUE(parser.in_request());
  EXPECT_FALSE(parser.head_complete());
  const std::string rest =
      absl::StrCat(std::string("\r\n\r\nGET /a HTTP/1.1\r\nHost:").substr(used), " h\r\n\r\n");
  ASSERT_EQ(parser.Feed(rest, &used), Event::kRequest) << parser.error_message();
  EXPECT_EQ(used, rest.size());
  const Request r = parser.TakeRequest();
  EXPECT_EQ(r.target, "/a");
  EXPECT_EQ(r.Header("host"), "h");
}

// An empty chunked body (its last chunk first) read a byte at a time: Beast 1.74 asserts on it
// in a debug build (boostorg/beast#2861), though it parses it right.
TEST(RequestParserTest, AnEmptyChunkedBodyArrivesAByteAtATime) {
  const std::string bytes = "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  RequestParser parser(kLimits);
  std::string pending;
  Event e = Event::kNeedMore;
  for (size_t i = 0; i < bytes.size(); ++i) {
    pending.push_back(bytes[i]);
    size_t used = 0;
    e = parser.Feed(pending, &used);
    pending.erase(0, used);
    ASSERT_NE(e, Event::kError) << parser.error_message();
  }
  ASSERT_EQ(e, Event::kRequest);
  EXPECT_EQ(parser.TakeRequest().body, "");
}

TEST(RequestParserTest, AHeadExactlyAtTheBoundIsRead) {
  const std::string start = "GET / HTTP/1.1\r\nX: ";
  const std::string head =
      absl::StrCat(start, std::string(kLimits.max_head_bytes - start.size() - 4, 'a'), "\r\n\r\n");
  ASSERT_EQ(head.size(), kLimits.max_head_bytes);
  RequestParser parser(kLimits);
  size_t used = 0;
  EXPECT_EQ(parser.Feed(head, &used), Event::kRequest) << parser.error_message();
}

// A chunked body's trailer fields come after the head and its bound: they are read (within the
// request's framing bound) and discarded, never added to the request's headers.
TEST(RequestParserTest, TrailersAreDiscarded) {
  const std::string trailer = absl::StrCat("T: ", std::string(kLimits.max_head_bytes, 't'), "\r\n");
  const std::string bytes =
      absl::StrCat("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n2\r\nhi\r\n0\r\n",
                   trailer, "U: u\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
  RequestParser parser(kLimits);
  size_t used = 0;
  ASSERT_EQ(parser.Feed(bytes, &used), Event::kRequest) << parser.error_message();
  const Request r = parser.TakeRequest();
  EXPECT_EQ(r.body, "hi");
  EXPECT_EQ(r.Header("X"), "1");
  EXPECT_EQ(r.Header("T"), "");
  EXPECT_EQ(r.Header("U"), "");
  EXPECT_EQ(r.header_count(), 2u);
  ASSERT_EQ(parser.Feed(bytes.substr(used), &used), Event::kRequest) << parser.error_message();
  EXPECT_EQ(parser.TakeRequest().target, "/next");
}

// An upgrade request ends at its head: what follows is the new protocol's and must not be
// taken.
TEST(RequestParserTest, AnUpgradeRequestEndsAtItsHead) {
  const std::string head =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const std::string frames = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  for (size_t piece : {head.size() + frames.size(), size_t{1}, size_t{5}}) {
    SCOPED_TRACE(piece);
    RequestParser parser(kLimits);
    const std::string bytes = head + frames;
    size_t off = 0;
    std::string pending;
    Event e = Event::kNeedMore;
    size_t taken = 0;
    while (e == Event::kNeedMore && off < bytes.size()) {
      pending += bytes.substr(off, piece);
      off += piece;
      size_t used = 0;
      e = parser.Feed(pending, &used);
      taken += used;
      pending.erase(0, used);
    }
    ASSERT_EQ(e, Event::kRequest) << parser.error_message();
    EXPECT_EQ(taken, head.size());
    Request r = parser.TakeRequest();
    EXPECT_TRUE(r.upgrade);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/ws");
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.Header("upgrade"), "websocket");
  }
}

TEST(RequestParserTest, AnUpgradeHeaderAloneIsAnUpgradeToo) {
  RequestParser parser(kLimits);
  const std::string bytes = "GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0";
  size_t used = 0;
  ASSERT_EQ(parser.Feed(bytes, &used), Event::kRequest);
  EXPECT_EQ(bytes.substr(used), "PRI * HTTP/2.0");
  EXPECT_TRUE(parser.TakeRequest().upgrade);

  RequestParser plain(kLimits);
  ASSERT_EQ(plain.Feed("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", &used), Event::kRequest);
  EXPECT_FALSE(plain.TakeRequest().upgrade);
}

}  // namespace
}  // namespace herald::http
