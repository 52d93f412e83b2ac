// The engine conformance suite (see engine_conformance.h): Broker, OrderStore and
// IdempotencyStore behaviour, through the interfaces, with completions awaited as a node would
// receive them (possibly later, on another thread).
#include "tests/conformance/engine_conformance.h"

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::conformance {
namespace {

using core::JoinResult;
using core::JoinSpec;
using core::PublishSpec;
using core::StreamPosition;
using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(5);

// Runs an operation that completes through a Done<T> and waits (bounded) for its result.
template <typename T, typename Start>
absl::StatusOr<T> Await(Start start) {
  struct State {
    absl::Notification done;
    std::optional<absl::StatusOr<T>> result;
  };
  auto state = std::make_shared<State>();
  start([state](absl::StatusOr<T> r) {
    state->result = std::move(r);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(kWait)) {
    return absl::DeadlineExceededError("no completion within 5 s");
  }
  return *std::move(state->result);
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

class Conformance : public ::testing::TestWithParam<EngineUnderTest> {
 protected:
  void SetUp() override {
    engine_ = GetParam().make(MakeLimits(), [this] { return Now(); });
    engine_->broker().SetEventHandler(&handler_);
  }

  static core::Limits MakeLimits() {
    core::Limits l;
    l.history.size = 5;
    l.history.ttl = absl::Seconds(60);
    l.history_by_prefix.push_back({"big:", core::HistoryPolicy{50, absl::Seconds(600)}});
    l.history_by_prefix.push_back({"none:", core::HistoryPolicy{0, absl::Seconds(1)}});
    l.order_retention = absl::Seconds(30);
    l.idempotency_window = absl::Seconds(60);
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
                     const std::string& key = "", bool final = false) {
    PublishSpec spec;
    spec.data_json = std::make_shared<const std::string>(data);
    spec.key = key;
    spec.key_final = final;
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

  RecordingHandler handler_;
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

INSTANTIATE_TEST_SUITE_P(Engines, Conformance, ::testing::ValuesIn(EnginesUnderTest()),
                         [](const ::testing::TestParamInfo<EngineUnderTest>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace herald::conformance
