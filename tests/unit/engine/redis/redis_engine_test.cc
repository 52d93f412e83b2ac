// RedisEngine against a real redis-server (tests/support/redis_server.h): the whole engine
// conformance suite (tests/conformance), then what only a shared engine promises — two engines
// ("nodes") on one Redis — and the behaviour while Redis is away.
#include "server/engine/redis/redis_engine.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/conformance/engine_conformance.h"
#include "tests/support/binary_scoped.h"
#include "tests/support/redis_server.h"
#include "tests/unit/engine/redis/redis_engine_test_support.h"

namespace herald {
namespace {

// One redis-server for the whole binary, stopped at the end.
testing::RedisServer* Server() { return testing::BinaryScoped<testing::RedisServer>(); }

// A fresh key prefix per engine group, so tests never see each other's channels.
std::string FreshPrefix() {
  static std::atomic<int> n{0};
  return absl::StrCat("t", getpid(), "-", n.fetch_add(1));
}

engine::RedisOptions Options(const std::string& prefix, const std::string& node) {
  engine::RedisOptions options;
  options.port = Server()->port();
  options.prefix = prefix;
  options.node = node;
  return options;
}

// An engine for node `node` (the node of its task holders).
std::unique_ptr<engine::RedisEngine> MakeEngine(const core::Limits& limits,
                                                const std::string& prefix,
                                                const std::string& node = "n1") {
  EXPECT_TRUE(Server()->ok()) << "redis-server did not start";
  return testing::redis_engine::StartEngine(limits, Options(prefix, node));
}

}  // namespace

namespace conformance {

std::vector<EngineUnderTest> EnginesUnderTest() {
  return {testing::redis_engine::RedisEngineUnderTest("Redis", FreshPrefix, MakeEngine)};
}

}  // namespace conformance

namespace engine {
namespace {

using ::testing::ElementsAre;
using testing::redis_engine::Await;
using testing::redis_engine::Eventually;
using testing::redis_engine::kWait;
using testing::redis_engine::Recorder;
using testing::redis_engine::Subscribe;
using testing::redis_engine::TestLimits;

// Publishes as node "a", asking for an ack (its routing travels with the publication).
absl::StatusOr<core::StreamPosition> Publish(core::Engine& e, const std::string& channel,
                                             const std::string& data) {
  return testing::redis_engine::Publish(e, channel, data, /*ack_requested=*/true);
}

// Two "nodes": engines with their own connections and thread, on one Redis and one prefix.
class TwoNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string prefix = FreshPrefix();
    a_ = MakeEngine(TestLimits(), prefix, "a");
    b_ = MakeEngine(TestLimits(), prefix, "b");
    a_->broker().SetEventHandler(&on_a_);
    b_->broker().SetEventHandler(&on_b_);
  }
  Recorder on_a_, on_b_;
  std::unique_ptr<RedisEngine> a_, b_;
};

TEST_F(TwoNodes, APublicationOnOneNodeReachesTheOtherWithTheSameOffsets) {
  ASSERT_TRUE(Subscribe(*a_, "ch").ok());
  ASSERT_TRUE(Subscribe(*b_, "ch").ok());
  std::vector<core::StreamPosition> published;
  for (int i = 1; i <= 3; ++i) {
    auto pos = Publish(*a_, "ch", absl::StrCat(i));
    ASSERT_TRUE(pos.ok()) << pos.status();
    published.push_back(*pos);
  }
  auto pos = Publish(*b_, "ch", "4");  // either node publishes into the same stream
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(pos->offset, 4u);
  EXPECT_EQ(pos->epoch, published[0].epoch);
  for (Recorder* r : {&on_a_, &on_b_}) {
    std::vector<core::Publication> seen = r->Wait(4);
    ASSERT_EQ(seen.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(seen[i].position.offset, i + 1);
      EXPECT_EQ(seen[i].position.epoch, published[0].epoch);
      EXPECT_EQ(*seen[i].spec.data_json, absl::StrCat(i + 1));
      EXPECT_EQ(seen[i].spec.origin_node, "a");  // ack routing travels with the publication
      EXPECT_TRUE(seen[i].spec.ack_requested);
    }
  }
}

TEST_F(TwoNodes, AClientRecoversOnTheOtherNode) {
  core::StreamPosition seen_on_a;
  for (int i = 1; i <= 5; ++i) {
    auto pos = Publish(*a_, "ch", absl::StrCat(i));
    ASSERT_TRUE(pos.ok());
    if (i == 2) seen_on_a = *pos;
  }
  auto joined = Await<core::JoinResult>([&](auto done) {
    b_->broker().Join("ch", core::JoinSpec{seen_on_a, false}, std::move(done));
  });
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_TRUE(joined->recovered);
  std::vector<std::string> missed;
  for (const auto& p : joined->missed) missed.push_back(*p.data_json);
  EXPECT_THAT(missed, ElementsAre("3", "4", "5"));
}

TEST_F(TwoNodes, ConcurrentVersionsOfAnOrderFromTwoNodesAreNeverOutOfOrder) {
  ASSERT_TRUE(Subscribe(*a_, "orders").ok());
  ASSERT_TRUE(Subscribe(*b_, "orders").ok());
  constexpr uint64_t kVersions = 300;
  std::atomic<uint64_t> next{0};
  std::atomic<int> applied{0};
  auto run = [&](RedisEngine* e) {
    for (uint64_t v; (v = ++next) <= kVersions;) {
      core::OrderUpdate u;
      u.order_id = "race";
      u.version = v;
      u.channels = {"orders"};
      u.spec.key = "race";
      u.spec.data_json = std::make_shared<const std::string>(absl::StrCat(v));
      auto d = Await<core::OrderDecision>(
          [&](auto done) { e->orders().Apply(std::move(u), std::move(done)); });
      if (d.ok() && d->applied) ++applied;
    }
  };
  std::thread t1(run, a_.get()), t2(run, b_.get());
  t1.join();
  t2.join();
  for (Recorder* r : {&on_a_, &on_b_}) {
    std::vector<core::Publication> seen = r->Wait(applied);
    ASSERT_EQ(seen.size(), static_cast<size_t>(applied.load()));
    uint64_t last = 0;
    for (const auto& p : seen) {
      const uint64_t v = std::stoull(*p.spec.data_json);
      EXPECT_GT(v, last);
      last = v;
    }
  }
}

TEST_F(TwoNodes, APubSubReconnectReplaysWhatWasPublishedMeanwhileFromHistory) {
  ASSERT_TRUE(Subscribe(*b_, "ch").ok());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(Publish(*a_, "ch", absl::StrCat(i)).ok());
  on_b_.Wait(3);
  // Redis keeps its data; only the pub/sub connections drop (as on a network blip).
  EXPECT_THAT(Server()->Command("CLIENT KILL TYPE pubsub"), ::testing::StartsWith(":"));
  for (int i = 4; i <= 6; ++i) ASSERT_TRUE(Publish(*a_, "ch", absl::StrCat(i)).ok());
  ASSERT_TRUE(b_->WaitReady(kWait).ok());
  for (int i = 7; i <= 8; ++i) ASSERT_TRUE(Publish(*a_, "ch", absl::StrCat(i)).ok());
  std::vector<core::Publication> seen = on_b_.Wait(8);
  std::vector<uint64_t> offsets;
  for (const auto& p : seen) offsets.push_back(p.position.offset);
  EXPECT_THAT(offsets, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));  // no gap, no duplicate
}

