// Many threads connecting, subscribing, publishing and disconnecting at once. Run under TSan in CI
// (scripts/test.sh). Checks that nothing is lost or reordered for a subscriber that stays, and
// that the indexes are empty once everyone has left.
#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/hub.h"
#include "server/engine/memory_engine.h"
#include "tests/support/test_hub.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::herald::testing::StringFrameFactory;
using ::herald::testing::TestHub;

TEST(ConcurrencyTest, ChurnWhilePublishing) {
  engine::MemoryEngine engine{Limits()};
  StringFrameFactory frames;
  TestHub hub(Limits(), "n", &engine, &frames);

  constexpr int kChannels = 4;
  // One steady subscriber per channel, present for the whole run.
  std::vector<std::shared_ptr<FakeSession>> steady;
  for (int c = 0; c < kChannels; ++c) {
    auto s = std::make_shared<FakeSession>(hub.NextConnectionId());
    ASSERT_TRUE(hub.Register(s).ok());
    hub.OnClientFrame(s, absl::StrCat(R"({"subscribe":{"channel":"ch)", c, R"("}})"));
    steady.push_back(s);
  }

  constexpr int kPublishers = 4, kChurners = 4, kPerPublisher = 300;
  std::atomic<int> publishers_done{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerPublisher; ++i) {
        v1::PublishRequest req;
        req.set_channel(absl::StrCat("ch", (p + i) % kChannels));
        req.mutable_data()->set_number_value(i);
        EXPECT_TRUE(hub.Publish(req).ok());
        if (i % 50 == 0) {
          v1::PublishOrderRequest order;
          order.mutable_order()->set_id(absl::StrCat("o", i % 7));
          order.mutable_order()->set_version(i + p + 1);
          order.mutable_order()->set_store_id("s");
          order.mutable_order()->set_status(v1::ORDER_STATUS_CREATED);
          EXPECT_TRUE(hub.PublishOrder(order).ok());
        }
      }
      publishers_done.fetch_add(1);
    });
  }
  for (int t = 0; t < kChurners; ++t) {
    threads.emplace_back([&, t] {
      int round = 0;
      while (publishers_done.load() < kPublishers || round < 20) {
        auto s = std::make_shared<FakeSession>(hub.NextConnectionId(), t % 2 ? "u" : "");
        EXPECT_TRUE(hub.Register(s).ok());
        for (int c = 0; c < kChannels; ++c) {
          hub.OnClientFrame(s, absl::StrCat(R"({"subscribe":{"channel":"ch)", c, R"("}})"));
        }
        hub.OnClientFrame(s, R"({"unsubscribe":{"channel":"ch0"}})");
        v1::ListConnectionsRequest list;
        list.set_channel("ch1");
        EXPECT_TRUE(hub.ListConnections(list).ok());
        EXPECT_TRUE(hub.Stats({}).ok());
        if (round % 3 == 0) {
          v1::DisconnectRequest d;
          d.set_connection_id(s->id());
          EXPECT_TRUE(hub.Disconnect(d).ok());
        }
        hub.Unregister(*s);
        ++round;
      }
    });
  }
  for (auto& t : threads) t.join();

  uint64_t total = 0;
  for (const auto& s : steady) {
    uint64_t last = 0;
    for (const v1::ServerFrame& f : s->OfKind(v1::ServerFrame::kPub)) {
      if (f.pub().channel().rfind("ch", 0) != 0) continue;
      EXPECT_EQ(f.pub().offset(), last + 1) << "gap or reorder on " << f.pub().channel();
      last = f.pub().offset();
      ++total;
    }
  }
  EXPECT_EQ(total, kPublishers * kPerPublisher);
  for (const auto& s : steady) hub.Unregister(*s);
  auto stats = hub.Stats({});
  EXPECT_EQ(stats->connections(), 0u);
  EXPECT_EQ(stats->subscriptions(), 0u);
  EXPECT_EQ(stats->channels(), 0u);
}

}  // namespace
}  // namespace herald::core
