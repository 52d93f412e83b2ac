// Herald's own WebSocket transport on a plain port (server/ws/ws_connection, handshake,
// frame_reader), byte by byte on raw sockets against the real herald: the opening handshake
// (RFC 6455 §4.2), frames sent behind the handshake request, an upgrade on a kept-alive HTTP
// connection, fragmentation with a control frame inside, protocol errors, and the close
// handshake from the client's side.
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_http.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The sample handshake of RFC 6455 §1.3.
constexpr char kSampleKey[] = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr char kSampleAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string Upgrade(const std::string& version = "13", const std::string& key = kSampleKey,
                    const std::string& path = "/ws") {
  std::string request = absl::StrCat("GET ", path,
                                     " HTTP/1.1\r\nHost: herald\r\nUpgrade: websocket\r\n"
                                     "Connection: Upgrade\r\nSec-WebSocket-Version: ",
                                     version, "\r\n");
  if (!key.empty()) absl::StrAppend(&request, "Sec-WebSocket-Key: ", key, "\r\n");
  request.append("\r\n");
  return request;
}

// A client frame: masked unless `masked` is false.
std::string Frame(int opcode, const std::string& payload, bool fin = true, bool masked = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  if (!masked) return f + payload;
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  f.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(payload[i] ^ mask[i % 4]);
  return f;
}

std::string CloseFrame(int code, const std::string& reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xff));
  return Frame(8, payload + reason);
}

struct ServerFrame {
  int opcode = 0;
  std::string payload;
  int close_code() const {
    return payload.size() >= 2
               ? (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1])
               : 1005;
  }
};

// Takes one whole server frame (unmasked, as a server sends) off the front of `bytes`.
std::optional<ServerFrame> TakeFrame(std::string& bytes) {
  if (bytes.size() < 2) return std::nullopt;
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  if ((b[1] & 0x80) != 0) return std::nullopt;  // a server never masks
  size_t length = b[1] & 0x7f;
  size_t at = 2;
  if (length == 126) {
    if (bytes.size() < 4) return std::nullopt;
    length = (size_t{b[2]} << 8) | b[3];
    at = 4;
  } else if (length == 127) {
    if (bytes.size() < 10) return std::nullopt;
    length = 0;
    for (int i = 2; i < 10; ++i) length = (length << 8) | b[i];
    at = 10;
  }
  if (bytes.size() < at + length) return std::nullopt;
  ServerFrame frame{b[0] & 0x0f, bytes.substr(at, length)};
  bytes.erase(0, at + length);
  return frame;
}

class WsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(herald_.ok()); }

  // Reads the 101 off `c` and checks it.
  void ExpectSwitchingProtocols(RawHttpConnection& c) {
    ASSERT_TRUE(
        c.ReadUntil([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }));
    std::string& bytes = c.buffer();
    const size_t end = bytes.find("\r\n\r\n") + 4;
    const std::string head = bytes.substr(0, end);
    bytes.erase(0, end);
    EXPECT_THAT(head, StartsWith("HTTP/1.1 101 Switching Protocols\r\n"));
    EXPECT_THAT(head, HasSubstr(absl::StrCat("Sec-WebSocket-Accept: ", kSampleAccept, "\r\n")));
    EXPECT_THAT(head, HasSubstr("Upgrade: websocket\r\n"));
  }

  // The next server frame on `c`.
  std::optional<ServerFrame> Next(RawHttpConnection& c) {
    c.ReadUntil([](const std::string& b) {
      std::string copy = b;
      return TakeFrame(copy).has_value();
    });
    return TakeFrame(c.buffer());
  }

  // Sends `bytes` (a handshake and maybe frames behind it), reads the 101 and the welcome.
  void Open(RawHttpConnection& c, const std::string& bytes = Upgrade()) {
    ASSERT_TRUE(c.Send(bytes));
    ExpectSwitchingProtocols(c);
    std::optional<ServerFrame> welcome = NextNotPing(c);
    ASSERT_TRUE(welcome.has_value());
    EXPECT_EQ(welcome->opcode, 1);
    EXPECT_THAT(welcome->payload, HasSubstr(R"("welcome")"));
  }

  // The next frame is the `subscribed` reply to request `id`.
  void ExpectSubscribed(RawHttpConnection& c, int id) {
    std::optional<ServerFrame> reply = NextNotPing(c);
    ASSERT_TRUE(reply.has_value());
    EXPECT_THAT(reply->payload, HasSubstr(absl::StrCat(R"("id":)", id)));
    EXPECT_THAT(reply->payload, HasSubstr("subscribed"));
  }

  // The next frame that is not a ping (Liveness may ping a quiet test client).
  std::optional<ServerFrame> NextNotPing(RawHttpConnection& c) {
    for (;;) {
      std::optional<ServerFrame> f = Next(c);
      if (!f.has_value() || f->opcode != 9) return f;
    }
  }

  HeraldProcess herald_{{"--threads", "1"}};
};

TEST_F(WsTransportTest, TheHandshakeAnswersTheRfcSampleKeyAndTheWelcomeFollows) {
  RawHttpConnection c(herald_.ws_address());
  Open(c);
}