// What the conformance suite checks with a fake clock, with Redis' own clock and 1 s limits:
// history TTL, final keys leaving snapshots, ended orders and idempotency keys forgotten.
TEST(RedisEngineExpiry, HistoryKeysOrdersAndIdempotencyKeysExpireInRedis) {
  core::Limits limits;
  limits.history.size = 10;
  limits.history.ttl = absl::Seconds(1);
  limits.order_retention = absl::Seconds(1);
  limits.idempotency_window = absl::Seconds(1);
  auto engine = MakeEngine(limits, FreshPrefix());
  auto join = [&](std::optional<core::StreamPosition> since, bool snapshot) {
    return Await<core::JoinResult>([&](auto done) {
      engine->broker().Join("ch", core::JoinSpec{since, snapshot}, std::move(done));
    });
  };
  auto apply = [&](uint64_t version, bool final) {
    core::OrderUpdate u;
    u.order_id = "o1";
    u.version = version;
    u.final = final;
    u.channels = {"ch"};
    u.spec.key = "o1";
    u.spec.key_final = final;
    u.spec.data_json = std::make_shared<const std::string>(absl::StrCat(version));
    return Await<core::OrderDecision>(
        [&](auto done) { engine->orders().Apply(std::move(u), std::move(done)); });
  };
  auto first = Publish(*engine, "ch", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(apply(5, /*final=*/true).ok());
  auto snapshot = join(std::nullopt, true);
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->snapshot.size(), 1u);
  EXPECT_FALSE(apply(4, false)->applied);
  EXPECT_EQ(engine->orders().TrackedOrders(), 1u);
  auto idempotent = [&](int* publishes) {
    return Await<core::IdempotencyStore::Result>([&](auto done) {
      engine->idempotency().Run(
          "ch", "k",
          [publishes](core::Done<v1::ChannelDelivery> published) {
            ++*publishes;
            published(v1::ChannelDelivery());
          },
          std::move(done));
    });
  };
  int publishes = 0;
  ASSERT_TRUE(idempotent(&publishes).ok());
  EXPECT_TRUE(idempotent(&publishes)->duplicate);

  // History older than its TTL no longer recovers; the epoch stays (the meta lives on).
  EXPECT_TRUE(Eventually([&] {
    auto r = join(core::StreamPosition{first->epoch, 0}, false);
    return r.ok() && !r->recovered && r->position.epoch == first->epoch;
  }));
  // The final order leaves the snapshot and the book; its id may start again.
  EXPECT_TRUE(Eventually([&] {
    auto r = join(std::nullopt, true);
    return r.ok() && r->snapshot.empty();
  }));
  EXPECT_TRUE(apply(1, false)->applied);
  // The idempotency key publishes again after its window.
  EXPECT_TRUE(Eventually([&] {
    auto r = idempotent(&publishes);
    return r.ok() && !r->duplicate;
  }));
  EXPECT_EQ(publishes, 2);
}

