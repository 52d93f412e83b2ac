// The engine conformance suite (see engine_conformance.h): Broker, OrderStore, IdempotencyStore,
// TaskStore and ControlBus behaviour, through the interfaces, with completions awaited as a node
// would receive them (possibly later, on another thread).
#include "tests/conformance/engine_conformance.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/await.h"

namespace herald::conformance {
namespace {

using core::JoinResult;
using core::JoinSpec;
using core::PublishSpec;
using core::StreamPosition;
using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(5);

template <typename T, typename Start>
absl::StatusOr<T> Await(Start start) {
  return testing::Await<T>(std::move(start), kWait);
}

// Records what the broker hands the node, per channel, and checks the handler's contract: one
// channel's publications in offset order, never two at once.
class RecordingHandler : public core::BrokerEventHandler {
 public:
  void HandlePublication(const core::Publication& p) override {
    absl::MutexLock lock(&mu_);
    Channel& ch = channels_[p.channel];
    if (ch.busy) concurrent_ = true;
    ch.busy = true;
    if (!ch.offsets.empty() && p.position.offset <= ch.offsets.back()) out_of_order_ = true;
    ch.offsets.push_back(p.position.offset);
    ch.data.push_back(*p.spec.data_json);
    ch.busy = false;
  }
  // Waits (bounded) until `channel` has `n` publications; returns its offsets.
  std::vector<uint64_t> Offsets(const std::string& channel, size_t n = 0) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return channels_[channel].offsets.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return channels_[channel].offsets;
  }
  std::vector<std::string> Data(const std::string& channel, size_t n = 0) {
    Offsets(channel, n);
    absl::MutexLock lock(&mu_);
    return channels_[channel].data;
  }
  bool violated() {
    absl::MutexLock lock(&mu_);
    return concurrent_ || out_of_order_;
  }

 private:
  struct Channel {
    std::vector<uint64_t> offsets;
    std::vector<std::string> data;
    bool busy = false;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Channel> channels_ ABSL_GUARDED_BY(mu_);
  bool concurrent_ ABSL_GUARDED_BY(mu_) = false;
  bool out_of_order_ ABSL_GUARDED_BY(mu_) = false;
};

// Records what the task store tells the node.
class RecordingTaskHandler : public core::TaskEventHandler {
 public:
  void TasksWaiting(const std::string& queue) override {
    absl::MutexLock lock(&mu_);
    waiting_.push_back(queue);
  }
  void TaskTimedOut(const core::Lease& lease, core::TaskTimeout why) override {
    absl::MutexLock lock(&mu_);
    timed_out_.emplace_back(lease, why);
    // Never before its deadline on the real clock (a fake clock's deadlines are long past).
    if (lease.holder.empty() || why != core::TaskTimeout::kAckDeadline) return;
    if (absl::Now() < lease.deadline) early_ = true;
  }
  // Waits (bounded) until `queue` was announced `n` times; how often it was.
  size_t Waiting(const std::string& queue, size_t n = 0) {
    absl::MutexLock lock(&mu_);
    auto count = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<size_t>(std::count(waiting_.begin(), waiting_.end(), queue));
    };
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return count();
  }
  // Waits (at most `wait`) until `n` timeouts were reported; returns them all.
  std::vector<std::pair<core::Lease, core::TaskTimeout>> TimedOut(size_t n = 0,
                                                                  absl::Duration wait = kWait) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return timed_out_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), wait);
    return timed_out_;
  }
  // A redelivery was reported before the real clock reached its deadline.
  bool early() {
    absl::MutexLock lock(&mu_);
    return early_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<core::Lease, core::TaskTimeout>> timed_out_ ABSL_GUARDED_BY(mu_);
  bool early_ ABSL_GUARDED_BY(mu_) = false;
};

class Conformance : public ::testing::TestWithParam<EngineUnderTest> {
 protected:
  void SetUp() override {
    engine_ = GetParam().make(MakeLimits(), [this] { return Now(); });
    engine_->broker().SetEventHandler(&handler_);
    engine_->tasks().SetEventHandler(&task_events_);
  }

