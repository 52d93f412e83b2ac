// Server-Sent Events (GET /api/v1/events) against the real herald: curl follows the stream,
// Last-Event-ID resumes it with exactly the missed events (or `event: reset` past the buffer),
// the API key is required, and a reader that does not read is disconnected.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "herald/v1/broker.pb.h"
#include "server/core/protocol.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_http.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kApiKey[] = "sse-key";

struct SseEvent {
  std::string id;
  std::string type;
  std::string data;
};

// The events in an SSE byte stream (chunked framing removed first when `chunked`).
std::vector<SseEvent> ParseEvents(const std::string& stream) {
  std::vector<SseEvent> events;
  for (absl::string_view block : absl::StrSplit(stream, "\n\n")) {
    SseEvent e;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "id: ")) e.id = std::string(line);
      if (absl::ConsumePrefix(&line, "event: ")) e.type = std::string(line);
      if (absl::ConsumePrefix(&line, "data: ")) e.data = std::string(line);
    }
    if (!e.type.empty()) events.push_back(e);
  }
  return events;
}

// The payload of a chunked body read so far (whole chunks only).
std::string Dechunk(absl::string_view body) {
  std::string out;
  for (;;) {
    const size_t eol = body.find("\r\n");
    if (eol == absl::string_view::npos) break;
    size_t size = 0;
    if (!absl::SimpleHexAtoi(body.substr(0, eol), &size) || size == 0) break;
    if (body.size() < eol + 2 + size + 2) break;
    absl::StrAppend(&out, body.substr(eol + 2, size));
    body.remove_prefix(eol + 2 + size + 2);
  }
  return out;
}

std::string EventsRequest(const std::string& query, const std::string& extra = "") {
  return absl::StrCat("GET /api/v1/events", query, " HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ",
                      kApiKey, "\r\nAccept: text/event-stream\r\n", extra, "\r\n");
}

// An SSE stream read on a raw socket.
class SseStream {
 public:
  SseStream(const std::string& address, const std::string& query, const std::string& extra = "",
            int receive_buffer = 0)
      : c_(address, receive_buffer) {
    if (c_.Send(EventsRequest(query, extra))) {
      c_.ReadUntil([](const std::string& b) { return absl::StrContains(b, "\r\n\r\n"); });
      const size_t end = c_.buffer().find("\r\n\r\n");
      if (end != std::string::npos) {
        head_ = c_.buffer().substr(0, end);
        c_.buffer().erase(0, end + 4);
      }
    }
  }
  const std::string& head() const { return head_; }
  std::vector<SseEvent> Events() { return ParseEvents(Dechunk(c_.buffer())); }
  // Waits until `n` events (of any type) have arrived.
  std::vector<SseEvent> WaitEvents(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    c_.ReadUntil([&](const std::string& b) { return ParseEvents(Dechunk(b)).size() >= n; },
                 timeout);
    return Events();
  }
  RawHttpConnection& connection() { return c_; }

 private:
  RawHttpConnection c_;
  std::string head_;
};

std::vector<std::string> Types(const std::vector<SseEvent>& events) {
  std::vector<std::string> types;
  for (const SseEvent& e : events) types.push_back(e.type);
  return types;
}

// A WebSocket client that connects and leaves: a CONNECT and a DISCONNECT event.
std::string ConnectAndLeave(HeraldProcess& herald) {
  WsClient client;
  EXPECT_TRUE(client.Connect(herald.ws_url()));
  const std::string id = client.connection_id();
  client.Close();
  EXPECT_TRUE(client.WaitClosed());
  return id;
}