// The queues a node was told have tasks waiting.
class WaitingQueues : public core::TaskEventHandler {
 public:
  void TasksWaiting(const std::string& queue) override {
    absl::MutexLock lock(&mu_);
    queues_.push_back(queue);
  }
  void TaskTimedOut(const core::Lease&, core::TaskTimeout) override {}
  size_t Count(const std::string& queue) {
    absl::MutexLock lock(&mu_);
    return std::count(queues_.begin(), queues_.end(), queue);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> queues_ ABSL_GUARDED_BY(mu_);
};

// Tasks that expire while waiting leave their ids in the queue's list (skipped by Lease); the
// sweep drops them once they outnumber the live ones, so the list stays within twice the depth.
TEST(RedisEngineTasks, IdsOfTasksThatExpiredWhileWaitingLeaveTheList) {
  const std::string prefix = FreshPrefix();
  auto engine = MakeEngine(TestLimits(), prefix);
  auto enqueue = [&](absl::Duration ttl) {
    core::TaskSpec spec{std::make_shared<const std::string>("1"), absl::Seconds(30), ttl};
    return Await<core::Enqueued>(
        [&](auto done) { engine->tasks().Enqueue("q", std::move(spec), "", std::move(done)); });
  };
  // 150 short-lived tasks with 50 long-lived ones among them (every fourth). The short TTL leaves
  // room for 200 enqueues on a loaded machine before the first count.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(enqueue(i % 4 == 1 ? absl::Minutes(10) : absl::Seconds(3)).ok());
  }
  const absl::Time all_short_ones_expired =
      absl::Now() + absl::Seconds(3) + absl::Milliseconds(200);
  const std::string llen = absl::StrCat("LLEN {", prefix, "}:tasks:w:q");
  EXPECT_EQ(Server()->Command(llen), ":200");
  // The first sweep comes once every short-lived task is past its TTL, so that one sweep finds all
  // 150 and drops every dead id. (Sweeps that each found a few would only keep the list within
  // twice the live count, 100, and the exact count below would depend on the machine's speed.)
  absl::SleepFor(all_short_ones_expired - absl::Now());
  auto waiting = [&] {
    auto queues = Await<std::vector<core::QueueState>>(
        [&](auto done) { engine->tasks().List(std::move(done)); });
    return queues.ok() && queues->size() == 1 ? (*queues)[0].waiting : 0;
  };
  EXPECT_TRUE(Eventually(
      [&] {
        engine->tasks().Sweep(absl::Now());
        return waiting() == 50 && Server()->Command(llen) == ":50";
      },
      absl::Seconds(10)));
  auto leased = Await<std::vector<core::Lease>>([&](auto done) {
    engine->tasks().Lease("q", std::vector<std::string>(60, "n1/c1"), std::move(done));
  });
  ASSERT_TRUE(leased.ok());
  EXPECT_EQ(leased->size(), 50u);
}

