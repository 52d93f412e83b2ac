// Three real `herald` nodes on a Redis Cluster of three masters (--redis-url
// redis+cluster://…, tests/support/redis_cluster.h): publications accepted by one node reach
// subscribers on the others in order with the same offsets, for channels whose slots are on
// different masters; a client that moves to another node recovers what it missed; a stale order
// version is refused and never delivered after a newer one; a task dispatched on one node reaches
// a worker on another.
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/binary_scoped.h"
#include "tests/support/grpc_publish.h"
#include "tests/support/herald_process.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

// One cluster for the binary (forming one takes about a second), a key prefix per test.
RedisClusterServers* Cluster() { return BinaryScoped<RedisClusterServers>(); }

std::vector<uint64_t> Offsets(const WsClient& ws, const std::string& channel) {
  std::vector<uint64_t> out;
  for (const v1::ServerFrame& f : ws.Publications()) {
    if (f.pub().channel() == channel) out.push_back(f.pub().offset());
  }
  return out;
}

class ClusterNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Cluster()->ok()) << Cluster()->error();
    static int n = 0;
    prefix_ = absl::StrCat("ic", getpid(), "-", ++n);
    for (const char* name : {"na", "nb", "nc"}) {
      nodes_.push_back(std::make_unique<HeraldProcess>(
          std::vector<std::string>{"--engine", "redis", "--redis-url", Cluster()->url(),
                                   "--redis-prefix", prefix_, "--node", name}));
      ASSERT_TRUE(nodes_.back()->ok());
    }
  }

  // Channels whose slots (their keys' and shard channel's: "<prefix>:{<channel>}:…") are on
  // three different masters.
  std::vector<std::string> ChannelsOnEveryMaster() const {
    return Cluster()->ChannelsOnEveryMaster(prefix_, "news");
  }

  std::string prefix_;
  std::vector<std::unique_ptr<HeraldProcess>> nodes_;
};

TEST_F(ClusterNodes, PublicationsOnOneNodeReachTheOthersInOrderOnChannelsOfEveryMaster) {
  const std::vector<std::string> channels = ChannelsOnEveryMaster();
  ASSERT_EQ(channels.size(), 3u);
  WsClient on_b, on_c;
  ASSERT_TRUE(on_b.Connect(nodes_[1]->ws_url()));
  ASSERT_TRUE(on_c.Connect(nodes_[2]->ws_url()));
  uint32_t id = 0;
  for (const std::string& c : channels) {
    ++id;
    ASSERT_TRUE(on_b.Subscribe(c, id));
    ASSERT_TRUE(on_c.Subscribe(c, id));
  }
  auto stub_a = nodes_[0]->Stub();
  for (int i = 1; i <= 5; ++i) {
    for (const std::string& c : channels) {
      v1::PublishResponse resp;
      ASSERT_TRUE(Publish(*stub_a, c, absl::StrCat(R"({"n":)", i, "}"), &resp).ok());
      EXPECT_EQ(resp.delivery().offset(), static_cast<uint64_t>(i));
    }
  }
  for (WsClient* ws : {&on_b, &on_c}) {
    WaitFor(
        [&] {
          for (const std::string& c : channels) {
            if (Offsets(*ws, c).size() < 5) return false;
          }
          return true;
        },
        absl::Seconds(10));
    for (const std::string& c : channels) {
      EXPECT_THAT(Offsets(*ws, c), ::testing::ElementsAre(1, 2, 3, 4, 5)) << c;
    }
  }
}

TEST_F(ClusterNodes, AClientMovedToAnotherNodeRecoversWhatItMissed) {
  const std::string channel = ChannelsOnEveryMaster().back();
  auto stub_a = nodes_[0]->Stub();
  std::string epoch;
  {
    WsClient ws;
    ASSERT_TRUE(ws.Connect(nodes_[0]->ws_url()));
    ws.Send(absl::StrCat(R"({"id":1,"subscribe":{"channel":")", channel, R"("}})"));
    v1::ServerFrame subscribed = ws.WaitReply(1);
    ASSERT_TRUE(subscribed.has_subscribed());
    epoch = subscribed.subscribed().epoch();
    v1::PublishResponse resp;
    ASSERT_TRUE(Publish(*stub_a, channel, R"({"n":1})", &resp).ok());
    ASSERT_TRUE(Publish(*stub_a, channel, R"({"n":2})", &resp).ok());
    ws.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == 2; },
                 "offset 2");
    ws.Close();
  }
  for (int i = 3; i <= 5; ++i) {
    v1::PublishResponse resp;
    ASSERT_TRUE(Publish(*stub_a, channel, absl::StrCat(R"({"n":)", i, "}"), &resp).ok());
  }
  WsClient ws;
  ASSERT_TRUE(ws.Connect(nodes_[2]->ws_url()));
  ws.Send(absl::StrCat(R"({"id":1,"subscribe":{"channel":")", channel, R"(","recover":{"epoch":")",
                       epoch, R"(","offset":"2"}}})"));
  v1::ServerFrame subscribed = ws.WaitReply(1);
  ASSERT_TRUE(subscribed.has_subscribed());
  EXPECT_TRUE(subscribed.subscribed().recovered());
  std::vector<uint64_t> missed;
  for (const v1::Publication& p : subscribed.subscribed().publications()) {
    missed.push_back(p.offset());
  }
  EXPECT_THAT(missed, ::testing::ElementsAre(3, 4, 5));
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*nodes_[1]->Stub(), channel, R"({"n":6})", &resp).ok());
  ws.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == 6; },
               "offset 6");
}