TEST_F(WsTransportTest, FramesSentRightBehindTheHandshakeRequestAreRead) {
  RawHttpConnection c(herald_.ws_address());
  // One write: the server reads the frame together with the request head.
  Open(c, Upgrade() + Frame(1, R"({"id":7,"subscribe":{"channel":"news"}})"));
  ExpectSubscribed(c, 7);
}

TEST_F(WsTransportTest, AKeptAliveHttpConnectionCanUpgradeAfterARequest) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n"));
  std::optional<RawResponse> health = c.ReadResponse();
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->header("connection"), "");  // kept alive
  Open(c);
}

TEST_F(WsTransportTest, AnUnsupportedVersionGets426NamingVersion13) {
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(c.Send(Upgrade("8")));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 426);
  EXPECT_EQ(r->header("sec-websocket-version"), "13");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
}

TEST_F(WsTransportTest, AMissingKeyGets400AndAnotherPath404) {
  RawHttpResult missing = RawHttpExchange(herald_.ws_address(), Upgrade("13", ""));
  EXPECT_THAT(missing.response, StartsWith("HTTP/1.1 400 "));
  EXPECT_TRUE(missing.closed);
  RawHttpResult elsewhere =
      RawHttpExchange(herald_.ws_address(), Upgrade("13", kSampleKey, "/chat"));
  EXPECT_THAT(elsewhere.response, StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(elsewhere.response, HasSubstr("WebSocket endpoint is /ws"));
}

TEST_F(WsTransportTest, AnotherUpgradeIsIgnoredAndTheRequestServedAsHttp) {
  // What curl --http2 sends on http://: the server may ignore an upgrade it does not speak.
  RawHttpConnection c(herald_.ws_address());
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: herald\r\nConnection: Upgrade, HTTP2-Settings\r\n"
             "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr(R"("status":"ok")"));
  EXPECT_EQ(r->header("connection"), "close");  // the last request on its connection
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
}

TEST_F(WsTransportTest, AFragmentedMessageWithAPingInsideIsJoinedAndThePingAnsweredFirst) {
  RawHttpConnection c(herald_.ws_address());
  Open(c);
  ASSERT_TRUE(c.Send(Frame(1, R"({"id":3,"subscr)", /*fin=*/false) + Frame(9, "are you there") +
                     Frame(0, R"(ibe":{"channel":"news"}})")));
  std::optional<ServerFrame> pong = Next(c);
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->payload, "are you there");
  ExpectSubscribed(c, 3);
}

TEST_F(WsTransportTest, AProtocolErrorIsClosedWith1002AndTheTcpConnectionEndsAtOnce) {
  RawHttpConnection c(herald_.ws_address());
  Open(c);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(c.Send(Frame(1, R"({"id":1,"ping":{}})", true, /*masked=*/false)));
  std::optional<ServerFrame> close = NextNotPing(c);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->opcode, 8);
  EXPECT_EQ(close->close_code(), 1002);
  // Without waiting for our close frame (nor for the 5 s close timeout).
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(WsTransportTest, AClientCloseIsAnsweredWithItsCodeAndTheServerEndsTheTcpConnection) {
  RawHttpConnection c(herald_.ws_address());
  Open(c);
  ASSERT_TRUE(c.Send(CloseFrame(4321, "bye")));
  std::optional<ServerFrame> close = NextNotPing(c);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->opcode, 8);
  EXPECT_EQ(close->close_code(), 4321);
  // The server closes the TCP connection first (RFC 6455 §7.1.1), at once.
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(2)));
}

TEST_F(WsTransportTest, AClientThatNeverAnswersTheServersCloseIsCutOffAfterTheCloseTimeout) {
  HeraldProcess herald({"--threads", "1", "--close-timeout-ms", "500"});
  ASSERT_TRUE(herald.ok());
  RawHttpConnection c(herald.ws_address());
  Open(c);
  // A binary frame: Herald closes with 1003 and waits for our close frame, which never comes.
  const absl::Time start = absl::Now();
  ASSERT_TRUE(c.Send(Frame(2, "raw bytes")));
  std::optional<ServerFrame> close = NextNotPing(c);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->close_code(), 1003);
  EXPECT_TRUE(c.QuietFor(absl::Milliseconds(300)));  // still open: it waits for our answer
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(5)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(WsTransportTest, AMessageOverTheLimitIsClosedWith1009) {
  HeraldProcess herald({"--threads", "1", "--max-frame-bytes", "256"});
  ASSERT_TRUE(herald.ok());
  RawHttpConnection c(herald.ws_address());
  Open(c);
  // Two fragments of 200 bytes: each under the limit, the message over it.
  ASSERT_TRUE(
      c.Send(Frame(1, std::string(200, 'x'), /*fin=*/false) + Frame(0, std::string(200, 'x'))));
  std::optional<ServerFrame> close = NextNotPing(c);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->close_code(), 1009);
  EXPECT_TRUE(c.WaitClosed(absl::Seconds(2)));
}

}  // namespace
}  // namespace herald::testing
