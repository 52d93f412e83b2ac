// Liveness against the real herald: a connection silent past --idle-timeout-ms is pinged, then
// closed with 4010 and forgotten (table, DISCONNECT event); one that answers the server's pings
// stays; accepted sockets have TCP keepalive on.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/protocol.h"
#include "tests/support/event_reader.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kOpText = 1;
constexpr int kOpClose = 8;
constexpr int kOpPing = 9;
constexpr int kOpPong = 10;

// Short intervals so the tests take seconds; the server's sweep runs every 50 ms with these.
constexpr absl::Duration kPingInterval = absl::Milliseconds(200);
constexpr absl::Duration kIdleTimeout = absl::Milliseconds(700);
// Scheduling slack on a loaded machine (sanitizer builds, parallel tests).
constexpr absl::Duration kSlack = absl::Milliseconds(1500);

std::vector<std::string> LivenessArgs() {
  return {"--ping-interval-ms", absl::StrCat(absl::ToInt64Milliseconds(kPingInterval)),
          "--idle-timeout-ms",  absl::StrCat(absl::ToInt64Milliseconds(kIdleTimeout)),
          "--close-timeout-ms", "500"};
}

bool Listed(v1::Broker::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  v1::ListConnectionsRequest req;
  v1::ListConnectionsResponse resp;
  EXPECT_TRUE(stub.ListConnections(&ctx, req, &resp).ok());
  for (const v1::Connection& c : resp.connections()) {
    if (c.id() == id) return true;
  }
  return false;
}

// Reads the welcome frame and returns the connection id ("" on failure).
std::string ReadWelcome(RawWsClient& client) {
  std::optional<RawWsClient::Frame> f = client.Read();
  if (!f.has_value() || f->opcode != kOpText) return "";
  v1::ServerFrame frame;
  if (!google::protobuf::util::JsonStringToMessage(f->payload, &frame).ok()) return "";
  return frame.welcome().connection_id();
}

TEST(LivenessTest, ASilentClientIsPingedThenClosedWith4010AndForgotten) {
  HeraldProcess herald(LivenessArgs());
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  EventReader events(*stub);

  // Nothing this client sends can come before `start`; it sends nothing after its handshake.
  const absl::Time start = absl::Now();
  RawWsClient silent;
  ASSERT_TRUE(silent.Connect(herald.ws_address()));
  const std::string id = ReadWelcome(silent);
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(Listed(*stub, id));

  // After a ping interval of silence the server pings, once; unanswered, it closes.
  std::optional<RawWsClient::Frame> ping = silent.Read(kIdleTimeout + kSlack);
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->opcode, kOpPing);
  EXPECT_GE(absl::Now() - start, kPingInterval);
  std::optional<RawWsClient::Frame> close = silent.Read(kIdleTimeout + kSlack);
  ASSERT_TRUE(close.has_value());
  const absl::Duration closed_after = absl::Now() - start;
  ASSERT_EQ(close->opcode, kOpClose) << "a second frame before the close: " << close->payload;
  EXPECT_EQ(close->close_code, core::kCloseIdleTimeout);
  EXPECT_EQ(close->payload, "idle timeout: nothing received for 700 ms");
  EXPECT_GT(closed_after, kIdleTimeout);  // never before the timeout
  EXPECT_LT(closed_after, kIdleTimeout + kSlack);

  // It does not answer the close either: gone within --close-timeout-ms, with its event.
  EXPECT_TRUE(WaitFor([&] { return !Listed(*stub, id); }, absl::Milliseconds(500) + kSlack));
  std::optional<v1::Event> gone = events.WaitFor(v1::EVENT_TYPE_DISCONNECT, id);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->code(), static_cast<uint32_t>(core::kCloseIdleTimeout));
  EXPECT_THAT(gone->reason(), HasSubstr("idle timeout"));
}

TEST(LivenessTest, AClientThatOnlyAnswersServerPingsStaysConnected) {
  HeraldProcess herald(LivenessArgs());
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();

  // A websocketpp client answers pings by itself (as browsers do) and sends nothing else.
  WsClient library;
  ASSERT_TRUE(library.Connect(herald.ws_url()));
  // A raw client that answers each ping with a pong carrying its payload, and nothing else.
  RawWsClient raw;
  ASSERT_TRUE(raw.Connect(herald.ws_address()));
  const std::string raw_id = ReadWelcome(raw);
  ASSERT_FALSE(raw_id.empty());

  // Four idle timeouts: the raw client is pinged about every ping interval and answers.
  const absl::Time until = absl::Now() + 4 * kIdleTimeout;
  int pings = 0;
  while (absl::Now() < until) {
    std::optional<RawWsClient::Frame> f = raw.Read(until - absl::Now());
    if (!f.has_value()) break;  // the deadline (or a closed socket: checked below)
    ASSERT_EQ(f->opcode, kOpPing) << "close code " << f->close_code << " " << f->payload;
    ++pings;
    ASSERT_TRUE(raw.SendFrame(kOpPong, f->payload));
  }
  EXPECT_GE(pings, 4);
  EXPECT_FALSE(library.WaitClosed(absl::ZeroDuration())) << library.close_code();
  EXPECT_TRUE(Listed(*stub, raw_id));
  EXPECT_TRUE(Listed(*stub, library.connection_id()));
  // Both still work.
  library.Send(R"({"id":7,"ping":{}})");
  EXPECT_TRUE(library.WaitReply(7).has_pong());
  ASSERT_TRUE(raw.SendText(R"({"id":8,"ping":{}})"));
  std::optional<RawWsClient::Frame> pong = raw.Read();
  while (pong.has_value() && pong->opcode == kOpPing) pong = raw.Read();  // a ping may come first
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->payload, R"({"id":8,"pong":{}})");
}

