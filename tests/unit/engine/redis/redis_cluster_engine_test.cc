// RedisEngine on a Redis Cluster of three masters (tests/support/redis_cluster.h): the whole
// engine conformance suite, then what the cluster adds — channels on different masters, sharded
// pub/sub (SPUBLISH, seen by SSUBSCRIBE on the channel's master and not by SUBSCRIBE), orders
// and tasks across nodes, the slot function against CLUSTER KEYSLOT.
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/redis/redis_engine.h"
#include "server/engine/redis/redis_slot.h"
#include "tests/conformance/engine_conformance.h"
#include "tests/support/background_process.h"
#include "tests/support/binary_scoped.h"
#include "tests/support/redis_cluster.h"
#include "tests/unit/engine/redis/redis_engine_test_support.h"

namespace herald {
namespace {

using testing::RedisClusterServers;

// One cluster for the whole binary, stopped at the end.
RedisClusterServers* Cluster() { return testing::BinaryScoped<RedisClusterServers>(); }

std::string FreshPrefix() {
  static std::atomic<int> n{0};
  return absl::StrCat("c", getpid(), "-", n.fetch_add(1));
}

std::unique_ptr<engine::RedisEngine> MakeEngine(const core::Limits& limits,
                                                const std::string& prefix,
                                                const std::string& node = "n1") {
  EXPECT_TRUE(Cluster()->ok()) << Cluster()->error();
  absl::StatusOr<engine::RedisOptions> options = engine::ParseRedisUrl(Cluster()->url());
  EXPECT_TRUE(options.ok()) << options.status();
  options->prefix = prefix;
  options->node = node;
  return testing::redis_engine::StartEngine(limits, *options);
}

}  // namespace

namespace conformance {

std::vector<EngineUnderTest> EnginesUnderTest() {
  return {testing::redis_engine::RedisEngineUnderTest("RedisCluster", FreshPrefix, MakeEngine)};
}

}  // namespace conformance

namespace engine {
namespace {

using ::testing::ElementsAre;
using testing::redis_engine::Await;
using testing::redis_engine::Eventually;
using testing::redis_engine::Recorder;
using testing::redis_engine::Subscribe;
using testing::redis_engine::TestLimits;

// Publishes as node "a", no ack asked for.
absl::StatusOr<core::StreamPosition> Publish(core::Engine& e, const std::string& channel,
                                             const std::string& data) {
  return testing::redis_engine::Publish(e, channel, data, /*ack_requested=*/false);
}

// Channels whose keys land on three different masters (their pub/sub channel's slot is the
// keys' slot: "<prefix>:{<channel>}:p").
std::vector<std::string> ChannelsOnEveryMaster(const std::string& prefix) {
  return Cluster()->ChannelsOnEveryMaster(prefix, "ch");
}

TEST(RedisSlot, MatchesClusterKeyslot) {
  ASSERT_TRUE(Cluster()->ok()) << Cluster()->error();
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 % kRedisSlots);  // the spec's CRC16 check value
  for (const std::string key :
       {"foo", "herald:{news}:m", "{herald}:nodes", "a{}b", "{}", "x{y", "p:{a}b}:h", "ü{é}"}) {
    EXPECT_EQ(KeySlot(key), Cluster()->KeySlot(key)) << key;
  }
  EXPECT_EQ(KeySlot("herald:{news}:m"), KeySlot("herald:{news}:p"));
  EXPECT_EQ(KeySlot(ClusterWideKey("herald", "nodes")), KeySlot("herald"));
}

// Two "nodes" on the cluster.
class TwoNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = FreshPrefix();
    a_ = MakeEngine(TestLimits(), prefix_, "a");
    b_ = MakeEngine(TestLimits(), prefix_, "b");
    a_->broker().SetEventHandler(&on_a_);
    b_->broker().SetEventHandler(&on_b_);
  }
  std::string prefix_;
  Recorder on_a_, on_b_;
  std::unique_ptr<RedisEngine> a_, b_;
};

TEST_F(TwoNodes, ChannelsOnEveryMasterReachTheOtherNodeInOrderWithTheSameOffsets) {
  const std::vector<std::string> channels = ChannelsOnEveryMaster(prefix_);
  ASSERT_EQ(channels.size(), 3u);
  for (const std::string& c : channels) {
    ASSERT_TRUE(Subscribe(*a_, c).ok());
    ASSERT_TRUE(Subscribe(*b_, c).ok());
  }
  for (int i = 1; i <= 5; ++i) {
    for (const std::string& c : channels) {
      auto pos = Publish(i % 2 == 1 ? *a_ : *b_, c, absl::StrCat(i));
      ASSERT_TRUE(pos.ok()) << pos.status();
      EXPECT_EQ(pos->offset, static_cast<uint64_t>(i));
    }
  }
  for (Recorder* r : {&on_a_, &on_b_}) {
    for (const std::string& c : channels) {
      std::vector<core::Publication> seen = r->Wait(c, 5);
      std::vector<uint64_t> offsets;
      for (const auto& p : seen) offsets.push_back(p.position.offset);
      EXPECT_THAT(offsets, ElementsAre(1, 2, 3, 4, 5)) << c;
    }
  }
  // And a node recovers what it missed from any channel's master.
  auto joined = Await<core::JoinResult>([&](auto done) {
    b_->broker().Join(channels[2], core::JoinSpec{on_a_.Wait(channels[2], 5)[1].position, false},
                      std::move(done));
  });
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_TRUE(joined->recovered);
  EXPECT_EQ(joined->missed.size(), 3u);
}