TEST(SseTest, CurlFollowsEventsAsTheyHappenAndResumesWithLastEventId) {
  HeraldProcess herald({"--api-key", kApiKey});
  ASSERT_TRUE(herald.ok());
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t curl = fork();
  if (curl == 0) {
    dup2(out[1], 1);
    close(out[0]);
    const std::string url =
        absl::StrCat("http://", herald.ws_address(), "/api/v1/events?type=connect,disconnect");
    const std::string auth = absl::StrCat("Authorization: Bearer ", kApiKey);
    execlp("curl", "curl", "-sN", "--max-time", "30", "-H", auth.c_str(), url.c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  std::string stream;
  auto read_until = [&](const std::string& needle) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!absl::StrContains(stream, needle) && absl::Now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      stream.append(buf, static_cast<size_t>(n));
    }
    return absl::StrContains(stream, needle);
  };
  // curl has the stream's first bytes: it is attached, so the next events reach it.
  ASSERT_TRUE(read_until("retry: 1000\n\n")) << stream;
  const std::string id = ConnectAndLeave(herald);
  EXPECT_TRUE(read_until("event: disconnect\n")) << stream;
  kill(curl, SIGTERM);
  waitpid(curl, nullptr, 0);
  close(out[0]);
  std::vector<SseEvent> events = ParseEvents(stream);
  ASSERT_THAT(Types(events), ElementsAre("connect", "disconnect"));
  for (const SseEvent& e : events) {
    v1::Event event;
    ASSERT_TRUE(core::FromJson(e.data, &event, 8).ok()) << e.data;
    EXPECT_EQ(event.connection_id(), id);
  }
  uint64_t first = 0;
  uint64_t second = 0;
  ASSERT_TRUE(absl::SimpleAtoi(events[0].id, &first) && absl::SimpleAtoi(events[1].id, &second));
  EXPECT_EQ(second, first + 1);

  // Two clients come and go while nobody follows; curl resumes from the last id it had and gets
  // exactly those four events (then live ones, until --max-time ends it: exit 28).
  const std::string missed1 = ConnectAndLeave(herald);
  const std::string missed2 = ConnectAndLeave(herald);
  CommandResult resumed = RunCommand(
      {"/usr/bin/curl", "-sN", "--max-time", "2", "-H",
       absl::StrCat("Authorization: Bearer ", kApiKey), "-H",
       absl::StrCat("Last-Event-ID: ", events[1].id),
       absl::StrCat("http://", herald.ws_address(), "/api/v1/events?type=connect,disconnect")});
  EXPECT_EQ(resumed.exit_code, 28) << resumed.err;
  std::vector<SseEvent> replayed = ParseEvents(resumed.out);
  ASSERT_THAT(Types(replayed), ElementsAre("connect", "disconnect", "connect", "disconnect"))
      << resumed.out;
  EXPECT_THAT(replayed[0].data, HasSubstr(missed1));
  EXPECT_THAT(replayed[3].data, HasSubstr(missed2));
  EXPECT_EQ(replayed[0].id, absl::StrCat(second + 1));
}

TEST(SseTest, TheStreamIsChunkedEventStreamAndHasHeartbeats) {
  HeraldProcess herald({"--api-key", kApiKey, "--sse-heartbeat-ms", "200"});
  ASSERT_TRUE(herald.ok());
  SseStream s(herald.ws_address(), "");
  EXPECT_THAT(s.head(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(s.head(), HasSubstr("Content-Type: text/event-stream\r\n"));
  EXPECT_THAT(s.head(), HasSubstr("Transfer-Encoding: chunked\r\n"));
  EXPECT_THAT(s.head(), HasSubstr("Cache-Control: no-cache\r\n"));
  EXPECT_TRUE(s.connection().ReadUntil([](const std::string& b) {
    return absl::StrContains(Dechunk(b), ": heartbeat\n\n");
  })) << s.connection().buffer();
}

TEST(SseTest, LastEventIdResumesWithExactlyTheMissedEvents) {
  HeraldProcess herald({"--api-key", kApiKey});
  ASSERT_TRUE(herald.ok());
  std::string last_seen;
  {
    SseStream s(herald.ws_address(), "?type=connect");
    ConnectAndLeave(herald);
    std::vector<SseEvent> events = s.WaitEvents(1);
    ASSERT_EQ(events.size(), 1u);
    last_seen = events[0].id;
  }
  // Missed while away: three connects (and disconnects, which this filter leaves out).
  std::vector<std::string> missed;
  for (int i = 0; i < 3; ++i) missed.push_back(ConnectAndLeave(herald));
  SseStream resumed(herald.ws_address(), "?type=connect",
                    absl::StrCat("Last-Event-ID: ", last_seen, "\r\n"));
  std::vector<SseEvent> events = resumed.WaitEvents(3);
  ASSERT_EQ(events.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].type, "connect");
    v1::Event event;
    ASSERT_TRUE(core::FromJson(events[i].data, &event, 8).ok());
    EXPECT_EQ(event.connection_id(), missed[i]);
  }
  // Then live events, after the replayed ones.
  const std::string live = ConnectAndLeave(herald);
  events = resumed.WaitEvents(4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_THAT(events[3].data, HasSubstr(live));
  // Nothing twice, nothing from before the id.
  EXPECT_TRUE(resumed.connection().QuietFor(absl::Milliseconds(200)))
      << resumed.connection().buffer();
  EXPECT_EQ(resumed.Events().size(), 4u);
}

TEST(SseTest, AnIdOlderThanTheBufferGetsResetFirst) {
  HeraldProcess herald({"--api-key", kApiKey, "--sse-replay-events", "4"});
  ASSERT_TRUE(herald.ok());
  std::string last_seen;
  {
    SseStream s(herald.ws_address(), "?type=connect");
    ConnectAndLeave(herald);
    std::vector<SseEvent> events = s.WaitEvents(1);
    ASSERT_EQ(events.size(), 1u);
    last_seen = events[0].id;
  }
  for (int i = 0; i < 3; ++i) ConnectAndLeave(herald);  // 6 more events: the buffer holds 4
  SseStream resumed(herald.ws_address(), "?type=connect",
                    absl::StrCat("Last-Event-ID: ", last_seen, "\r\n"));
  std::vector<SseEvent> events = resumed.WaitEvents(1);
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].type, "reset");
  EXPECT_THAT(events[0].data, HasSubstr(absl::StrCat(R"("lastEventId":")", last_seen, R"(")")));
  // Then live events only.
  ConnectAndLeave(herald);
  events = resumed.WaitEvents(2);
  EXPECT_THAT(Types(events), ElementsAre("reset", "connect"));
  // An id from the future (a restarted node) is reset too.
  SseStream future(herald.ws_address(), "", "Last-Event-ID: 999999\r\n");
  EXPECT_THAT(Types(future.WaitEvents(1)), ElementsAre("reset"));
}

