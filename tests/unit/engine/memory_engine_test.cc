#include "server/engine/memory_engine.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::engine {
namespace {

using core::JoinResult;
using core::JoinSpec;
using core::PublishSpec;
using core::StreamPosition;

class MemoryEngineTest : public ::testing::Test {
 protected:
  MemoryEngineTest() : engine_(MakeLimits(), [this] { return now_; }) {}

  static core::Limits MakeLimits() {
    core::Limits l;
    l.history.size = 5;
    l.history.ttl = absl::Seconds(60);
    l.history_by_prefix.push_back({"big:", core::HistoryPolicy{50, absl::Seconds(600)}});
    l.history_by_prefix.push_back({"none:", core::HistoryPolicy{0, absl::Seconds(1)}});
    l.order_retention = absl::Seconds(30);
    return l;
  }

  StreamPosition Pub(const std::string& channel, const std::string& data,
                     const std::string& key = "", bool final = false) {
    PublishSpec spec{std::make_shared<const std::string>(data), key, final};
    auto pos = engine_.Publish(channel, spec, [](const StreamPosition&) {});
    EXPECT_TRUE(pos.ok());
    return *pos;
  }

  JoinResult Join(const std::string& channel, std::optional<StreamPosition> recover,
                  bool snapshot = false) {
    JoinResult out;
    engine_.Join(channel, JoinSpec{recover, snapshot}, [&](const JoinResult& r) { out = r; });
    return out;
  }

  static std::vector<uint64_t> Offsets(const std::vector<core::StoredPublication>& pubs) {
    std::vector<uint64_t> out;
    for (const auto& p : pubs) out.push_back(p.offset);
    return out;
  }

  absl::Time now_ = absl::FromUnixSeconds(1000000);
  MemoryEngine engine_;
};

TEST_F(MemoryEngineTest, OffsetsIncreasePerChannelWithOneEpoch) {
  StreamPosition a1 = Pub("a", "1"), a2 = Pub("a", "2"), b1 = Pub("b", "1");
  EXPECT_EQ(a1.offset, 1u);
  EXPECT_EQ(a2.offset, 2u);
  EXPECT_EQ(b1.offset, 1u);
  EXPECT_EQ(a1.epoch, a2.epoch);
  EXPECT_NE(a1.epoch, b1.epoch);
}

TEST_F(MemoryEngineTest, RecoverReturnsExactlyTheMissedPublications) {
  StreamPosition p;
  for (int i = 1; i <= 4; ++i) p = Pub("a", std::to_string(i));
  JoinResult r = Join("a", StreamPosition{p.epoch, 2});
  EXPECT_TRUE(r.recovered);
  EXPECT_THAT(Offsets(r.missed), ::testing::ElementsAre(3, 4));
  EXPECT_EQ(*r.missed[0].data_json, "3");
  EXPECT_EQ(r.position.offset, 4u);

  r = Join("a", StreamPosition{p.epoch, 4});  // up to date
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.missed.empty());
}

TEST_F(MemoryEngineTest, RecoverFailsWhenHistoryNoLongerCoversTheGap) {
  StreamPosition p;
  for (int i = 1; i <= 8; ++i) p = Pub("a", std::to_string(i));  // keeps 4..8
  EXPECT_FALSE(Join("a", StreamPosition{p.epoch, 2}).recovered);
  JoinResult r = Join("a", StreamPosition{p.epoch, 3});  // needs 4..8: all retained
  EXPECT_TRUE(r.recovered);
  EXPECT_THAT(Offsets(r.missed), ::testing::ElementsAre(4, 5, 6, 7, 8));
  EXPECT_FALSE(Join("a", StreamPosition{"other-epoch", 7}).recovered);
  EXPECT_FALSE(Join("a", StreamPosition{p.epoch, 9}).recovered);  // from the future
}