TEST(RedisEngineFaults, PublishFailsFastWhileRedisIsDownAndWorksAfterItReturns) {
  testing::RedisServer server;
  ASSERT_TRUE(server.ok());
  RedisOptions options;
  options.port = server.port();
  options.prefix = FreshPrefix();
  options.node = "n1";
  // Another node: a name of its own.
  RedisOptions subscriber_options = options;
  subscriber_options.node = "subscriber";
  WaitingQueues told;
  RedisEngine publisher(TestLimits(), options), subscriber(TestLimits(), subscriber_options);
  publisher.tasks().SetEventHandler(&told);
  ASSERT_TRUE(publisher.WaitReady(kWait).ok());
  ASSERT_TRUE(subscriber.WaitReady(kWait).ok());
  Recorder recorder;
  subscriber.broker().SetEventHandler(&recorder);
  ASSERT_TRUE(Subscribe(subscriber, "ch").ok());
  ASSERT_TRUE(Publish(publisher, "ch", "before").ok());
  recorder.Wait(1);
  v1::ClientInfo client;
  client.set_connection_id("subscriber-1");
  client.set_node("subscriber");
  absl::Notification added;
  subscriber.presence().Add("chat:1", client, [&](absl::Status st) {
    EXPECT_TRUE(st.ok()) << st;
    added.Notify();
  });
  ASSERT_TRUE(added.WaitForNotificationWithTimeout(kWait));

  server.Stop();
  // Never accepted and dropped: an error, quickly.
  absl::Status failed;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    const absl::Time start = absl::Now();
    failed = Publish(publisher, "ch", "while down").status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  } while (failed.ok() && absl::Now() < deadline);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  EXPECT_FALSE(publisher.ready());
  // Task operations too, and a survey of the nodes.
  const absl::Time start = absl::Now();
  auto enqueued = Await<core::Enqueued>([&](auto done) {
    publisher.tasks().Enqueue("q", core::TaskSpec{std::make_shared<const std::string>("1")}, "",
                              std::move(done));
  });
  EXPECT_EQ(enqueued.status().code(), absl::StatusCode::kUnavailable) << enqueued.status();
  auto leased = Await<std::vector<core::Lease>>(
      [&](auto done) { publisher.tasks().Lease("q", {"n1/c1"}, std::move(done)); });
  EXPECT_EQ(leased.status().code(), absl::StatusCode::kUnavailable) << leased.status();
  auto survey = Await<core::ControlBus::Answers>([&](auto done) {
    publisher.control().Survey("ListConnections", "", absl::Seconds(5), std::move(done));
  });
  EXPECT_EQ(survey.status().code(), absl::StatusCode::kUnavailable) << survey.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  ASSERT_TRUE(server.Start());
  ASSERT_TRUE(publisher.WaitReady(kWait).ok());
  ASSERT_TRUE(subscriber.WaitReady(kWait).ok());
  // The node wrote its presence again into the new, empty Redis.
  EXPECT_TRUE(Eventually(
      [&] {
        auto present = Await<std::vector<v1::ClientInfo>>(
            [&](auto done) { publisher.presence().Get("chat:1", std::move(done)); });
        return present.ok() && present->size() == 1;
      },
      kWait));
  // Reconnected and resubscribed: publications flow again (a new epoch: Redis lost its data).
  absl::StatusOr<core::StreamPosition> pos;
  const absl::Time until = absl::Now() + kWait;
  std::vector<core::Publication> seen;
  do {
    pos = Publish(publisher, "ch", "after");
    seen = recorder.Wait(2);
  } while (seen.size() < 2 && absl::Now() < until);
  ASSERT_TRUE(pos.ok()) << pos.status();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(*seen.back().spec.data_json, "after");
  EXPECT_NE(seen.back().position.epoch, seen.front().position.epoch);
  // Its worker's lease failed while Redis was away: once it is back, the node is told to look
  // again (a worker never waits for a notice that was not sent).
  EXPECT_TRUE(Eventually([&] {
    publisher.tasks().Sweep(absl::Now());
    return told.Count("q") > 0;
  }));
}