TEST_F(TwoNodes, PublicationsTravelBySpublishToTheChannelsMasterOnly) {
  const std::string channel = "sharded";
  const std::string pubsub = absl::StrCat(prefix_, ":{", channel, "}:p");
  const uint16_t owner = Cluster()->OwnerOf(pubsub);
  ASSERT_NE(owner, 0);
  // redis-cli in the background on the owner: one SSUBSCRIBE, one plain SUBSCRIBE.
  testing::BackgroundProcess ssub(
      {"/bin/sh", "-c", absl::StrCat("exec redis-cli -p ", owner, " SSUBSCRIBE '", pubsub, "'")});
  testing::BackgroundProcess sub(
      {"/bin/sh", "-c", absl::StrCat("exec redis-cli -p ", owner, " SUBSCRIBE '", pubsub, "'")});
  ASSERT_TRUE(Eventually([&] {
    return RedisClusterServers::Cli(owner, absl::StrCat("PUBSUB SHARDNUMSUB '", pubsub, "'")) ==
               absl::StrCat(pubsub, "\n1") &&
           RedisClusterServers::Cli(owner, absl::StrCat("PUBSUB NUMSUB '", pubsub, "'")) ==
               absl::StrCat(pubsub, "\n1");
  }));
  ASSERT_TRUE(Subscribe(*b_, channel).ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(Publish(*a_, channel, absl::StrCat("{\"n\":", i, "}")).ok());
  }
  ASSERT_EQ(on_b_.Wait(channel, 3).size(), 3u);
  EXPECT_TRUE(Eventually([&] { return ssub.Output().find("{\"n\":3}") != std::string::npos; }))
      << ssub.Output();
  EXPECT_NE(ssub.Output().find("smessage"), std::string::npos);
  // The plain subscriber heard nothing but its subscription's confirmation, and no other master
  // has the shard channel.
  EXPECT_EQ(sub.Output().find("{\"n\":"), std::string::npos) << sub.Output();
  for (uint16_t other : Cluster()->ports()) {
    if (other == owner) continue;
    EXPECT_EQ(RedisClusterServers::Cli(other, absl::StrCat("PUBSUB SHARDCHANNELS '", pubsub, "'")),
              "")
        << other;
  }
}

TEST_F(TwoNodes, ConcurrentVersionsOfAnOrderInChannelsOnTwoMastersAreNeverOutOfOrder) {
  const std::vector<std::string> channels = ChannelsOnEveryMaster(prefix_);
  ASSERT_EQ(channels.size(), 3u);
  const std::vector<std::string> order_channels = {channels[0], channels[1]};
  for (const std::string& c : order_channels) {
    ASSERT_TRUE(Subscribe(*a_, c).ok());
    ASSERT_TRUE(Subscribe(*b_, c).ok());
  }
  constexpr uint64_t kVersions = 200;
  std::atomic<uint64_t> next{0};
  std::atomic<int> stale{0};
  auto run = [&](RedisEngine* e) {
    for (uint64_t v; (v = ++next) <= kVersions;) {
      core::OrderUpdate u;
      u.order_id = "race";
      u.version = v;
      u.channels = order_channels;
      u.spec.key = "race";
      u.spec.data_json = std::make_shared<const std::string>(absl::StrCat(v));
      auto d = Await<core::OrderDecision>(
          [&](auto done) { e->orders().Apply(std::move(u), std::move(done)); });
      ASSERT_TRUE(d.ok()) << d.status();
      if (!d->applied) ++stale;
    }
  };
  std::thread t1(run, a_.get()), t2(run, b_.get());
  t1.join();
  t2.join();
  // The newest version reached every channel last; no older one after a newer anywhere.
  for (Recorder* r : {&on_a_, &on_b_}) {
    for (const std::string& c : order_channels) {
      std::vector<core::Publication> seen;
      ASSERT_TRUE(Eventually([&] {
        seen = r->Wait(c, 1);
        return !seen.empty() && *seen.back().spec.data_json == absl::StrCat(kVersions);
      }));
      uint64_t last = 0;
      for (const auto& p : seen) {
        const uint64_t v = std::stoull(*p.spec.data_json);
        EXPECT_GT(v, last) << c;
        last = v;
      }
    }
  }
  // A version at or below the latest is refused.
  core::OrderUpdate old;
  old.order_id = "race";
  old.version = 7;
  old.channels = order_channels;
  old.spec.data_json = std::make_shared<const std::string>("7");
  auto d = Await<core::OrderDecision>([&](auto done) { b_->orders().Apply(old, std::move(done)); });
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->applied);
  EXPECT_EQ(d->latest_version, kVersions);
}