TEST_F(ClusterNodes, AStaleOrderVersionIsRefusedAndNeverDeliveredAfterANewerOne) {
  // The order's channels: "orders", "store:<s>", "order:o-1"; a store whose channel is on
  // another master than "orders".
  auto owner = [&](const std::string& c) {
    return Cluster()->OwnerOf(absl::StrCat(prefix_, ":{", c, "}:p"));
  };
  std::string store;
  for (int s = 1; store.empty() && s < 100; ++s) {
    if (owner(absl::StrCat("store:", s)) != owner("orders")) store = absl::StrCat(s);
  }
  ASSERT_FALSE(store.empty());
  const std::string store_channel = absl::StrCat("store:", store);
  auto publish_order = [&store](v1::Broker::Stub& stub, uint64_t version) {
    grpc::ClientContext ctx;
    v1::PublishOrderRequest req;
    v1::Order* o = req.mutable_order();
    o->set_id("o-1");
    o->set_version(version);
    o->set_store_id(store);
    o->set_status(v1::ORDER_STATUS_PREPARING);
    v1::PublishOrderResponse resp;
    EXPECT_TRUE(stub.PublishOrder(&ctx, req, &resp).ok());
    return resp;
  };
  WsClient on_b, on_c;
  ASSERT_TRUE(on_b.Connect(nodes_[1]->ws_url()));
  ASSERT_TRUE(on_c.Connect(nodes_[2]->ws_url()));
  ASSERT_TRUE(on_b.Subscribe(store_channel, 1));
  ASSERT_TRUE(on_c.Subscribe("order:o-1", 1));
  ASSERT_TRUE(on_c.Subscribe("orders", 2));
  EXPECT_FALSE(publish_order(*nodes_[0]->Stub(), 5).stale());
  v1::PublishOrderResponse stale = publish_order(*nodes_[1]->Stub(), 4);
  EXPECT_TRUE(stale.stale());
  EXPECT_EQ(stale.latest_version(), 5u);
  EXPECT_FALSE(publish_order(*nodes_[2]->Stub(), 6).stale());
  auto versions = [](const WsClient& ws, const std::string& channel) {
    std::vector<std::string> out;
    for (const v1::ServerFrame& f : ws.Publications()) {
      if (f.pub().channel() == channel) {
        out.push_back(f.pub().data().struct_value().fields().at("version").string_value());
      }
    }
    return out;
  };
  for (const auto& [client, name] : std::vector<std::pair<WsClient*, std::string>>{
           {&on_b, store_channel}, {&on_c, "order:o-1"}, {&on_c, "orders"}}) {
    WsClient* ws = client;
    const std::string channel = name;
    WaitFor([&] { return versions(*ws, channel).size() >= 2; }, absl::Seconds(10));
    EXPECT_THAT(versions(*ws, channel), ::testing::ElementsAre("5", "6")) << channel;
  }
}

TEST_F(ClusterNodes, ATaskDispatchedOnOneNodeReachesAWorkerOnAnotherOnce) {
  WsClient worker;
  ASSERT_TRUE(worker.Connect(nodes_[2]->ws_url()));
  worker.Send(R"({"id":1,"join":{"queue":"jobs"}})");
  ASSERT_TRUE(worker.WaitReply(1).has_joined());
  grpc::ClientContext ctx;
  v1::DispatchTaskRequest req;
  req.set_queue("jobs");
  (*req.mutable_data()->mutable_struct_value()->mutable_fields())["n"].set_number_value(1);
  req.set_ack_deadline_ms(10000);
  v1::DispatchTaskResponse resp;
  ASSERT_TRUE(nodes_[0]->Stub()->DispatchTask(&ctx, req, &resp).ok());
  v1::ServerFrame task =
      worker.WaitFrame([](const v1::ServerFrame& f) { return f.has_task(); }, "the task");
  ASSERT_TRUE(task.has_task());
  worker.Send(
      absl::StrCat(R"({"id":2,"ack":{"deliveryId":")", task.task().delivery_id(), R"("}})"));
  EXPECT_TRUE(worker.WaitReply(2).has_acked());
  // Every node's ListQueues sees it acked once.
  for (auto& node : nodes_) {
    grpc::ClientContext list_ctx;
    v1::ListQueuesResponse queues;
    ASSERT_TRUE(node->Stub()->ListQueues(&list_ctx, v1::ListQueuesRequest(), &queues).ok());
    bool found = false;
    for (const v1::QueueInfo& q : queues.queues()) {
      if (q.queue() != "jobs") continue;
      found = true;
      EXPECT_EQ(q.acked(), 1u);
      EXPECT_EQ(q.waiting(), 0u);
    }
    EXPECT_TRUE(found);
  }
}

}  // namespace
}  // namespace herald::testing