// The log is bounded in bytes too (--sse-replay-bytes): large events push the oldest out long
// before --sse-replay-events of them are kept.
TEST(SseTest, TheReplayLogHoldsAtMostSseReplayBytes) {
  HeraldProcess herald({"--api-key", kApiKey, "--sse-replay-bytes", "65536", "--max-frame-rate",
                        "100000", "--frame-burst", "100000"});
  ASSERT_TRUE(herald.ok());
  SseStream live(herald.ws_address(), "?type=message");
  WsClient sender;
  ASSERT_TRUE(sender.Connect(herald.ws_url()));
  const std::string data(8000, 'x');
  constexpr int kMessages = 20;  // about 320 KB of log entries
  std::vector<SseEvent> events;
  // One at a time: a live stream more than the log behind would be reset past them too.
  for (int i = 0; i < kMessages; ++i) {
    sender.Send(absl::StrCat(R"({"message":{"data":")", i, "-", data, R"("}})"));
    events = live.WaitEvents(i + 1);
  }
  ASSERT_EQ(events.size(), size_t{kMessages});
  EXPECT_THAT(Types(events), ::testing::Each("message"));
  // The first ones are gone from the log: resuming there starts with a reset.
  SseStream early(herald.ws_address(), "?type=message",
                  absl::StrCat("Last-Event-ID: ", events[0].id, "\r\n"));
  std::vector<SseEvent> replayed = early.WaitEvents(1);
  ASSERT_GE(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].type, "reset");
  // The log holds only the newest few (what fits in 64 KB), not the 20 that --sse-replay-events
  // would keep; then live events follow, none replayed.
  const std::string oldest_key = R"("oldestEventId":")";
  const size_t at = replayed[0].data.find(oldest_key);
  ASSERT_NE(at, std::string::npos) << replayed[0].data;
  uint64_t oldest = 0, newest = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      replayed[0].data.substr(
          at + oldest_key.size(),
          replayed[0].data.find('"', at + oldest_key.size()) - at - oldest_key.size()),
      &oldest));
  ASSERT_TRUE(absl::SimpleAtoi(events.back().id, &newest));
  EXPECT_GE(oldest + 6, newest);  // 64 KB hold 3 or 4 entries of about 16 KB
  EXPECT_LT(oldest, newest);
  EXPECT_TRUE(early.connection().QuietFor(absl::Milliseconds(300)));
  EXPECT_EQ(early.Events().size(), 1u);
  // The newest ones are still there: resuming from the one before the last replays the last.
  SseStream recent(herald.ws_address(), "?type=message",
                   absl::StrCat("Last-Event-ID: ", events[kMessages - 2].id, "\r\n"));
  replayed = recent.WaitEvents(1);
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].type, "message");
  EXPECT_THAT(replayed[0].data, HasSubstr(absl::StrCat(kMessages - 1, "-xxx")));
}