// Moves `slot` from the master on `from` to the one on `to` as `redis-cli --cluster reshard`
// does: IMPORTING / MIGRATING, MIGRATE of its keys, then `between()` (the slot is migrating),
// then SETSLOT NODE on every master.
template <typename Between>
void MoveSlot(int slot, uint16_t from, uint16_t to, Between between) {
  const std::string from_id = RedisClusterServers::Cli(from, "CLUSTER MYID");
  const std::string to_id = RedisClusterServers::Cli(to, "CLUSTER MYID");
  EXPECT_EQ(
      RedisClusterServers::Cli(to, absl::StrCat("CLUSTER SETSLOT ", slot, " IMPORTING ", from_id)),
      "OK");
  EXPECT_EQ(
      RedisClusterServers::Cli(from, absl::StrCat("CLUSTER SETSLOT ", slot, " MIGRATING ", to_id)),
      "OK");
  const std::string keys =
      RedisClusterServers::Cli(from, absl::StrCat("CLUSTER GETKEYSINSLOT ", slot, " 100"));
  std::string quoted;
  for (absl::string_view key : absl::StrSplit(keys, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&quoted, " '", key, "'");
  }
  ASSERT_FALSE(quoted.empty());
  EXPECT_EQ(RedisClusterServers::Cli(
                from, absl::StrCat("MIGRATE 127.0.0.1 ", to, " \"\" 0 5000 KEYS", quoted)),
            "OK");
  between();
  for (uint16_t port : Cluster()->ports()) {
    EXPECT_EQ(
        RedisClusterServers::Cli(port, absl::StrCat("CLUSTER SETSLOT ", slot, " NODE ", to_id)),
        "OK");
  }
}

TEST_F(TwoNodes, AChannelWhoseSlotMovesKeepsItsStreamAndItsSubscribers) {
  const std::string channel = "moving";
  const std::string pubsub = absl::StrCat(prefix_, ":{", channel, "}:p");
  const int slot = Cluster()->KeySlot(pubsub);
  const uint16_t from = Cluster()->OwnerOf(pubsub);
  uint16_t to = 0;
  for (uint16_t port : Cluster()->ports()) {
    if (port != from) to = port;
  }
  ASSERT_TRUE(Subscribe(*b_, channel).ok());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(Publish(*a_, channel, absl::StrCat(i)).ok());
  ASSERT_EQ(on_b_.Wait(channel, 3).size(), 3u);
  // Mid-migration the old master answers ASK; the new one, after ASKING, TRYAGAIN (the script
  // names keys that do not exist yet): the publish retries until the slot has moved.
  std::optional<absl::StatusOr<core::StreamPosition>> mid;
  std::thread publisher;
  MoveSlot(slot, from, to, [&] {
    publisher = std::thread([&] { mid = Publish(*a_, channel, "4"); });
    absl::SleepFor(absl::Milliseconds(200));
  });
  publisher.join();
  ASSERT_TRUE(mid.has_value());
  ASSERT_TRUE(mid->ok()) << mid->status();
  EXPECT_EQ((*mid)->offset, 4u);
  // Moved: the old master answers MOVED; the publications keep their one stream.
  for (int i = 5; i <= 6; ++i) {
    auto pos = Publish(*a_, channel, absl::StrCat(i));
    ASSERT_TRUE(pos.ok()) << pos.status();
    EXPECT_EQ(pos->offset, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(Cluster()->OwnerOf(pubsub), to);
  // The subscriber followed the slot (Redis unsubscribed it from the old master) and got what
  // was published meanwhile from the history: no gap, no duplicate.
  std::vector<uint64_t> offsets;
  ASSERT_TRUE(Eventually([&] {
    offsets.clear();
    for (const auto& p : on_b_.Wait(channel, 6)) offsets.push_back(p.position.offset);
    return offsets.size() >= 6;
  })) << ::testing::PrintToString(offsets);
  EXPECT_THAT(offsets, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_EQ(RedisClusterServers::Cli(to, absl::StrCat("PUBSUB SHARDNUMSUB '", pubsub, "'")),
            absl::StrCat(pubsub, "\n1"));
  // And live again on the new master.
  ASSERT_TRUE(Publish(*b_, channel, "7").ok());
  EXPECT_EQ(on_b_.Wait(channel, 7).size(), 7u);
}

TEST(RedisClusterOptions, ParsesClusterUrls) {
  auto o = ParseRedisUrl("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->cluster);
  EXPECT_FALSE(o->tls);
  EXPECT_EQ(o->password, "pw");
  EXPECT_EQ(o->host, "10.0.0.1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_THAT(o->cluster_nodes, ElementsAre("10.0.0.1:7000", "10.0.0.2:7001", "[::1]:7002"));
  o = ParseRedisUrl("rediss+cluster://h:7000");
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->tls && o->cluster);
  EXPECT_FALSE(ParseRedisUrl("redis+cluster://h:7000/2").ok());  // database 0 only
  EXPECT_FALSE(ParseRedisUrl("redis+cluster://h:7000,").ok());
  EXPECT_FALSE(ParseRedisUrl("redis://h").value().cluster);
}

}  // namespace
}  // namespace engine
}  // namespace herald