// Throwaway self-signed certificates (openssl CLI) for localhost, in a fresh directory.
class TlsFiles {
 public:
  TlsFiles() {
    char tmpl[] = "/tmp/herald-redis-tls-XXXXXX";
    dir_ = mkdtemp(tmpl) != nullptr ? tmpl : "";
  }
  ~TlsFiles() {
    if (!dir_.empty()) std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }
  // NAME.pem / NAME.key: a self-signed certificate for localhost and 127.0.0.1.
  bool Make(const std::string& name) {
    return std::system(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt "
                                    "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=",
                                    name, " -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
                                    " -keyout ", path(name + ".key"), " -out ", path(name + ".pem"),
                                    " >/dev/null 2>&1")
                           .c_str()) == 0;
  }
  std::string path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

 private:
  std::string dir_;
};

TEST(RedisEngineTls, WorksOverRedissAndRefusesAServerItCannotVerify) {
  TlsFiles files;
  ASSERT_TRUE(files.Make("redis"));
  ASSERT_TRUE(files.Make("other"));
  testing::RedisServer server(
      {files.path("redis.pem"), files.path("redis.key"), files.path("redis.pem")});
  ASSERT_TRUE(server.ok()) << server.Log();
  absl::StatusOr<RedisOptions> options = ParseRedisUrl(server.tls_url());
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->tls);
  options->prefix = FreshPrefix();
  options->tls_ca_file = files.path("redis.pem");
  {
    // Two nodes: a name each.
    RedisOptions subscriber_options = *options;
    subscriber_options.node = "subscriber";
    RedisEngine publisher(TestLimits(), *options), subscriber(TestLimits(), subscriber_options);
    ASSERT_TRUE(publisher.WaitReady(kWait).ok());
    ASSERT_TRUE(subscriber.WaitReady(kWait).ok());
    Recorder recorder;
    subscriber.broker().SetEventHandler(&recorder);
    ASSERT_TRUE(Subscribe(subscriber, "secure").ok());
    ASSERT_TRUE(Publish(publisher, "secure", "over tls").ok());
    std::vector<core::Publication> seen = recorder.Wait(1);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(*seen[0].spec.data_json, "over tls");
  }
  // A CA that did not sign the server's certificate: never ready, operations fail fast.
  RedisOptions wrong_ca = *options;
  wrong_ca.tls_ca_file = files.path("other.pem");
  RedisEngine refused(TestLimits(), wrong_ca);
  absl::Status ready = refused.WaitReady(absl::Seconds(2));
  EXPECT_EQ(ready.code(), absl::StatusCode::kUnavailable) << ready;
  EXPECT_EQ(Publish(refused, "secure", "nope").status().code(), absl::StatusCode::kUnavailable);
  // Plain redis:// to the TLS port is not Redis speaking: never ready either.
  RedisOptions plain = *options;
  plain.tls = false;
  RedisEngine confused(TestLimits(), plain);
  EXPECT_FALSE(confused.WaitReady(absl::Seconds(2)).ok());
}

TEST(RedisOptionsTest, ParsesUrls) {
  auto o = ParseRedisUrl("redis://:secret@db.local:6380/2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "db.local");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->password, "secret");
  EXPECT_EQ(o->username, "");
  EXPECT_EQ(o->db, 2);
  o = ParseRedisUrl("redis://user:pw@127.0.0.1");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->username, "user");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 0);
  o = ParseRedisUrl("redis://[::1]:7000");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
  o = ParseRedisUrl("rediss://:pw@cache.example:6380");
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->tls);
  EXPECT_EQ(o->host, "cache.example");
  EXPECT_FALSE(ParseRedisUrl("redis://h").value().tls);
  EXPECT_FALSE(ParseRedisUrl("http://h").ok());
  EXPECT_FALSE(ParseRedisUrl("redis://h:99999").ok());
  EXPECT_FALSE(ParseRedisUrl("redis://h/x").ok());
}

}  // namespace
}  // namespace engine
}  // namespace herald
