// Two real `herald` nodes on one real redis-server (--engine redis): a publication accepted by
// one node reaches subscribers on the other with the same offsets, a client that moves to the
// other node recovers exactly what it missed, and the stale-version guard holds across nodes.
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

grpc::Status Publish(v1::Broker::Stub& stub, const std::string& channel, const std::string& json,
                     v1::PublishResponse* resp) {
  grpc::ClientContext ctx;
  v1::PublishRequest req;
  req.set_channel(channel);
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, req.mutable_data()).ok());
  return stub.Publish(&ctx, req, resp);
}

std::vector<uint64_t> Offsets(const std::vector<v1::ServerFrame>& pubs) {
  std::vector<uint64_t> out;
  for (const v1::ServerFrame& f : pubs) out.push_back(f.pub().offset());
  return out;
}

class RedisNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ok()) << "redis-server did not start";
    const std::vector<std::string> args = {"--engine",   "redis",          "--redis-url",
                                           redis_.url(), "--redis-prefix", "it"};
    a_ = std::make_unique<HeraldProcess>(args);
    b_ = std::make_unique<HeraldProcess>(args);
    ASSERT_TRUE(a_->ok() && b_->ok());
  }

  RedisServer redis_;
  std::unique_ptr<HeraldProcess> a_, b_;
};

TEST_F(RedisNodes, APublicationOnOneNodeReachesSubscribersOnTheOtherWithTheSameOffsets) {
  WsClient on_a, on_b;
  ASSERT_TRUE(on_a.Connect(a_->ws_url()));
  ASSERT_TRUE(on_b.Connect(b_->ws_url()));
  ASSERT_TRUE(on_a.Subscribe("news"));
  ASSERT_TRUE(on_b.Subscribe("news"));
  auto stub_a = a_->Stub();
  auto stub_b = b_->Stub();
  std::vector<uint64_t> accepted;
  for (int i = 1; i <= 5; ++i) {
    v1::PublishResponse resp;
    // Alternating nodes publish into the one stream.
    ASSERT_TRUE(
        Publish(i % 2 == 1 ? *stub_a : *stub_b, "news", absl::StrCat(R"({"n":)", i, "}"), &resp)
            .ok());
    accepted.push_back(resp.delivery().offset());
  }
  EXPECT_THAT(accepted, ::testing::ElementsAre(1, 2, 3, 4, 5));
  for (WsClient* ws : {&on_a, &on_b}) {
    ws->WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == 5; },
                  "offset 5");
    EXPECT_EQ(Offsets(ws->Publications()), accepted);
  }
}

TEST_F(RedisNodes, AClientMovedToTheOtherNodeRecoversWhatItMissed) {
  auto stub_a = a_->Stub();
  std::string epoch;
  uint64_t last = 0;
  {
    WsClient ws;
    ASSERT_TRUE(ws.Connect(a_->ws_url()));
    ws.Send(R"({"id":1,"subscribe":{"channel":"feed"}})");
    v1::ServerFrame subscribed = ws.WaitReply(1);
    ASSERT_TRUE(subscribed.has_subscribed());
    epoch = subscribed.subscribed().epoch();
    v1::PublishResponse resp;
    ASSERT_TRUE(Publish(*stub_a, "feed", R"({"n":1})", &resp).ok());
    ASSERT_TRUE(Publish(*stub_a, "feed", R"({"n":2})", &resp).ok());
    ws.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == 2; },
                 "offset 2");
    last = 2;
    ws.Close();
  }
  // Published while the client is away.
  for (int i = 3; i <= 5; ++i) {
    v1::PublishResponse resp;
    ASSERT_TRUE(Publish(*stub_a, "feed", absl::StrCat(R"({"n":)", i, "}"), &resp).ok());
  }
  WsClient ws;
  ASSERT_TRUE(ws.Connect(b_->ws_url()));
  ws.Send(absl::StrCat(R"({"id":1,"subscribe":{"channel":"feed","recover":{"epoch":")", epoch,
                       R"(","offset":")", last, R"("}}})"));
  v1::ServerFrame subscribed = ws.WaitReply(1);
  ASSERT_TRUE(subscribed.has_subscribed());
  EXPECT_TRUE(subscribed.subscribed().recovered());
  EXPECT_EQ(subscribed.subscribed().epoch(), epoch);
  std::vector<uint64_t> missed;
  for (const v1::Publication& p : subscribed.subscribed().publications()) {
    missed.push_back(p.offset());
  }
  EXPECT_THAT(missed, ::testing::ElementsAre(3, 4, 5));
  // And live again, from either node.
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*b_->Stub(), "feed", R"({"n":6})", &resp).ok());
  ws.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == 6; },
               "offset 6");
}

TEST_F(RedisNodes, AStaleOrderVersionIsRefusedOnTheOtherNode) {
  auto publish_order = [](v1::Broker::Stub& stub, uint64_t version) {
    grpc::ClientContext ctx;
    v1::PublishOrderRequest req;
    v1::Order* o = req.mutable_order();
    o->set_id("o-1");
    o->set_version(version);
    o->set_store_id("7");
    o->set_status(v1::ORDER_STATUS_PREPARING);
    v1::PublishOrderResponse resp;
    EXPECT_TRUE(stub.PublishOrder(&ctx, req, &resp).ok());
    return resp;
  };
  auto stub_a = a_->Stub();
  auto stub_b = b_->Stub();
  EXPECT_FALSE(publish_order(*stub_a, 5).stale());
  EXPECT_TRUE(publish_order(*stub_b, 4).stale());
  EXPECT_FALSE(publish_order(*stub_b, 6).stale());
}

// Waits (bounded) until `pred` holds; false on timeout.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

TEST_F(RedisNodes, WhileRedisIsDownHealthSaysSoAndPublishesFailThenBothRecover) {
  auto health = grpc::health::v1::Health::NewStub(a_->Channel());
  auto grpc_health = [&] {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckResponse resp;
    health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    return resp.status();
  };
  auto healthz = [&] {
    return Http({"GET", "http://" + a_->ws_address() + "/healthz", "", ""}).status;
  };
  EXPECT_EQ(healthz(), 200);
  EXPECT_EQ(grpc_health(), grpc::health::v1::HealthCheckResponse::SERVING);
  WsClient ws;
  ASSERT_TRUE(ws.Connect(a_->ws_url()));

  redis_.Stop();
  EXPECT_TRUE(Eventually([&] { return healthz() == 503; }));
  EXPECT_TRUE(Eventually(
      [&] { return grpc_health() == grpc::health::v1::HealthCheckResponse::NOT_SERVING; }));
  v1::PublishResponse resp;
  EXPECT_EQ(Publish(*a_->Stub(), "news", R"({"n":1})", &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(ws.open());  // local connections stay

  ASSERT_TRUE(redis_.Start());
  EXPECT_TRUE(Eventually([&] { return healthz() == 200; }));
  EXPECT_TRUE(
      Eventually([&] { return grpc_health() == grpc::health::v1::HealthCheckResponse::SERVING; }));
  EXPECT_TRUE(Publish(*a_->Stub(), "news", R"({"n":2})", &resp).ok());
}

}  // namespace
}  // namespace herald::testing