TEST(LivenessTest, ClientPingFramesAloneKeepAConnection) {
  // A client that never answers WebSocket pings but sends its own (the `ping` frame of the
  // protocol, as herald.js does) every ping interval stays connected.
  HeraldProcess herald(LivenessArgs());
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  RawWsClient client;
  ASSERT_TRUE(client.Connect(herald.ws_address()));
  const std::string id = ReadWelcome(client);
  ASSERT_FALSE(id.empty());
  const absl::Time until = absl::Now() + 4 * kIdleTimeout;
  int pongs = 0;
  for (uint32_t n = 1; absl::Now() < until; ++n) {
    ASSERT_TRUE(client.SendText(absl::StrCat(R"({"id":)", n, R"(,"ping":{}})")));
    // Reads (and ignores pings) until the next send is due.
    const absl::Time next = std::min(until, absl::Now() + kPingInterval);
    while (absl::Now() < next) {
      std::optional<RawWsClient::Frame> f = client.Read(next - absl::Now());
      if (!f.has_value()) break;
      ASSERT_NE(f->opcode, kOpClose) << f->close_code << " " << f->payload;
      if (f->opcode == kOpText) ++pongs;
    }
  }
  EXPECT_GE(pongs, 4);
  EXPECT_TRUE(Listed(*stub, id));
}

// The timer field ("tr:when") of the server's socket for its one accepted connection, from the
// process's /proc/<pid>/net/tcp; tr 2 is the keepalive timer, `when` in clock ticks.
std::optional<std::pair<int, int64_t>> AcceptedSocketTimer(pid_t pid, uint16_t port) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/net/tcp"));
  std::string line;
  std::getline(in, line);  // header
  const std::string local_port = absl::StrCat(":", absl::Hex(port, absl::kZeroPad4));
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 6 || f[3] != "01" || !absl::EndsWithIgnoreCase(f[1], local_port)) continue;
    std::vector<std::string> timer = absl::StrSplit(f[5], ':');
    int tr = 0;
    int64_t when = 0;
    if (timer.size() != 2 || !absl::SimpleHexAtoi(timer[0], &tr) ||
        !absl::SimpleHexAtoi(timer[1], &when)) {
      return std::nullopt;
    }
    return std::make_pair(tr, when);
  }
  return std::nullopt;
}

TEST(LivenessTest, AcceptedSocketsHaveTcpKeepaliveOn) {
  HeraldProcess herald;  // default intervals: no WebSocket ping during the test
  ASSERT_TRUE(herald.ok());
  const uint16_t port = static_cast<uint16_t>(
      std::stoi(herald.ws_address().substr(herald.ws_address().rfind(':') + 1)));
  RawWsClient client;
  ASSERT_TRUE(client.Connect(herald.ws_address()));
  ASSERT_FALSE(ReadWelcome(client).empty());
  // Once the welcome is acknowledged the socket is idle, and its pending timer is keepalive's
  // first probe, due within TCP_KEEPIDLE (60 s).
  std::optional<std::pair<int, int64_t>> timer;
  EXPECT_TRUE(WaitFor([&] {
    timer = AcceptedSocketTimer(herald.pid(), port);
    return timer.has_value() && timer->first == 2;
  })) << (timer.has_value() ? absl::StrCat("timer ", timer->first) : "no socket");
  ASSERT_TRUE(timer.has_value());
  EXPECT_GT(timer->second, 0);
  EXPECT_LE(timer->second, 60 * sysconf(_SC_CLK_TCK));
}

CommandResult PrintConfig(std::vector<std::string> args) {
  std::vector<std::string> argv = {HeraldBinary(), "--print-config", "--static-dir", ""};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

TEST(LivenessConfigTest, TheIdleTimeoutFollowsThePingIntervalUnlessSetAndMustExceedIt) {
  CommandResult defaults = PrintConfig({});
  EXPECT_THAT(defaults.out, HasSubstr("ping-interval-ms = 25000  # default\n"));
  EXPECT_THAT(defaults.out, HasSubstr("idle-timeout-ms = 60000  # default\n"));
  // 2 x 200 + 10000.
  EXPECT_THAT(PrintConfig({"--ping-interval-ms", "200"}).out,
              HasSubstr("idle-timeout-ms = 10400  # default\n"));
  EXPECT_THAT(PrintConfig({"--ping-interval-ms", "200", "--idle-timeout-ms", "0"}).out,
              HasSubstr("idle-timeout-ms = 0  # flag\n"));
  CommandResult refused = PrintConfig({"--ping-interval-ms", "5000", "--idle-timeout-ms", "5000"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("--idle-timeout-ms (5000) must exceed --ping-interval-ms"));
}

}  // namespace
}  // namespace herald::testing