TEST_F(MemoryEngineTest, HistoryExpiresByTtlAndPrefixPoliciesApply) {
  StreamPosition p = Pub("a", "1");
  now_ += absl::Seconds(30);
  Pub("a", "2");
  now_ += absl::Seconds(31);  // the first is now 61 s old
  JoinResult r = Join("a", StreamPosition{p.epoch, 0});
  EXPECT_FALSE(r.recovered);
  r = Join("a", StreamPosition{p.epoch, 1});
  EXPECT_TRUE(r.recovered);
  EXPECT_THAT(Offsets(r.missed), ::testing::ElementsAre(2));

  for (int i = 0; i < 20; ++i) Pub("big:x", "v");
  EXPECT_EQ(engine_.History("big:x", 0, 1000, false).publications.size(), 20u);
  Pub("none:x", "v");
  EXPECT_TRUE(engine_.History("none:x", 0, 1000, false).publications.empty());
}

TEST_F(MemoryEngineTest, HistorySinceLimitAndReverse) {
  for (int i = 1; i <= 5; ++i) Pub("a", std::to_string(i));
  EXPECT_THAT(Offsets(engine_.History("a", 2, 10, false).publications),
              ::testing::ElementsAre(3, 4, 5));
  EXPECT_THAT(Offsets(engine_.History("a", 0, 2, false).publications),
              ::testing::ElementsAre(1, 2));
  EXPECT_THAT(Offsets(engine_.History("a", 0, 2, true).publications), ::testing::ElementsAre(5, 4));
  EXPECT_EQ(engine_.History("a", 0, 2, true).position.offset, 5u);
}

TEST_F(MemoryEngineTest, SnapshotKeepsLatestPerKeyAndDropsFinalKeysAfterRetention) {
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
  now_ += absl::Seconds(31);
  r = Join("store:1", std::nullopt, true);
  ASSERT_EQ(r.snapshot.size(), 1u);
  EXPECT_EQ(*r.snapshot[0].data_json, R"({"v":2})");
}

TEST_F(MemoryEngineTest, SweepForgetsIdleChannelsUnlessInUseAndTheEpochChanges) {
  StreamPosition old = Pub("a", "1");
  Pub("kept", "1");
  now_ += absl::Seconds(61);
  engine_.Sweep(now_, [](absl::string_view ch) { return ch == "kept"; });
  EXPECT_EQ(engine_.channel_count(), 1u);
  StreamPosition fresh = Pub("a", "1");
  EXPECT_EQ(fresh.offset, 1u);
  EXPECT_NE(fresh.epoch, old.epoch);
  EXPECT_FALSE(Join("a", old).recovered);
}

// `in_use` calls into the hub's channel index; it is asked with no engine lock held (a callback
// that comes back into the engine would deadlock otherwise), and a channel used meanwhile stays.
TEST_F(MemoryEngineTest, SweepAsksInUseWithNoEngineLockHeldAndVisitsOnlyDueChannels) {
  for (int i = 0; i < 100; ++i) Pub(absl::StrCat("c", i), "1");
  int asked = 0;
  now_ += absl::Seconds(30);
  engine_.Sweep(now_, [&](absl::string_view) { return ++asked, true; });
  EXPECT_EQ(asked, 0);  // nothing due before the TTL (60 s)
  now_ += absl::Seconds(31);
  engine_.Sweep(now_, [&](absl::string_view ch) {
    ++asked;
    engine_.History(ch, 0, 1, false);  // locks the channel: would deadlock under the lock
    return ch == "c7";
  });
  EXPECT_EQ(asked, 100);
  EXPECT_EQ(engine_.channel_count(), 1u);
  // The kept channel is not looked at again until its next check is due.
  asked = 0;
  now_ += absl::Seconds(1);
  engine_.Sweep(now_, [&](absl::string_view) { return ++asked, true; });
  EXPECT_EQ(asked, 0);
}

}  // namespace
}  // namespace herald::engine