  static core::Limits MakeLimits() {
    core::Limits l;
    l.history.size = 5;
    l.history.ttl = absl::Seconds(60);
    l.history_by_prefix.push_back({"big:", core::HistoryPolicy{50, absl::Seconds(600)}});
    l.history_by_prefix.push_back({"none:", core::HistoryPolicy{0, absl::Seconds(1)}});
    l.order_retention = absl::Seconds(30);
    l.idempotency_window = absl::Seconds(60);
    l.max_queue_depth = 100;
    return l;
  }
  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }
  // GTEST_SKIP() returns from this helper only: callers return when it says true.
  bool SkipWithoutFakeClock() {
    if (GetParam().fake_clock) return false;
    [] { GTEST_SKIP() << "expiry is not driven by the test's clock"; }();
    return true;
  }

  core::Broker& broker() { return engine_->broker(); }

  StreamPosition Pub(const std::string& channel, const std::string& data,
                     const std::string& key = "", bool final = false, bool ack = false) {
    PublishSpec spec;
    spec.data_json = std::make_shared<const std::string>(data);
    spec.key = key;
    spec.key_final = final;
    spec.ack_requested = ack;
    auto pos = Await<StreamPosition>(
        [&](auto done) { broker().Publish(channel, std::move(spec), std::move(done)); });
    EXPECT_TRUE(pos.ok()) << pos.status();
    return pos.ok() ? *pos : StreamPosition{};
  }
  void Subscribe(const std::string& channel) {
    struct Ok {};
    auto st = Await<Ok>([&](auto done) {
      broker().Subscribe(channel, [done = std::move(done)](absl::Status s) mutable {
        if (s.ok()) return done(Ok{});
        done(s);
      });
    });
    ASSERT_TRUE(st.ok()) << st.status();
  }
  JoinResult Join(const std::string& channel, std::optional<StreamPosition> recover,
                  bool snapshot = false) {
    auto r = Await<JoinResult>([&](auto done) {
      broker().Join(channel, JoinSpec{recover, snapshot}, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : JoinResult{};
  }
  core::HistoryResult History(const std::string& channel, uint64_t since, size_t limit,
                              bool reverse) {
    auto r = Await<core::HistoryResult>([&](auto done) {
      broker().History(channel, core::HistoryQuery{since, limit, reverse}, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : core::HistoryResult{};
  }
  core::OrderDecision Apply(const std::string& id, uint64_t version, bool final = false,
                            std::vector<std::string> channels = {"orders", "store:1"}) {
    core::OrderUpdate u;
    u.order_id = id;
    u.version = version;
    u.final = final;
    u.channels = std::move(channels);
    u.spec.data_json = std::make_shared<const std::string>(
        absl::StrCat(R"({"id":")", id, R"(","version":)", version, "}"));
    u.spec.key = id;
    u.spec.key_final = final;
    auto d = Await<core::OrderDecision>(
        [&](auto done) { engine_->orders().Apply(std::move(u), std::move(done)); });
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : core::OrderDecision{};
  }
  // An idempotent publish of `channel` with `key`; `publishes` counts the publishes that ran.
  absl::StatusOr<core::IdempotencyStore::Result> Idempotent(const std::string& channel,
                                                            const std::string& key,
                                                            std::atomic<int>* publishes) {
    return Await<core::IdempotencyStore::Result>([&](auto done) {
      engine_->idempotency().Run(
          channel, key,
          [this, channel, publishes](core::Done<v1::ChannelDelivery> published) {
            ++*publishes;
            PublishSpec spec;
            spec.data_json = std::make_shared<const std::string>("1");
            broker().Publish(channel, std::move(spec),
                             [channel, published = std::move(published)](
                                 absl::StatusOr<StreamPosition> pos) mutable {
                               if (!pos.ok()) return published(pos.status());
                               v1::ChannelDelivery d;
                               d.set_channel(channel);
                               d.set_epoch(pos->epoch);
                               d.set_offset(pos->offset);
                               d.set_queued(3);
                               published(std::move(d));
                             });
          },
          std::move(done));
    });
  }

  static std::vector<uint64_t> Offsets(const std::vector<core::StoredPublication>& pubs) {
    std::vector<uint64_t> out;
    for (const auto& p : pubs) out.push_back(p.offset);
    return out;
  }

  // --- TaskStore helpers ---
  // The store's time: the test's clock, or (an engine with its own clock) the real one.
  absl::Time StoreNow() { return GetParam().fake_clock ? Now() : absl::Now(); }
  // Lets the store's time reach `t` and sweeps `store` (this node's by default), as every node's
  // tick does, until `done()`: the fake clock jumps to `t` for one sweep; with a real one, sweeps
  // every 10 ms until `done()` holds (at most kWait past `t`).
  template <typename Pred>
  void SweepUntil(absl::Time t, Pred done, core::TaskStore* store = nullptr) {
    if (store == nullptr) store = &tasks();
    if (GetParam().fake_clock) {
      Advance(t - Now());
      store->Sweep(Now());
      return;
    }
    const absl::Time give_up = t + kWait;
    while (!done() && absl::Now() < give_up) {
      store->Sweep(absl::Now());
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  // Another node on this engine's shared state (GetParam().make_peer), its task notices recorded
  // in `events`; null (and the test skipped) for a single-node engine.
  std::unique_ptr<core::Engine> Peer(const std::string& node, RecordingTaskHandler* events) {
    if (!GetParam().make_peer) {
      [] { GTEST_SKIP() << "a single-node engine"; }();
      return nullptr;
    }
    std::unique_ptr<core::Engine> peer = GetParam().make_peer(MakeLimits(), node);
    if (peer != nullptr) peer->tasks().SetEventHandler(events);
    return peer;
  }
  std::string Holder(const std::string& connection) {
    return absl::StrCat(GetParam().node, "/", connection);
  }
  core::TaskStore& tasks() { return engine_->tasks(); }
  absl::StatusOr<core::Enqueued> Enqueue(const std::string& queue, const std::string& data,
                                         std::string offer_to = "",
                                         absl::Duration ack_deadline = absl::Seconds(30),
                                         absl::Duration ttl = absl::Minutes(10)) {
    core::TaskSpec spec{std::make_shared<const std::string>(data), ack_deadline, ttl};
    return Await<core::Enqueued>([&](auto done) {
      tasks().Enqueue(queue, std::move(spec), std::move(offer_to), std::move(done));
    });
  }
  std::vector<core::Lease> Lease(const std::string& queue, std::vector<std::string> holders) {
    auto r = Await<std::vector<core::Lease>>(
        [&](auto done) { tasks().Lease(queue, std::move(holders), std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<core::Lease>{};
  }
  // Ack (or, with `release`, Release) through the interface; the status it completes with.
  absl::Status Finish(const core::Lease& lease, const std::string& holder, bool release = false) {
    struct Ok {};
    auto r = Await<Ok>([&](auto done) {
      core::StatusDone status_done = [done = std::move(done)](absl::Status st) mutable {
        if (st.ok()) return done(Ok{});
        done(st);
      };
      if (release) {
        tasks().Release(lease.delivery_id, holder, std::move(status_done));
      } else {
        tasks().Ack(lease.delivery_id, holder, std::move(status_done));
      }
    });
    return r.status();
  }
  std::vector<core::QueueState> Queues() {
    auto r =
        Await<std::vector<core::QueueState>>([&](auto done) { tasks().List(std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<core::QueueState>{};
  }
  core::QueueState Queue(const std::string& name) {
    for (core::QueueState& q : Queues()) {
      if (q.queue == name) return q;
    }
    ADD_FAILURE() << "no queue " << name;
    return {};
  }

  RecordingHandler handler_;
  RecordingTaskHandler task_events_;
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = absl::FromUnixSeconds(1000000);
  std::unique_ptr<core::Engine> engine_;
};

// --- Broker ------------------------------------------------------------------------------------

TEST_P(Conformance, OffsetsIncreasePerChannelWithOneEpoch) {
  StreamPosition a1 = Pub("a", "1"), a2 = Pub("a", "2"), b1 = Pub("b", "1");
  EXPECT_EQ(a1.offset, 1u);
  EXPECT_EQ(a2.offset, 2u);
  EXPECT_EQ(b1.offset, 1u);
  EXPECT_EQ(a1.epoch, a2.epoch);
  EXPECT_NE(a1.epoch, b1.epoch);
}

TEST_P(Conformance, PublicationsReachTheHandlerOnlyWhileTheNodeIsSubscribed) {
  Pub("a", "before");
  Subscribe("a");
  Subscribe("a");  // counted: two local subscribers
  Pub("a", "1");
  broker().Unsubscribe("a");
  Pub("a", "2");  // one subscriber left
  EXPECT_THAT(handler_.Data("a", 2), ElementsAre("1", "2"));
  broker().Unsubscribe("a");
  Pub("a", "3");
  Pub("b", "other channel");
  Subscribe("a");
  Pub("a", "4");
  EXPECT_THAT(handler_.Data("a", 3), ElementsAre("1", "2", "4"));
  EXPECT_THAT(handler_.Offsets("a"), ElementsAre(2, 3, 5));
  EXPECT_TRUE(handler_.Offsets("b").empty());
}

TEST_P(Conformance, ConcurrentPublishersAreHandledInOffsetOrderOneAtATime) {
  Subscribe("hot");
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) Pub("hot", "x");
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint64_t> offsets = handler_.Offsets("hot", kThreads * kEach);
  ASSERT_EQ(offsets.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < offsets.size(); ++i) EXPECT_EQ(offsets[i], i + 1);
  EXPECT_FALSE(handler_.violated());
}

TEST_P(Conformance, RecoverReturnsExactlyTheMissedPublications) {
  StreamPosition p;
  for (int i = 1; i <= 4; ++i) p = Pub("a", std::to_string(i));
  JoinResult r = Join("a", StreamPosition{p.epoch, 2});
  EXPECT_TRUE(r.recovered);
  EXPECT_THAT(Offsets(r.missed), ElementsAre(3, 4));
  EXPECT_EQ(*r.missed[0].data_json, "3");
  EXPECT_EQ(r.position.offset, 4u);
  EXPECT_EQ(r.position.epoch, p.epoch);

  r = Join("a", StreamPosition{p.epoch, 4});  // up to date
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.missed.empty());
  r = Join("fresh", std::nullopt);  // a channel never published to
  EXPECT_EQ(r.position.offset, 0u);
  EXPECT_FALSE(r.position.epoch.empty());
}

// A publication that asked its subscribers to ack it asks again when recovered or in a snapshot:
// a client that missed it still acks it.
TEST_P(Conformance, RecoveredAndSnapshotPublicationsKeepTheirAckRequest) {
  Pub("s", R"({"v":1})", "o1", /*final=*/false, /*ack=*/true);
  Pub("s", R"({"v":1})", "o2");
  const StreamPosition p = Pub("s", R"("plain")", "", false, /*ack=*/true);
  JoinResult r = Join("s", StreamPosition{p.epoch, 0}, /*snapshot=*/true);
  ASSERT_TRUE(r.recovered);
  ASSERT_EQ(r.missed.size(), 3u);
  EXPECT_TRUE(r.missed[0].ack_requested);
  EXPECT_FALSE(r.missed[1].ack_requested);
  EXPECT_TRUE(r.missed[2].ack_requested);
  EXPECT_EQ(*r.missed[0].data_json, R"({"v":1})");
  EXPECT_EQ(*r.missed[2].data_json, R"("plain")");
  ASSERT_EQ(r.snapshot.size(), 2u);
  EXPECT_TRUE(r.snapshot[0].ack_requested);
  EXPECT_EQ(*r.snapshot[0].data_json, R"({"v":1})");
  EXPECT_FALSE(r.snapshot[1].ack_requested);
}

TEST_P(Conformance, RecoverFailsWhenHistoryNoLongerCoversTheGap) {
  StreamPosition p;
  for (int i = 1; i <= 8; ++i) p = Pub("a", std::to_string(i));  // keeps 4..8
  EXPECT_FALSE(Join("a", StreamPosition{p.epoch, 2}).recovered);
  JoinResult r = Join("a", StreamPosition{p.epoch, 3});  // needs 4..8: all retained
  EXPECT_TRUE(r.recovered);
  EXPECT_THAT(Offsets(r.missed), ElementsAre(4, 5, 6, 7, 8));
  EXPECT_FALSE(Join("a", StreamPosition{"other-epoch", 7}).recovered);
  EXPECT_FALSE(Join("a", StreamPosition{p.epoch, 9}).recovered);  // from the future
}

TEST_P(Conformance, HistoryExpiresByTtlAndPrefixPoliciesApply) {
  if (SkipWithoutFakeClock()) return;
  StreamPosition p = Pub("a", "1");
  Advance(absl::Seconds(30));
  Pub("a", "2");
  Advance(absl::Seconds(31));  // the first is now 61 s old
  EXPECT_FALSE(Join("a", StreamPosition{p.epoch, 0}).recovered);
  JoinResult r = Join("a", StreamPosition{p.epoch, 1});
  EXPECT_TRUE(r.recovered);
  EXPECT_THAT(Offsets(r.missed), ElementsAre(2));

  for (int i = 0; i < 20; ++i) Pub("big:x", "v");
  EXPECT_EQ(History("big:x", 0, 1000, false).publications.size(), 20u);
  Pub("none:x", "v");
  EXPECT_TRUE(History("none:x", 0, 1000, false).publications.empty());
}

TEST_P(Conformance, HistorySinceLimitAndReverse) {
  for (int i = 1; i <= 5; ++i) Pub("a", std::to_string(i));
  EXPECT_THAT(Offsets(History("a", 2, 10, false).publications), ElementsAre(3, 4, 5));
  EXPECT_THAT(Offsets(History("a", 0, 2, false).publications), ElementsAre(1, 2));
  EXPECT_THAT(Offsets(History("a", 0, 2, true).publications), ElementsAre(5, 4));
  EXPECT_EQ(History("a", 0, 2, true).position.offset, 5u);
}

TEST_P(Conformance, SnapshotKeepsLatestPerKeyAndDropsFinalKeysAfterRetention) {
  if (SkipWithoutFakeClock()) return;
  Pub("store:1", R"({"v":1})", "o1");
  Pub("store:1", R"({"v":1})", "o2");
  Pub("store:1", R"({"v":2})", "o1");
  Pub("store:1", R"({"v":3})", "o2", /*final=*/true);
  Pub("store:1", R"("not an order")");
  JoinResult r = Join("store:1", std::nullopt, /*snapshot=*/true);
  ASSERT_EQ(r.snapshot.size(), 2u);
  EXPECT_EQ(*r.snapshot[0].data_json, R"({"v":2})");  // oldest offset first
  EXPECT_EQ(r.snapshot[0].offset, 3u);
  EXPECT_EQ(*r.snapshot[1].data_json, R"({"v":3})");
  Advance(absl::Seconds(31));
  r = Join("store:1", std::nullopt, true);
  ASSERT_EQ(r.snapshot.size(), 1u);
  EXPECT_EQ(*r.snapshot[0].data_json, R"({"v":2})");
}

TEST_P(Conformance, IdleChannelsAreForgottenUnlessSubscribedAndTheEpochChanges) {
  if (SkipWithoutFakeClock()) return;
  StreamPosition old = Pub("a", "1");
  StreamPosition kept = Pub("kept", "1");
  Subscribe("kept");
  Advance(absl::Seconds(61));
  broker().Sweep(Now());
  StreamPosition fresh = Pub("a", "1");
  EXPECT_EQ(fresh.offset, 1u);
  EXPECT_NE(fresh.epoch, old.epoch);
  EXPECT_FALSE(Join("a", old).recovered);
  StreamPosition still = Pub("kept", "2");
  EXPECT_EQ(still.epoch, kept.epoch);
  EXPECT_EQ(still.offset, 2u);
}

// --- OrderStore --------------------------------------------------------------------------------

TEST_P(Conformance, OrdersApplyOnlyNewerVersionsAndPublishToEveryChannel) {
  Subscribe("orders");
  Subscribe("store:1");
  core::OrderDecision d = Apply("o1", 2);
  EXPECT_TRUE(d.applied);
  EXPECT_EQ(d.latest_version, 2u);
  ASSERT_EQ(d.positions.size(), 2u);
  EXPECT_EQ(d.positions[0].offset, 1u);
  d = Apply("o1", 2);
  EXPECT_FALSE(d.applied);
  EXPECT_EQ(d.latest_version, 2u);
  EXPECT_TRUE(d.positions.empty());
  EXPECT_FALSE(Apply("o1", 1).applied);
  EXPECT_TRUE(Apply("o1", 10).applied);
  EXPECT_TRUE(Apply("o2", 1).applied);
  EXPECT_EQ(engine_->orders().TrackedOrders(), 2u);
  EXPECT_THAT(handler_.Data("store:1", 3),
              ElementsAre(R"({"id":"o1","version":2})", R"({"id":"o1","version":10})",
                          R"({"id":"o2","version":1})"));
  // The snapshot holds the latest applied version of each order.
  JoinResult r = Join("orders", std::nullopt, /*snapshot=*/true);
  ASSERT_EQ(r.snapshot.size(), 2u);
  EXPECT_EQ(*r.snapshot[0].data_json, R"({"id":"o1","version":10})");
}

TEST_P(Conformance, ConcurrentVersionsOfAnOrderAreNeverDeliveredOlderAfterNewer) {
  Subscribe("orders");
  Subscribe("store:1");
  constexpr int kThreads = 4, kVersions = 400;
  std::atomic<uint64_t> next{0};
  std::atomic<size_t> applied{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (uint64_t v; (v = ++next) <= kVersions;) applied += Apply("race", v).applied ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  for (const char* channel : {"orders", "store:1"}) {
    // Delivery may trail the completions (a distributed broker delivers through its bus).
    std::vector<std::string> seen = handler_.Data(channel, applied);
    uint64_t last = 0;
    for (const std::string& data : seen) {
      const uint64_t v = std::stoull(data.substr(data.rfind(':') + 1));
      EXPECT_GT(v, last) << channel << ": version " << v << " after " << last;
      last = v;
    }
    EXPECT_EQ(last, static_cast<uint64_t>(kVersions)) << channel;
  }
  EXPECT_FALSE(handler_.violated());
}

TEST_P(Conformance, EndedOrdersAreForgottenAfterTheirRetention) {
  if (SkipWithoutFakeClock()) return;
  Apply("done", 5, /*final=*/true);
  Apply("open", 1);
  Advance(absl::Seconds(29));
  engine_->orders().Sweep(Now());
  EXPECT_EQ(engine_->orders().TrackedOrders(), 2u);
  EXPECT_FALSE(Apply("done", 4).applied);
  Advance(absl::Seconds(2));
  engine_->orders().Sweep(Now());
  EXPECT_EQ(engine_->orders().TrackedOrders(), 1u);
  EXPECT_TRUE(Apply("done", 1).applied);  // a new order with a reused id
}

// --- IdempotencyStore --------------------------------------------------------------------------

TEST_P(Conformance, ARepeatedKeyGetsTheFirstDeliveryWithoutPublishing) {
  std::atomic<int> publishes{0};
  auto first = Idempotent("a", "k1", &publishes);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->delivery.queued(), 3u);
  auto again = Idempotent("a", "k1", &publishes);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->delivery.offset(), first->delivery.offset());
  EXPECT_EQ(again->delivery.epoch(), first->delivery.epoch());
  EXPECT_EQ(again->delivery.queued(), 0u);
  EXPECT_EQ(publishes, 1);
  // Keys are per channel.
  EXPECT_FALSE(Idempotent("b", "k1", &publishes)->duplicate);
  EXPECT_EQ(publishes, 2);
}

TEST_P(Conformance, AKeyPublishesAgainAfterTheWindow) {
  if (SkipWithoutFakeClock()) return;
  std::atomic<int> publishes{0};
  ASSERT_TRUE(Idempotent("a", "k", &publishes).ok());
  Advance(absl::Seconds(59));
  engine_->idempotency().Sweep(Now());
  EXPECT_TRUE(Idempotent("a", "k", &publishes)->duplicate);
  Advance(absl::Seconds(2));
  engine_->idempotency().Sweep(Now());
  EXPECT_FALSE(Idempotent("a", "k", &publishes)->duplicate);
  EXPECT_EQ(publishes, 2);
}

TEST_P(Conformance, AFailedPublishIsNotRemembered) {
  auto failed = Await<core::IdempotencyStore::Result>([&](auto done) {
    engine_->idempotency().Run(
        "a", "k",
        [](core::Done<v1::ChannelDelivery> published) {
          published(absl::UnavailableError("broker down"));
        },
        std::move(done));
  });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  std::atomic<int> publishes{0};
  EXPECT_FALSE(Idempotent("a", "k", &publishes)->duplicate);
  EXPECT_EQ(publishes, 1);
}

TEST_P(Conformance, ARepeatWhileTheFirstIsRunningGetsItsResultWithoutWaitingOnAThread) {
  core::Done<v1::ChannelDelivery> pending;
  absl::Notification first_started, first_done;
  std::optional<absl::StatusOr<core::IdempotencyStore::Result>> first, repeat;
  engine_->idempotency().Run(
      "a", "k",
      [&](core::Done<v1::ChannelDelivery> published) {
        pending = std::move(published);
        first_started.Notify();
      },
      [&](absl::StatusOr<core::IdempotencyStore::Result> r) {
        first = std::move(r);
        first_done.Notify();
      });
  // The engine may start the publish later, on its own thread (after claiming the key in Redis).
  ASSERT_TRUE(first_started.WaitForNotificationWithTimeout(kWait));
  absl::Notification repeat_done;
  engine_->idempotency().Run(
      "a", "k", [](core::Done<v1::ChannelDelivery>) { ADD_FAILURE() << "published twice"; },
      [&](absl::StatusOr<core::IdempotencyStore::Result> r) {
        repeat = std::move(r);
        repeat_done.Notify();
      });
  // Run() returned for both with nothing finished: the repeat is parked, not waiting.
  ASSERT_TRUE(pending != nullptr);
  EXPECT_FALSE(repeat_done.HasBeenNotified());
  v1::ChannelDelivery d;
  d.set_channel("a");
  d.set_offset(7);
  d.set_queued(2);
  pending(d);
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(repeat_done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(first->ok() && repeat->ok());
  EXPECT_FALSE((*first)->duplicate);
  EXPECT_TRUE((*repeat)->duplicate);
  EXPECT_EQ((*repeat)->delivery.offset(), 7u);
  EXPECT_EQ((*repeat)->delivery.queued(), 0u);
}

// --- PresenceRegistry --------------------------------------------------------------------------

TEST_P(Conformance, PresenceListsClientsByConnectionIdAndCountsDistinctUsers) {
  core::PresenceRegistry& presence = engine_->presence();
  auto add = [&](const std::string& channel, const std::string& id, const std::string& user) {
    v1::ClientInfo c;
    c.set_connection_id(id);
    c.set_user(user);
    c.set_node("n1");
    struct Ok {};
    auto st = Await<Ok>([&](auto done) {
      presence.Add(channel, c, [done = std::move(done)](absl::Status s) mutable {
        if (s.ok()) return done(Ok{});
        done(s);
      });
    });
    ASSERT_TRUE(st.ok()) << st.status();
  };
  auto get = [&](const std::string& channel) {
    std::vector<std::string> ids;
    auto r = Await<std::vector<v1::ClientInfo>>(
        [&](auto done) { presence.Get(channel, std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      for (const auto& c : *r) ids.push_back(absl::StrCat(c.connection_id(), "/", c.user()));
    }
    return ids;
  };
  auto count = [&](const std::string& channel) {
    auto r = Await<core::PresenceRegistry::Counts>(
        [&](auto done) { presence.Count(channel, std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::make_pair(r->connections, r->users) : std::make_pair(0u, 0u);
  };
  add("chat:1", "n1-3", "bob");
  add("chat:1", "n1-1", "alice");
  add("chat:1", "n2-2", "alice");  // a second tab
  add("chat:1", "n1-4", "");       // anonymous
  add("chat:2", "n1-1", "alice");
  add("chat:1", "n1-1", "alice");  // again: replaces
  EXPECT_THAT(get("chat:1"), ElementsAre("n1-1/alice", "n1-3/bob", "n1-4/", "n2-2/alice"));
  EXPECT_EQ(count("chat:1"), std::make_pair(4u, 2u));
  struct Ok {};
  ASSERT_TRUE(Await<Ok>([&](auto done) {
                presence.Remove("chat:1", "n2-2",
                                [done = std::move(done)](absl::Status) mutable { done(Ok{}); });
              }).ok());
  presence.Remove("chat:1", "never-there", [](absl::Status st) { EXPECT_TRUE(st.ok()); });
  EXPECT_THAT(get("chat:1"), ElementsAre("n1-1/alice", "n1-3/bob", "n1-4/"));
  EXPECT_EQ(count("chat:1"), std::make_pair(3u, 2u));
  EXPECT_THAT(get("chat:2"), ElementsAre("n1-1/alice"));
  EXPECT_TRUE(get("empty").empty());
  EXPECT_EQ(count("empty"), std::make_pair(0u, 0u));
}

// --- TaskStore ---------------------------------------------------------------------------------

TEST_P(Conformance, ATaskWaitsIsLeasedOnceAndAckedByItsHolderOnly) {
  auto t = Enqueue("q", R"({"pickup":"store 42"})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->task_id.empty());
  EXPECT_FALSE(t->lease.has_value());
  EXPECT_EQ(t->waiting, 1u);
  EXPECT_GE(task_events_.Waiting("q", 1), 1u);
  std::vector<core::Lease> leases = Lease("q", {Holder("c1"), Holder("c1")});
  ASSERT_EQ(leases.size(), 1u);  // one task waited
  const core::Lease& l = leases[0];
  EXPECT_EQ(l.queue, "q");
  EXPECT_EQ(l.task_id, t->task_id);
  EXPECT_FALSE(l.delivery_id.empty());
  EXPECT_EQ(l.attempt, 1u);
  EXPECT_EQ(l.holder, Holder("c1"));
  EXPECT_TRUE(l.previous_holder.empty());
  ASSERT_NE(l.data_json, nullptr);
  EXPECT_EQ(*l.data_json, R"({"pickup":"store 42"})");
  EXPECT_EQ(l.ack_deadline, absl::Seconds(30));
  EXPECT_TRUE(Lease("q", {Holder("c2")}).empty());
  EXPECT_EQ(Finish(l, Holder("c2")).code(), absl::StatusCode::kNotFound);  // not its lease
  EXPECT_TRUE(Finish(l, Holder("c1")).ok());
  EXPECT_EQ(Finish(l, Holder("c1")).code(), absl::StatusCode::kNotFound);  // acked already
  EXPECT_EQ(Finish(l, Holder("c1"), /*release=*/true).code(), absl::StatusCode::kNotFound);
  core::QueueState q = Queue("q");
  EXPECT_EQ(q.dispatched, 1u);
  EXPECT_EQ(q.acked, 1u);
  EXPECT_EQ(q.waiting, 0u);
  EXPECT_TRUE(q.leased.empty());
}

TEST_P(Conformance, AnOfferedTaskIsLeasedAtOnceOnlyWhenNoneWaitsAndTasksLeaveInOrder) {
  auto a = Enqueue("q", "1", Holder("c1"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->lease.has_value());
  EXPECT_EQ(a->lease->holder, Holder("c1"));
  EXPECT_EQ(a->lease->attempt, 1u);
  EXPECT_EQ(a->lease->task_id, a->task_id);
  EXPECT_EQ(a->waiting, 0u);
  auto b = Enqueue("q", "2");
  auto c = Enqueue("q", "3", Holder("c1"));  // "2" waits: "3" goes behind it
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_FALSE(c->lease.has_value());
  EXPECT_EQ(c->waiting, 2u);
  std::vector<core::Lease> leases = Lease("q", {Holder("c2"), Holder("c2"), Holder("c2")});
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(*leases[0].data_json, "2");
  EXPECT_EQ(*leases[1].data_json, "3");
  EXPECT_NE(leases[0].delivery_id, leases[1].delivery_id);
  EXPECT_TRUE(Finish(*a->lease, Holder("c1")).ok());
}

TEST_P(Conformance, AReleasedTaskGoesBackToTheFrontAndPrefersAnotherHolder) {
  ASSERT_TRUE(Enqueue("q", "a").ok());
  ASSERT_TRUE(Enqueue("q", "b").ok());
  std::vector<core::Lease> first = Lease("q", {Holder("c1")});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(*first[0].data_json, "a");
  const size_t announced = task_events_.Waiting("q");
  EXPECT_TRUE(Finish(first[0], Holder("c1"), /*release=*/true).ok());  // a nack
  EXPECT_GE(task_events_.Waiting("q", announced + 1), announced + 1);
  EXPECT_EQ(Queue("q").redelivered, 1u);
  EXPECT_EQ(Queue("q").waiting, 2u);
  // c1 first in the list, but "a" was just c1's: it goes to c2, and "b" to c1.
  std::vector<core::Lease> again = Lease("q", {Holder("c1"), Holder("c2")});
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(*again[0].data_json, "a");
  EXPECT_EQ(again[0].task_id, first[0].task_id);
  EXPECT_EQ(again[0].attempt, 2u);
  EXPECT_EQ(again[0].holder, Holder("c2"));
  EXPECT_EQ(again[0].previous_holder, Holder("c1"));
  EXPECT_NE(again[0].delivery_id, first[0].delivery_id);
  EXPECT_EQ(*again[1].data_json, "b");
  EXPECT_EQ(again[1].holder, Holder("c1"));
  // The old delivery counts no more; with only its last holder asking, a task still goes to it.
  EXPECT_EQ(Finish(first[0], Holder("c1")).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Finish(again[0], Holder("c2"), /*release=*/true).ok());
  std::vector<core::Lease> third = Lease("q", {Holder("c2")});
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].attempt, 3u);
  EXPECT_EQ(third[0].holder, Holder("c2"));
}

TEST_P(Conformance, ALeasePastItsDeadlineIsRedeliveredWithTheNextAttempt) {
  ASSERT_TRUE(Enqueue("q", "x", "", absl::Seconds(1), absl::Seconds(60)).ok());
  task_events_.Waiting("q", 1);  // the enqueue's announcement (with a remote store, later)
  const absl::Time before = StoreNow();
  std::vector<core::Lease> first = Lease("q", {Holder("c1")});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].ack_deadline, absl::Seconds(1));
  if (GetParam().fake_clock) {
    EXPECT_EQ(first[0].deadline, Now() + absl::Seconds(1));
    Advance(absl::Milliseconds(999));
  } else {  // whole milliseconds
    EXPECT_GE(first[0].deadline, before + absl::Seconds(1) - absl::Milliseconds(1));
    EXPECT_LE(first[0].deadline, StoreNow() + absl::Seconds(1));
  }
  tasks().Sweep(StoreNow());
  EXPECT_TRUE(task_events_.TimedOut().empty());
  EXPECT_TRUE(Lease("q", {Holder("c2")}).empty());
  const size_t announced = task_events_.Waiting("q");
  SweepUntil(first[0].deadline + absl::Milliseconds(1),
             [&] { return !task_events_.TimedOut().empty(); });
  auto timed_out = task_events_.TimedOut(1);
  ASSERT_EQ(timed_out.size(), 1u);
  EXPECT_EQ(timed_out[0].second, core::TaskTimeout::kAckDeadline);
  EXPECT_EQ(timed_out[0].first.delivery_id, first[0].delivery_id);
  EXPECT_EQ(timed_out[0].first.holder, Holder("c1"));
  EXPECT_EQ(timed_out[0].first.deadline, first[0].deadline);
  EXPECT_FALSE(task_events_.early());
  EXPECT_EQ(task_events_.Waiting("q", announced + 1), announced + 1);
  EXPECT_EQ(Finish(first[0], Holder("c1")).code(), absl::StatusCode::kNotFound);  // too late
  std::vector<core::Lease> second = Lease("q", {Holder("c1"), Holder("c2")});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2u);
  EXPECT_EQ(second[0].holder, Holder("c2"));
  EXPECT_EQ(second[0].previous_holder, Holder("c1"));
  EXPECT_EQ(Queue("q").redelivered, 1u);
  EXPECT_TRUE(Finish(second[0], Holder("c2")).ok());
}

TEST_P(Conformance, TasksExpireAfterTheirTtlWaitingOrLeased) {
  auto leased = Enqueue("q", "leased", Holder("c1"), absl::Seconds(30), absl::Milliseconds(500));
  ASSERT_TRUE(leased.ok() && leased->lease.has_value());
  // The TTL cuts the delivery's time short.
  EXPECT_EQ(leased->lease->ack_deadline, absl::Milliseconds(500));
  auto waiting = Enqueue("q", "waiting", "", absl::Seconds(30), absl::Milliseconds(500));
  ASSERT_TRUE(waiting.ok());
  ASSERT_TRUE(Enqueue("q", "later", "", absl::Seconds(30), absl::Seconds(60)).ok());
  SweepUntil(leased->lease->deadline + absl::Milliseconds(1),
             [&] { return task_events_.TimedOut().size() >= 2; });
  auto timed_out = task_events_.TimedOut(2);
  ASSERT_EQ(timed_out.size(), 2u);
  int with_holder = 0;
  for (const auto& [lease, why] : timed_out) {
    EXPECT_EQ(why, core::TaskTimeout::kTtl);
    if (lease.holder == Holder("c1")) {
      ++with_holder;
      EXPECT_EQ(lease.delivery_id, leased->lease->delivery_id);
    } else {
      EXPECT_EQ(lease.task_id, waiting->task_id);  // expired while waiting: never delivered
      EXPECT_TRUE(lease.holder.empty());
      EXPECT_EQ(lease.attempt, 0u);
    }
  }
  EXPECT_EQ(with_holder, 1);
  EXPECT_EQ(Finish(*leased->lease, Holder("c1")).code(), absl::StatusCode::kNotFound);
  core::QueueState q = Queue("q");
  EXPECT_EQ(q.expired, 2u);
  EXPECT_EQ(q.waiting, 1u);
  EXPECT_TRUE(q.leased.empty());
  std::vector<core::Lease> rest = Lease("q", {Holder("c1"), Holder("c1")});
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(*rest[0].data_json, "later");
}

TEST_P(Conformance, AQueueHoldsAtMostMaxQueueDepthWaitingTasks) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Enqueue("q", absl::StrCat(i)).ok()) << i;
  auto over = Enqueue("q", "one too many", Holder("c1"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Enqueue("other", "x").ok());  // per queue
  core::QueueState q = Queue("q");
  EXPECT_EQ(q.waiting, 100u);
  EXPECT_EQ(q.dispatched, 100u);
  ASSERT_EQ(Lease("q", {Holder("c1")}).size(), 1u);
  EXPECT_TRUE(Enqueue("q", "fits again").ok());
}

TEST_P(Conformance, ConcurrentHoldersNeverLeaseTheSameTask) {
  constexpr int kProducers = 4, kEach = 25, kConsumers = 4;
  constexpr size_t kTotal = kProducers * kEach;
  absl::Mutex mu;
  absl::flat_hash_map<std::string, int> leased_times;  // by task id
  size_t leased_total = 0;
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        // Half of them offered to a holder, as a node with a free worker does.
        std::string offer = i % 2 == 0 ? Holder(absl::StrCat("p", p)) : "";
        auto t = Enqueue("hot", absl::StrCat(p, "-", i), offer);
        ASSERT_TRUE(t.ok()) << t.status();
        if (t->lease.has_value()) {
          absl::MutexLock lock(&mu);
          ++leased_times[t->lease->task_id];
          ++leased_total;
        }
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      const absl::Time give_up = absl::Now() + kWait;
      std::vector<std::string> holders(1 + c % 3, Holder(absl::StrCat("c", c)));
      while (absl::Now() < give_up) {
        {
          absl::MutexLock lock(&mu);
          if (leased_total >= kTotal) return;
        }
        std::vector<core::Lease> leases = Lease("hot", holders);
        absl::MutexLock lock(&mu);
        for (const core::Lease& l : leases) {
          ++leased_times[l.task_id];
          ++leased_total;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(leased_total, kTotal);
  EXPECT_EQ(leased_times.size(), kTotal);
  for (const auto& [id, times] : leased_times) EXPECT_EQ(times, 1) << id;
  core::QueueState q = Queue("hot");
  EXPECT_EQ(q.dispatched, kTotal);
  EXPECT_EQ(q.waiting, 0u);
  EXPECT_EQ(q.leased.size(), kTotal);
  absl::flat_hash_set<std::string> deliveries;
  for (const core::Lease& l : q.leased) deliveries.insert(l.delivery_id);
  EXPECT_EQ(deliveries.size(), kTotal);
}

TEST_P(Conformance, ListReportsEveryQueueByNameWithItsLeasesAndCounters) {
  ASSERT_TRUE(Enqueue("b", "1").ok());
  ASSERT_TRUE(Enqueue("a", "1").ok());
  ASSERT_TRUE(Enqueue("a", "2").ok());
  ASSERT_TRUE(Enqueue("a", "3").ok());
  std::vector<core::Lease> leases = Lease("a", {Holder("c1"), Holder("c2"), Holder("c1")});
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_TRUE(Finish(leases[0], Holder("c1")).ok());
  EXPECT_TRUE(Finish(leases[1], Holder("c2"), /*release=*/true).ok());
  std::vector<core::QueueState> queues = Queues();
  ASSERT_EQ(queues.size(), 2u);
  EXPECT_EQ(queues[0].queue, "a");
  EXPECT_EQ(queues[1].queue, "b");
  const core::QueueState& a = queues[0];
  EXPECT_EQ(a.dispatched, 3u);
  EXPECT_EQ(a.acked, 1u);
  EXPECT_EQ(a.redelivered, 1u);
  EXPECT_EQ(a.expired, 0u);
  EXPECT_EQ(a.waiting, 1u);
  ASSERT_EQ(a.leased.size(), 1u);
  EXPECT_EQ(a.leased[0].delivery_id, leases[2].delivery_id);
  EXPECT_EQ(a.leased[0].task_id, leases[2].task_id);
  EXPECT_EQ(a.leased[0].holder, Holder("c1"));
  EXPECT_EQ(a.leased[0].attempt, 1u);
  EXPECT_EQ(a.leased[0].deadline, leases[2].deadline);
  EXPECT_EQ(queues[1].waiting, 1u);
  EXPECT_EQ(queues[1].dispatched, 1u);
}

TEST_P(Conformance, OneSweepHandlesEverythingDueHoweverMany) {
  // More than one batch of a store that sweeps in batches; 100 at a time (the depth limit).
  constexpr size_t kTasks = 600;
  absl::Time last_deadline;
  for (size_t i = 0; i < kTasks; i += 100) {
    std::vector<std::string> holders;
    for (size_t j = i; j < i + 100; ++j) {
      ASSERT_TRUE(Enqueue("q", absl::StrCat(j), "", absl::Seconds(1), absl::Seconds(60)).ok());
      holders.push_back(Holder(absl::StrCat("c", j)));
    }
    std::vector<core::Lease> leases = Lease("q", holders);
    ASSERT_EQ(leases.size(), 100u);
    last_deadline = leases.back().deadline;
  }
  const absl::Time due = last_deadline + absl::Milliseconds(1);
  if (GetParam().fake_clock) {
    Advance(due - Now());
  } else {
    while (absl::Now() < due) absl::SleepFor(due - absl::Now());
  }
  tasks().Sweep(StoreNow());  // once
  EXPECT_EQ(task_events_.TimedOut(kTasks).size(), kTasks);
  core::QueueState q = Queue("q");
  EXPECT_EQ(q.waiting, kTasks);
  EXPECT_EQ(q.redelivered, kTasks);
  EXPECT_TRUE(q.leased.empty());
}

// --- TaskStore across nodes (engines whose state nodes share) -------------------------------

TEST_P(Conformance, TwoNodesNeverLeaseTheSameTaskAndEachHearsOfWaitingTasks) {
  RecordingTaskHandler peer_events;
  std::unique_ptr<core::Engine> peer = Peer("n2", &peer_events);
  if (peer == nullptr) return;
  const std::string peer_holder = "n2/c9";
  constexpr int kEach = 40;
  constexpr size_t kTotal = 2 * kEach;
  absl::Mutex mu;
  absl::flat_hash_map<std::string, int> leased_times;  // by task id
  size_t leased_total = 0;
  auto record = [&](const std::vector<core::Lease>& leases) {
    absl::MutexLock lock(&mu);
    for (const core::Lease& l : leases) {
      ++leased_times[l.task_id];
      ++leased_total;
    }
  };
  // Each node enqueues (every other task offered to its own worker) and leases for its own
  // workers, at once.
  auto node = [&](core::TaskStore* store, std::string holder) {
    for (int i = 0; i < kEach; ++i) {
      core::TaskSpec spec{std::make_shared<const std::string>(absl::StrCat(i)), absl::Seconds(30),
                          absl::Minutes(10)};
      auto t = Await<core::Enqueued>([&](auto done) {
        store->Enqueue("shared", std::move(spec), i % 2 == 0 ? holder : "", std::move(done));
      });
      ASSERT_TRUE(t.ok()) << t.status();
      if (t->lease.has_value()) record({*t->lease});
      auto leases = Await<std::vector<core::Lease>>([&](auto done) {
        store->Lease("shared", {holder, holder}, std::move(done));
      });
      ASSERT_TRUE(leases.ok()) << leases.status();
      record(*leases);
    }
    const absl::Time give_up = absl::Now() + kWait;
    while (absl::Now() < give_up) {
      {
        absl::MutexLock lock(&mu);
        if (leased_total >= kTotal) return;
      }
      auto leases = Await<std::vector<core::Lease>>(
          [&](auto done) { store->Lease("shared", {holder}, std::move(done)); });
      ASSERT_TRUE(leases.ok()) << leases.status();
      record(*leases);
    }
  };
  std::thread here(node, &tasks(), Holder("c1"));
  std::thread there(node, &peer->tasks(), peer_holder);
  here.join();
  there.join();
  EXPECT_EQ(leased_total, kTotal);
  EXPECT_EQ(leased_times.size(), kTotal);
  for (const auto& [id, times] : leased_times) EXPECT_EQ(times, 1) << id;
  // A task that waited was announced to both nodes.
  EXPECT_GE(task_events_.Waiting("shared", 1), 1u);
  EXPECT_GE(peer_events.Waiting("shared", 1), 1u);
  core::QueueState q = Queue("shared");
  EXPECT_EQ(q.dispatched, kTotal);
  EXPECT_EQ(q.leased.size(), kTotal);
}

TEST_P(Conformance, TheQueueDepthLimitHoldsAcrossNodes) {
  RecordingTaskHandler peer_events;
  std::unique_ptr<core::Engine> peer = Peer("n2", &peer_events);
  if (peer == nullptr) return;
  std::atomic<int> accepted{0}, refused{0};
  auto fill = [&](core::TaskStore* store) {
    for (int i = 0; i < 100; ++i) {  // MakeLimits: 100 per queue
      core::TaskSpec spec{std::make_shared<const std::string>("1"), absl::Seconds(30),
                          absl::Minutes(10)};
      auto t = Await<core::Enqueued>(
          [&](auto done) { store->Enqueue("q", std::move(spec), "", std::move(done)); });
      if (t.ok()) {
        ++accepted;
      } else if (t.status().code() == absl::StatusCode::kResourceExhausted) {
        ++refused;
      }
    }
  };
  std::thread here(fill, &tasks());
  std::thread there(fill, &peer->tasks());
  here.join();
  there.join();
  EXPECT_EQ(accepted.load(), 100);
  EXPECT_EQ(refused.load(), 100);
  EXPECT_EQ(Queue("q").waiting, 100u);
}

TEST_P(Conformance, ALeaseOfANodeThatVanishedIsRedeliveredToAnotherAfterItsDeadline) {
  RecordingTaskHandler peer_events;
  std::unique_ptr<core::Engine> peer = Peer("n2", &peer_events);
  if (peer == nullptr) return;
  ASSERT_TRUE(Enqueue("q", "x", "", absl::Seconds(1), absl::Seconds(60)).ok());
  auto leased = Await<std::vector<core::Lease>>(
      [&](auto done) { peer->tasks().Lease("q", {"n2/c1"}, std::move(done)); });
  ASSERT_TRUE(leased.ok() && leased->size() == 1u);
  const core::Lease first = (*leased)[0];
  task_events_.Waiting("q", 1);  // the enqueue's announcement
  peer.reset();                  // n2 is gone with its lease, before its deadline
  const size_t announced = task_events_.Waiting("q");
  SweepUntil(first.deadline + absl::Milliseconds(1),
             [&] { return task_events_.Waiting("q", 0) > announced; });
  EXPECT_GT(task_events_.Waiting("q", announced + 1), announced);  // the task is back
  EXPECT_GE(absl::Now(), first.deadline);
  // n2's lease is n2's to hear about, not this node's.
  EXPECT_TRUE(task_events_.TimedOut().empty());
  std::vector<core::Lease> again = Lease("q", {Holder("c2")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].task_id, first.task_id);
  EXPECT_EQ(again[0].attempt, 2u);
  EXPECT_EQ(again[0].previous_holder, "n2/c1");
  EXPECT_EQ(*again[0].data_json, "x");
  EXPECT_EQ(Finish(first, "n2/c1").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Finish(again[0], Holder("c2")).ok());
  EXPECT_EQ(Queue("q").redelivered, 1u);
}

TEST_P(Conformance, ATimeoutAnotherNodeFoundReachesTheHoldersNodeOnly) {
  RecordingTaskHandler peer_events;
  std::unique_ptr<core::Engine> peer = Peer("n2", &peer_events);
  if (peer == nullptr) return;
  ASSERT_TRUE(Enqueue("q", "x", "", absl::Seconds(1), absl::Seconds(60)).ok());
  auto leased = Await<std::vector<core::Lease>>(
      [&](auto done) { peer->tasks().Lease("q", {"n2/c1"}, std::move(done)); });
  ASSERT_TRUE(leased.ok() && leased->size() == 1u);
  const core::Lease first = (*leased)[0];
  // Only this node sweeps: it redelivers n2's lease, and tells n2 (not itself).
  task_events_.Waiting("q", 1);
  const size_t announced = task_events_.Waiting("q");
  SweepUntil(first.deadline + absl::Milliseconds(1),
             [&] { return task_events_.Waiting("q", 0) > announced; });
  EXPECT_GT(task_events_.Waiting("q", announced + 1), announced);
  EXPECT_TRUE(task_events_.TimedOut().empty());
  EXPECT_TRUE(peer_events.TimedOut(0, absl::ZeroDuration()).empty());  // not before n2 sweeps
  SweepUntil(
      StoreNow(), [&] { return !peer_events.TimedOut(0, absl::ZeroDuration()).empty(); },
      &peer->tasks());
  auto timed_out = peer_events.TimedOut(1);
  ASSERT_EQ(timed_out.size(), 1u);
  EXPECT_EQ(timed_out[0].second, core::TaskTimeout::kAckDeadline);
  EXPECT_EQ(timed_out[0].first.delivery_id, first.delivery_id);
  EXPECT_EQ(timed_out[0].first.holder, "n2/c1");
  EXPECT_TRUE(task_events_.TimedOut().empty());
  EXPECT_FALSE(peer_events.early());
}

// --- ControlBus --------------------------------------------------------------------------------

// Answers a survey with its name (when it has one), the method and the request it got, later
// when `defer` (on another thread); records the events other nodes share with it.
class EchoHandler : public core::ControlHandler {
 public:
  EchoHandler() = default;
  explicit EchoHandler(std::string name) : name_(std::move(name)) {}

  void HandleSurvey(const std::string& method, const std::string& request,
                    core::Done<std::string> done) override {
    if (method == "Fail") return done(absl::NotFoundError("not here"));
    std::string reply = absl::StrCat(name_, name_.empty() ? "" : "/", method, ":", request);
    if (!defer) return done(std::move(reply));
    std::thread([done = std::move(done), reply = std::move(reply)]() mutable {
      done(std::move(reply));
    }).detach();
  }
  void HandleEvent(const std::string& event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  // Waits (bounded) until `n` events arrived; returns them all.
  std::vector<std::string> Events(size_t n = 0) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return events_;
  }

  bool defer = false;

 private:
  const std::string name_;
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

// The answers of a survey from `bus`, sorted (replies in no particular order otherwise); errors
// as "error: <message>".
struct Surveyed {
  std::vector<std::string> replies;
  int missing = -1;
};
Surveyed SurveyFrom(core::ControlBus& bus, absl::Duration timeout = absl::Seconds(2)) {
  auto answers = Await<core::ControlBus::Answers>(
      [&](auto done) { bus.Survey("ListConnections", "q", timeout, std::move(done)); });
  EXPECT_TRUE(answers.ok()) << answers.status();
  Surveyed out;
  if (!answers.ok()) return out;
  for (const auto& r : answers->replies) {
    out.replies.push_back(r.ok() ? *r : absl::StrCat("error: ", r.status().message()));
  }
  std::sort(out.replies.begin(), out.replies.end());
  out.missing = answers->missing;
  return out;
}

TEST_P(Conformance, ASurveyReachesThisNodesHandlerAndBringsItsAnswerBack) {
  EchoHandler handler;
  engine_->control().SetHandler(&handler);
  for (bool defer : {false, true}) {
    handler.defer = defer;
    auto answers = Await<core::ControlBus::Answers>([&](auto done) {
      engine_->control().Survey("ListConnections", "req-bytes", absl::Seconds(2), std::move(done));
    });
    ASSERT_TRUE(answers.ok()) << answers.status();
    ASSERT_EQ(answers->replies.size(), 1u);  // one node: this one
    ASSERT_TRUE(answers->replies[0].ok());
    EXPECT_EQ(*answers->replies[0], "ListConnections:req-bytes");
    EXPECT_EQ(answers->missing, 0);
  }
  auto failed = Await<core::ControlBus::Answers>(
      [&](auto done) { engine_->control().Survey("Fail", "", absl::Seconds(2), std::move(done)); });
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->replies.size(), 1u);
  EXPECT_EQ(failed->replies[0].status().code(), absl::StatusCode::kNotFound);
}

TEST_P(Conformance, AttachingAWatcherCompletesAndOneNodeHasNoOtherWatchers) {
  EchoHandler handler;
  engine_->control().SetHandler(&handler);
  absl::Notification attached;
  engine_->control().AttachWatcher([&] { attached.Notify(); });
  EXPECT_TRUE(attached.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(engine_->control().OthersWatch());  // only this node watches
  engine_->control().DetachWatcher();
}

// --- Across nodes (engines whose instances share state: EngineUnderTest::make_peer) ----------

class Cluster : public Conformance {
 protected:
  void SetUp() override {
    if (!GetParam().make_peer) GTEST_SKIP() << "one-node engine";
    Conformance::SetUp();
    engine_->control().SetHandler(&n1_);
  }
  // The engine goes before its handler does.
  void TearDown() override { engine_.reset(); }
  std::unique_ptr<core::Engine> PeerNode(const std::string& node, EchoHandler* handler) {
    std::unique_ptr<core::Engine> peer = GetParam().make_peer(MakeLimits(), node);
    peer->control().SetHandler(handler);
    return peer;
  }
  void AddPresence(core::Engine& engine, const std::string& channel, const std::string& id,
                   const std::string& user, const std::string& node) {
    v1::ClientInfo c;
    c.set_connection_id(id);
    c.set_user(user);
    c.set_node(node);
    struct Ok {};
    auto st = Await<Ok>([&](auto done) {
      engine.presence().Add(channel, c, [done = std::move(done)](absl::Status s) mutable {
        if (s.ok()) return done(Ok{});
        done(s);
      });
    });
    ASSERT_TRUE(st.ok()) << st.status();
  }
  // "<connection>@<node>" of the channel's presence, as `engine` reads it.
  static std::vector<std::string> Present(core::Engine& engine, const std::string& channel) {
    std::vector<std::string> out;
    auto r = Await<std::vector<v1::ClientInfo>>(
        [&](auto done) { engine.presence().Get(channel, std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      for (const auto& c : *r) out.push_back(absl::StrCat(c.connection_id(), "@", c.node()));
    }
    return out;
  }
  static uint32_t Connections(core::Engine& engine, const std::string& channel) {
    auto r = Await<core::PresenceRegistry::Counts>(
        [&](auto done) { engine.presence().Count(channel, std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->connections : 0;
  }
  // Polls `condition` until it holds or `timeout` passes; how long that took (or nullopt).
  template <typename Fn>
  static std::optional<absl::Duration> Within(absl::Duration timeout, Fn condition) {
    const absl::Time start = absl::Now();
    while (!condition()) {
      if (absl::Now() - start > timeout) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::Now() - start;
  }

  EchoHandler n1_{"n1"};
};

TEST_P(Cluster, ASurveyReachesEveryLiveNodeAndEachAnswersOnce) {
  EchoHandler n2("n2"), n3("n3");
  auto b = PeerNode("n2", &n2);
  auto c = PeerNode("n3", &n3);
  n3.defer = true;
  for (core::Engine* asker : {engine_.get(), b.get(), c.get()}) {
    Surveyed s = SurveyFrom(asker->control());
    EXPECT_THAT(s.replies, ElementsAre("n1/ListConnections:q", "n2/ListConnections:q",
                                       "n3/ListConnections:q"));
    EXPECT_EQ(s.missing, 0);
  }
  // A node that leaves is gone at once: neither answering nor missing.
  c.reset();
  Surveyed s = SurveyFrom(engine_->control());
  EXPECT_THAT(s.replies, ElementsAre("n1/ListConnections:q", "n2/ListConnections:q"));
  EXPECT_EQ(s.missing, 0);
}

TEST_P(Cluster, ANodeThatStopsIsMissingThenGoneWithinTheDeadNodeBound) {
  EchoHandler n2("n2");
  auto b = PeerNode("n2", &n2);
  ASSERT_EQ(SurveyFrom(engine_->control()).replies.size(), 2u);
  GetParam().kill(*b);
  const absl::Time killed = absl::Now();
  // Still live by its last heartbeat, but silent: missing.
  Surveyed s = SurveyFrom(engine_->control(), absl::Milliseconds(100));
  EXPECT_THAT(s.replies, ElementsAre("n1/ListConnections:q"));
  EXPECT_EQ(s.missing, 1);
  // Then gone: not missing any more, within the bound (plus a survey's time and some slack).
  const absl::Duration bound = GetParam().dead_node_bound;
  std::optional<absl::Duration> gone = Within(bound + absl::Seconds(2), [&] {
    return SurveyFrom(engine_->control(), absl::Milliseconds(100)).missing == 0;
  });
  ASSERT_TRUE(gone.has_value()) << "the dead node is still counted as missing";
  EXPECT_LE(absl::Now() - killed, bound + absl::Milliseconds(400));
  s = SurveyFrom(engine_->control(), absl::Milliseconds(100));
  EXPECT_THAT(s.replies, ElementsAre("n1/ListConnections:q"));
  EXPECT_EQ(s.missing, 0);
}

TEST_P(Cluster, PresenceCoversEveryNodeAndADeadNodesEntriesVanish) {
  EchoHandler n2("n2"), n3("n3");
  auto b = PeerNode("n2", &n2);
  auto c = PeerNode("n3", &n3);
  AddPresence(*engine_, "chat:1", "n1-1", "alice", "n1");
  AddPresence(*b, "chat:1", "n2-1", "alice", "n2");
  AddPresence(*b, "chat:1", "n2-2", "bob", "n2");
  AddPresence(*c, "chat:1", "n3-1", "carol", "n3");
  for (core::Engine* reader : {engine_.get(), b.get(), c.get()}) {
    EXPECT_THAT(Present(*reader, "chat:1"),
                ElementsAre("n1-1@n1", "n2-1@n2", "n2-2@n2", "n3-1@n3"));
  }
  auto counts = Await<core::PresenceRegistry::Counts>(
      [&](auto done) { engine_->presence().Count("chat:1", std::move(done)); });
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->connections, 4u);
  EXPECT_EQ(counts->users, 3u);

  // A node that leaves takes its entries along at once.
  c.reset();
  EXPECT_THAT(Present(*engine_, "chat:1"), ElementsAre("n1-1@n1", "n2-1@n2", "n2-2@n2"));
  // A node that dies: its entries vanish within the bound.
  GetParam().kill(*b);
  const absl::Time killed = absl::Now();
  std::optional<absl::Duration> gone = Within(GetParam().dead_node_bound + absl::Seconds(2), [&] {
    return Present(*engine_, "chat:1").size() == 1;
  });
  ASSERT_TRUE(gone.has_value()) << "the dead node's presence is still there";
  EXPECT_LE(absl::Now() - killed, GetParam().dead_node_bound + absl::Milliseconds(400));
  EXPECT_THAT(Present(*engine_, "chat:1"), ElementsAre("n1-1@n1"));
  EXPECT_EQ(Connections(*engine_, "chat:1"), 1u);
}

TEST_P(Cluster, EventsReachTheNodesThatWatchFromTheMomentTheirWatcherIsAttached) {
  EchoHandler n2("n2");
  auto b = PeerNode("n2", &n2);
  EXPECT_FALSE(b->control().OthersWatch());
  absl::Notification attached;
  engine_->control().AttachWatcher([&] { attached.Notify(); });
  ASSERT_TRUE(attached.WaitForNotificationWithTimeout(kWait));
  // Attached: every node shares its events with this one now.
  EXPECT_TRUE(b->control().OthersWatch());
  EXPECT_FALSE(engine_->control().OthersWatch());
  using Audience = core::ControlBus::EventAudience;
  b->control().ShareEvent("from-n2", Audience::kWatchers);
  EXPECT_THAT(n1_.Events(1), ElementsAre("from-n2"));
  // Events for watchers skip a node without any; the ones for every node reach it; a node never
  // gets its own (one publisher's events arrive in order, so "connect" comes after "watchers").
  engine_->control().ShareEvent("for-watchers", Audience::kWatchers);
  engine_->control().ShareEvent("connect", Audience::kEveryNode);
  EXPECT_THAT(n2.Events(1), ElementsAre("connect"));
  b->control().ShareEvent("connect-n2", Audience::kEveryNode);
  EXPECT_THAT(n1_.Events(2), ElementsAre("from-n2", "connect-n2"));
  // The last watcher gone: the others stop sharing (by their next heartbeats).
  engine_->control().DetachWatcher();
  EXPECT_TRUE(Within(GetParam().dead_node_bound + absl::Seconds(2), [&] {
                return !b->control().OthersWatch();
              }).has_value());
}

INSTANTIATE_TEST_SUITE_P(Engines, Cluster, ::testing::ValuesIn(EnginesUnderTest()),
                         [](const ::testing::TestParamInfo<EngineUnderTest>& info) {
                           return info.param.name;
                         });

INSTANTIATE_TEST_SUITE_P(Engines, Conformance, ::testing::ValuesIn(EnginesUnderTest()),
                         [](const ::testing::TestParamInfo<EngineUnderTest>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace herald::conformance
