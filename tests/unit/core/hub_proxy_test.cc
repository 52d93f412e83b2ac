// Webhooks in the core, without sockets: reading backend replies (bounded, never a crash, on any
// input) and the client protocol's proxied frames with a proxy whose calls the test answers.
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/hub.h"
#include "server/core/proxy.h"
#include "server/engine/memory_engine.h"
#include "tests/support/test_hub.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::herald::testing::StringFrameFactory;
using ::herald::testing::TestHub;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = v1::ServerFrame::KindCase;

// --- ParseProxyReply
// ------------------------------------------------------------------------------

TEST(ProxyReplyTest, ReadsTheThreeFormsAndSuccessWithoutResult) {
  for (const char* empty : {"", "  \n", "{}"}) {
    absl::StatusOr<v1::ProxyReply> r = ParseProxyReply(empty, 32);
    ASSERT_TRUE(r.ok()) << empty;
    EXPECT_FALSE(r->has_result() || r->has_error() || r->has_disconnect());
  }
  absl::StatusOr<v1::ProxyReply> r = ParseProxyReply(R"({"result":{"a":[1,2]}})", 32);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result().struct_value().fields().at("a").list_value().values_size(), 2);
  r = ParseProxyReply(R"({"error":{"code":"NOT_FOUND","message":"no"}})", 32);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ProxyErrorStatus(r->error(), absl::StatusCode::kUnknown), absl::NotFoundError("no"));
  r = ParseProxyReply(R"({"disconnect":{"code":4500,"reason":"bye"}})", 32);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->disconnect().code(), 4500u);
}

TEST(ProxyReplyTest, RefusesWhatIsNotAReplyWithInternal) {
  const std::pair<std::string, std::string> cases[] = {
      {"hello", "backend reply: not valid JSON"},
      {"[1,2]", "backend reply: expected"},
      {R"({"result":1,"error":{}})", "set only one of result, error and disconnect"},
      {R"({"reslut":1})", "backend reply: expected"},
      {R"({"error":{"code":404}})", "backend reply: expected"},
      {R"({"disconnect":{"code":1001}})", "backend reply: disconnect.code: must be 1000 or"},
      {R"({"disconnect":{"code":4000,"reason":")" + std::string(200, 'r') + R"("}})",
       "disconnect.reason: longer than 123 bytes"},
      {std::string(100000, '[') + std::string(100000, ']'), "nested deeper than 32 levels"},
      {"{\"result\":\"\xff\"}", "not valid JSON"},
  };
  for (const auto& [body, message] : cases) {
    absl::StatusOr<v1::ProxyReply> r = ParseProxyReply(body, 32);
    ASSERT_FALSE(r.ok()) << body.substr(0, 80);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(r.status().message(), HasSubstr(message)) << body.substr(0, 80);
  }
}