// A browser opens sockets ahead of its requests (preconnect) and may send the first one seconds
// later: the HTTP/1.1 server still serves it, so the stream opens.
TEST(SseTest, AStreamOpensOnAConnectionThatWasSilentForSeconds) {
  HeraldProcess herald({"--api-key", kApiKey});
  ASSERT_TRUE(herald.ok());
  RawHttpConnection c(herald.ws_address());
  ASSERT_TRUE(c.QuietFor(absl::Milliseconds(2500)));
  ASSERT_TRUE(c.Send(EventsRequest("")));
  ASSERT_TRUE(c.ReadUntil([](const std::string& b) { return absl::StrContains(b, "\r\n\r\n"); }));
  EXPECT_THAT(c.buffer(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(c.buffer(), HasSubstr("Content-Type: text/event-stream\r\n"));
}

TEST(SseTest, AStreamNeedsTheApiKey) {
  HeraldProcess herald({"--api-key", kApiKey});
  ASSERT_TRUE(herald.ok());
  RawHttpConnection c(herald.ws_address());
  ASSERT_TRUE(c.Send("GET /api/v1/events HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::optional<RawResponse> r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->header("www-authenticate"), "Bearer");
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_THAT(r->body, StartsWith(R"({"code":"UNAUTHENTICATED","message":"authorization: )"
                                  R"(missing API key)"));
  // Bad filters are 400, a POST 405.
  ASSERT_TRUE(c.Send(EventsRequest("?type=bogus")));
  r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("type: unknown event type 'bogus'"));
  // The list names every type the filter takes, the user and publish ones included.
  EXPECT_THAT(r->body, HasSubstr("; one of connect, disconnect, subscribe"));
  for (const char* type : {"user_online", "user_offline", "publish", "task_expired"}) {
    EXPECT_THAT(r->body, HasSubstr(type));
  }
  ASSERT_TRUE(c.Send(EventsRequest("?colour=red")));
  r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("query: unknown parameter 'colour'"));
}

TEST(SseTest, FiltersAreThoseOfWatchEvents) {
  HeraldProcess herald({"--api-key", kApiKey});
  ASSERT_TRUE(herald.ok());
  SseStream news(herald.ws_address(), "?channel=news&type=subscribe");
  SseStream all(herald.ws_address(), "");
  WsClient client;
  ASSERT_TRUE(client.Connect(herald.ws_url()));
  ASSERT_TRUE(client.Subscribe("sport", 1));
  ASSERT_TRUE(client.Subscribe("news", 2));
  std::vector<SseEvent> events = all.WaitEvents(3);
  EXPECT_THAT(Types(events), ElementsAre("connect", "subscribe", "subscribe"));
  events = news.WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].data, HasSubstr(R"("channel":"news")"));
  EXPECT_THAT(events[0].data, HasSubstr(R"("type":"EVENT_TYPE_SUBSCRIBE")"));
}

// The value of a gauge in /metrics (-1 when absent).
int64_t Gauge(const HeraldProcess& herald, const std::string& name) {
  RawHttpConnection c(herald.ws_address());
  if (!c.Send("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")) return -1;
  std::optional<RawResponse> r = c.ReadResponse();
  if (!r.has_value()) return -1;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    int64_t value = 0;
    if (absl::ConsumePrefix(&line, name + " ") && absl::SimpleAtoi(line, &value)) return value;
  }
  return -1;
}

TEST(SseTest, ASlowReaderIsDisconnected) {
  HeraldProcess herald({"--api-key", kApiKey, "--max-send-buffer-bytes", "65536",
                        "--max-frame-rate", "100000", "--frame-burst", "100000"});
  ASSERT_TRUE(herald.ok());
  // Reads nothing, with a small receive buffer.
  SseStream slow(herald.ws_address(), "?type=message", "", 4096);
  ASSERT_THAT(slow.head(), StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(Gauge(herald, "herald_event_streams"), 1);
  WsClient sender;
  ASSERT_TRUE(sender.Connect(herald.ws_url()));
  const std::string data(8000, 'x');
  // 1500 MESSAGE events of ~8 KB: 12 MB, more than the socket buffers and the 64 KB bound hold.
  for (int i = 0; i < 1500; ++i) {
    sender.Send(absl::StrCat(R"({"message":{"data":")", data, R"("}})"));
  }
  sender.Send(R"({"id":9,"message":{"data":"last"}})");
  ASSERT_TRUE(sender.WaitReply(9, absl::Seconds(30)).has_sent());
  // Cut off while it still has read nothing.
  EXPECT_TRUE(
      WaitFor([&] { return Gauge(herald, "herald_event_streams") == 0; }, absl::Seconds(20)));
  EXPECT_TRUE(slow.Events().empty());  // (only the stream's first bytes were read)
  // What reaches it is what the kernel buffers held, not the 12 MB: it was not buffered for it.
  EXPECT_TRUE(slow.connection().WaitClosed(absl::Seconds(20)));
  EXPECT_LT(slow.connection().buffer().size(), 1500u * 8000u);
  // With a reset: the kernel drops what it still held for it, and the reader learns it was cut
  // off (a FIN would queue behind the unread bytes).
  EXPECT_TRUE(slow.connection().reset());
  // The node is fine.
  SseStream fresh(herald.ws_address(), "?type=connect");
  WsClient other;
  ASSERT_TRUE(other.Connect(herald.ws_url()));
  EXPECT_EQ(fresh.WaitEvents(1).size(), 1u);
}

}  // namespace
}  // namespace herald::testing