TEST(ProxyReplyTest, ErrorCodesOtherThanCanonicalNamesFallBack) {
  v1::ProxyError e;
  e.set_code("OUT_OF_STOCK");
  EXPECT_EQ(ProxyErrorStatus(e, absl::StatusCode::kPermissionDenied).code(),
            absl::StatusCode::kPermissionDenied);
  e.set_code("OK");  // an error cannot be OK
  EXPECT_EQ(ProxyErrorStatus(e, absl::StatusCode::kUnknown).code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(ProxyErrorStatus(e, absl::StatusCode::kUnknown).message(), "refused by the backend");
}

// Mutations of valid replies and random bytes: every one is read or refused with INTERNAL, none
// crashes or takes long (the bounding pass runs first).
TEST(ProxyReplyTest, AnyBytesAreReadOrRefusedQuickly) {
  const std::string seeds[] = {
      R"({"result":{"user":"u1","channels":["a","b"],"data":{"x":[1,2,{"y":null}]}}})",
      R"({"error":{"code":"PERMISSION_DENIED","message":"no"}})",
      R"({"disconnect":{"code":4403,"reason":"bye"}})",
      R"({"result":"\u00e9\ud83d\ude00"})",
  };
  std::mt19937 rng(1234);
  const absl::Time start = absl::Now();
  int read = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = seeds[rng() % 4];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 4) {
        case 0:
          body[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          body.erase(at, 1 + rng() % 4);
          break;
        case 2:
          body.insert(at, std::string(1 + rng() % 64, "[{\"]}:,0"[rng() % 8]));
          break;
        default:
          body.insert(at, body.substr(0, at));
          break;
      }
    }
    absl::StatusOr<v1::ProxyReply> r = ParseProxyReply(body, 32);
    if (r.ok()) {
      ++read;
    } else {
      ASSERT_EQ(r.status().code(), absl::StatusCode::kInternal) << body;
    }
  }
  EXPECT_GT(read, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

// --- ClientProtocol with a proxy
// --------------------------------------------------------------------

// Routes everything; keeps each call until the test answers it. Thread-safe.
class FakeProxy : public Proxy {
 public:
  struct Pending {
    ProxyEvent event;
    std::string key;
    v1::ProxyRequest request;
    Done<std::string> done;
  };
  bool Routes(ProxyEvent event, absl::string_view key) const override {
    return !(event == ProxyEvent::kSubscribe && absl::StartsWith(key, "open:"));
  }
  void Call(ProxyEvent event, absl::string_view key, std::string body,
            Done<std::string> done) override {
    v1::ProxyRequest request;
    EXPECT_TRUE(FromJson(body, &request, 32).ok()) << body;
    absl::MutexLock lock(&mu_);
    calls_.push_back({event, std::string(key), std::move(request), std::move(done)});
  }
  void Notify(ProxyEvent event, absl::string_view, std::string body) override {
    v1::ProxyRequest request;
    EXPECT_TRUE(FromJson(body, &request, 32).ok()) << body;
    absl::MutexLock lock(&mu_);
    notified_.push_back(std::move(request));
  }
  // Answers the oldest call with `reply` (a 2xx body, or a failure).
  v1::ProxyRequest Answer(absl::StatusOr<std::string> reply) {
    Pending p;
    {
      absl::MutexLock lock(&mu_);
      EXPECT_FALSE(calls_.empty());
      if (calls_.empty()) return {};
      p = std::move(calls_.front());
      calls_.pop_front();
    }
    p.done(std::move(reply));
    return p.request;
  }
  size_t pending() const {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  std::vector<v1::ProxyRequest> notified() const {
    absl::MutexLock lock(&mu_);
    return notified_;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Pending> calls_;
  std::vector<v1::ProxyRequest> notified_;
};

class HubProxyTest : public ::testing::Test {
 protected:
  HubProxyTest()
      : engine_(MakeLimits()),
        hub_(
            MakeLimits(), "n1", &engine_, &frames_, nullptr, [] { return absl::Now(); }, &proxy_) {}

  static Limits MakeLimits() {
    Limits l;
    l.presence_prefixes = {"chat:"};
    return l;
  }
  std::shared_ptr<FakeSession> Open() {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId());
    EXPECT_TRUE(hub_.Register(s).ok());
    return s;
  }
  // What `s` was sent after welcome: (id, kind) pairs.
  static std::vector<std::pair<uint32_t, Kind>> Sent(const FakeSession& s) {
    std::vector<std::pair<uint32_t, Kind>> out;
    for (const v1::ServerFrame& f : s.Parsed()) {
      if (!f.has_welcome()) out.emplace_back(f.id(), f.kind_case());
    }
    return out;
  }

  FakeProxy proxy_;
  engine::MemoryEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_F(HubProxyTest, FramesWaitForTheConnectAnswerAndFollowItInOrder) {
  auto s = Open();
  hub_.OnClientFrame(s, R"({"id":1,"connect":{"token":"t","data":{"k":1}}})");
  hub_.OnClientFrame(s, R"({"id":2,"subscribe":{"channel":"open:1"}})");
  hub_.OnClientFrame(s, R"({"id":3,"ping":{}})");
  EXPECT_THAT(Sent(*s), ElementsAre());  // nothing answered yet, nothing refused
  v1::ProxyRequest connect =
      proxy_.Answer(R"({"result":{"user":"u1","data":{"plan":"gold"},"allow":["open:*"]}})");
  EXPECT_EQ(connect.event(), "connect");
  EXPECT_EQ(connect.connection_id(), s->id());
  EXPECT_EQ(connect.token(), "t");
  EXPECT_THAT(Sent(*s), ElementsAre(std::pair(1u, Kind::kConnected),
                                    std::pair(2u, Kind::kSubscribed), std::pair(3u, Kind::kPong)));
  EXPECT_EQ(s->user(), "u1");
  EXPECT_EQ(s->OfKind(Kind::kConnected)[0]
                .connected()
                .data()
                .struct_value()
                .fields()
                .at("plan")
                .string_value(),
            "gold");
  // Afterwards frames go straight through.
  hub_.OnClientFrame(s, R"({"id":4,"ping":{}})");
  EXPECT_EQ(Sent(*s).back(), std::pair(4u, Kind::kPong));
}

TEST_F(HubProxyTest, ARefusedConnectDropsTheHeldFramesAndCloses) {
  auto s = Open();
  hub_.OnClientFrame(s, R"({"id":1,"connect":{}})");
  hub_.OnClientFrame(s, R"({"id":2,"ping":{}})");
  proxy_.Answer(R"({"error":{"message":"who are you"}})");
  EXPECT_THAT(Sent(*s), ElementsAre(std::pair(1u, Kind::kError)));
  EXPECT_EQ(s->OfKind(Kind::kError)[0].error().code(), "UNAUTHENTICATED");
  EXPECT_EQ(s->close_code(), kCloseUnauthorized);
  EXPECT_EQ(s->close_reason(), "unauthorized: who are you");
  // A failed backend: 1013, try again later.
  auto t = Open();
  hub_.OnClientFrame(t, R"({"id":1,"connect":{}})");
  proxy_.Answer(absl::DeadlineExceededError("backend did not answer within 3000 ms"));
  EXPECT_EQ(t->OfKind(Kind::kError)[0].error().message(),
            "connect: backend did not answer within 3000 ms");
  EXPECT_EQ(t->close_code(), 1013);
}

TEST_F(HubProxyTest, AnAnswerAfterTheConnectionClosedIsHarmless) {
  auto s = Open();
  hub_.OnClientFrame(s, R"({"id":1,"connect":{}})");
  hub_.OnClientFrame(s, R"({"id":2,"rpc":{"method":"m"}})");
  hub_.Unregister(*s, 1001, "gone");
  proxy_.Answer(R"({"result":{"user":"u1"}})");
  EXPECT_EQ(hub_.connection_count(), 0u);
  EXPECT_EQ(proxy_.pending(), 0u);  // the held rpc was not sent for a connection that is gone
}

TEST_F(HubProxyTest, SubscribeRpcAndMessageWaitForTheBackend) {
  auto s = Open();
  hub_.OnClientFrame(s, R"({"id":1,"connect":{}})");
  proxy_.Answer(R"({"result":{"user":"u1"}})");
  hub_.OnClientFrame(s, R"({"id":2,"subscribe":{"channel":"chat:1"}})");
  hub_.OnClientFrame(s, R"({"id":3,"rpc":{"method":"m","data":[1]}})");
  hub_.OnClientFrame(s, R"({"id":4,"message":{"data":"hi"}})");
  EXPECT_EQ(proxy_.pending(), 3u);
  EXPECT_EQ(proxy_.Answer(R"({"error":{"code":"NOT_FOUND","message":"no room"}})").channel(),
            "chat:1");
  EXPECT_EQ(proxy_.Answer(R"({"result":{"ok":true}})").method(), "m");
  EXPECT_EQ(proxy_.Answer("{}").data().string_value(), "hi");
  EXPECT_THAT(Sent(*s), ElementsAre(std::pair(1u, Kind::kConnected), std::pair(2u, Kind::kError),
                                    std::pair(3u, Kind::kRpcResult), std::pair(4u, Kind::kSent)));
  EXPECT_EQ(s->OfKind(Kind::kError)[0].error().code(), "NOT_FOUND");
  // Allowed: subscribed, and the join is a notification (chat: is a presence channel).
  hub_.OnClientFrame(s, R"({"id":5,"subscribe":{"channel":"chat:2"}})");
  proxy_.Answer(R"({"result":{}})");
  EXPECT_EQ(Sent(*s).back(), std::pair(5u, Kind::kSubscribed));
  // The user came online with the connect; the join followed.
  ASSERT_THAT(proxy_.notified(), ::testing::SizeIs(2));
  EXPECT_EQ(proxy_.notified()[0].event(), "online");
  EXPECT_EQ(proxy_.notified()[0].user(), "u1");
  EXPECT_EQ(proxy_.notified()[0].connection_id(), s->id());
  EXPECT_EQ(proxy_.notified()[1].event(), "join");
  EXPECT_EQ(proxy_.notified()[1].user(), "u1");
  hub_.Unregister(*s, 1000, "bye");
  // No grace period here: the leave, the disconnect and the user's offline at once.
  ASSERT_THAT(proxy_.notified(), ::testing::SizeIs(5));
  EXPECT_EQ(proxy_.notified()[2].event(), "leave");
  EXPECT_EQ(proxy_.notified()[2].channel(), "chat:2");
  EXPECT_EQ(proxy_.notified()[3].event(), "disconnect");
  EXPECT_EQ(proxy_.notified()[3].code(), 1000u);
  EXPECT_EQ(proxy_.notified()[4].event(), "offline");
  EXPECT_EQ(proxy_.notified()[4].user(), "u1");
  EXPECT_EQ(proxy_.notified()[4].connection_id(), "");
}

}  // namespace
}  // namespace herald::core
