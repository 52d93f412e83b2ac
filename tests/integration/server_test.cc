// The real herald process, real WebSocket clients, real gRPC stubs.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/grpc_publish.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_http.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;

// gRPC health's status for `service`; -1 when the call fails (NOT_FOUND for an unknown name).
int HealthOf(HeraldProcess& herald, const std::string& service) {
  auto health = grpc::health::v1::Health::NewStub(herald.Channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  if (!health->Check(&ctx, req, &resp).ok()) return -1;
  return resp.status();
}

v1::Order MakeOrder(const std::string& id, uint64_t version, const std::string& store,
                    const std::string& customer) {
  v1::Order o;
  o.set_id(id);
  o.set_version(version);
  o.set_store_id(store);
  o.set_customer_id(customer);
  o.set_status(v1::ORDER_STATUS_ACCEPTED);
  o.mutable_total()->set_minor_units(990);
  o.mutable_total()->set_currency("EUR");
  return o;
}

grpc::Status PublishOrder(v1::Broker::Stub& stub, const v1::Order& order,
                          v1::PublishOrderResponse* resp, const std::string& key = "") {
  grpc::ClientContext ctx;
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  v1::PublishOrderRequest req;
  *req.mutable_order() = order;
  return stub.PublishOrder(&ctx, req, resp);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(herald_.ok()); }
  HeraldProcess herald_;
};

TEST_F(ServerTest, OrderReachesExactlyTheSubscribersOfItsChannels) {
  WsClient all, store, other_store, customer, order, unrelated;
  for (WsClient* c : {&all, &store, &other_store, &customer, &order, &unrelated}) {
    ASSERT_TRUE(c->Connect(herald_.ws_url()));
  }
  ASSERT_TRUE(all.Subscribe("orders"));
  ASSERT_TRUE(store.Subscribe("store:42"));
  ASSERT_TRUE(other_store.Subscribe("store:7"));
  ASSERT_TRUE(customer.Subscribe("customer:c9"));
  ASSERT_TRUE(order.Subscribe("order:o-1"));
  ASSERT_TRUE(unrelated.Subscribe("news"));

  auto stub = herald_.Stub();
  v1::PublishOrderResponse resp;
  ASSERT_TRUE(PublishOrder(*stub, MakeOrder("o-1", 1, "42", "c9"), &resp).ok());
  EXPECT_TRUE(resp.applied());
  EXPECT_EQ(resp.queued(), 4u);

  for (WsClient* c : {&all, &store, &customer, &order}) {
    v1::ServerFrame pub =
        c->WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "order publication");
    EXPECT_EQ(pub.pub().data().struct_value().fields().at("id").string_value(), "o-1");
    EXPECT_EQ(pub.pub().data().struct_value().fields().at("status").string_value(),
              "ORDER_STATUS_ACCEPTED");
  }
  // A marker publication to the bystanders proves they would have had the order by now.
  v1::PublishResponse marker;
  ASSERT_TRUE(Publish(*stub, "store:7", R"({"marker":true})", &marker).ok());
  ASSERT_TRUE(Publish(*stub, "news", R"({"marker":true})", &marker).ok());
  for (WsClient* c : {&other_store, &unrelated}) {
    v1::ServerFrame first =
        c->WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "marker publication");
    EXPECT_TRUE(first.pub().data().struct_value().fields().contains("marker"));
    EXPECT_EQ(c->Publications().size(), 1u);
  }
  EXPECT_EQ(all.Publications().size(), 1u);
}

TEST_F(ServerTest, StaleOrderVersionIsNotDelivered) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  ASSERT_TRUE(c.Subscribe("order:o-2"));
  auto stub = herald_.Stub();
  v1::PublishOrderResponse resp;
  ASSERT_TRUE(PublishOrder(*stub, MakeOrder("o-2", 3, "1", ""), &resp).ok());
  ASSERT_TRUE(PublishOrder(*stub, MakeOrder("o-2", 2, "1", ""), &resp).ok());
  EXPECT_FALSE(resp.applied());
  EXPECT_TRUE(resp.stale());
  EXPECT_EQ(resp.latest_version(), 3u);
  ASSERT_TRUE(PublishOrder(*stub, MakeOrder("o-2", 4, "1", ""), &resp).ok());
  EXPECT_TRUE(resp.applied());
  c.WaitFrame(
      [](const v1::ServerFrame& f) {
        return f.has_pub() &&
               f.pub().data().struct_value().fields().at("version").string_value() == "4";
      },
      "version 4");
  auto pubs = c.Publications();
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_EQ(pubs[0].pub().data().struct_value().fields().at("version").string_value(), "3");
  EXPECT_EQ(pubs[0].pub().offset() + 1, pubs[1].pub().offset());
}

TEST_F(ServerTest, ListAndGetConnectionShowTheRightFields) {
  WsClient a, b;
  ASSERT_TRUE(a.Connect(herald_.ws_url(),
                        {{"Origin", "https://shop.test"}, {"User-Agent", "itest-agent/2"}}));
  ASSERT_TRUE(b.Connect(herald_.ws_url()));
  ASSERT_TRUE(a.Subscribe("store:1", 1));
  ASSERT_TRUE(a.Subscribe("order:9", 2));
  auto stub = herald_.Stub();

  v1::ListConnectionsResponse list;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListConnections(&ctx, v1::ListConnectionsRequest(), &list).ok());
  }
  EXPECT_EQ(list.total(), 2u);
  ASSERT_EQ(list.connections_size(), 2);

  v1::ListConnectionsRequest by_channel;
  by_channel.set_channel("store:1");
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListConnections(&ctx, by_channel, &list).ok());
  }
  ASSERT_EQ(list.connections_size(), 1);
  const v1::Connection& c = list.connections(0);
  EXPECT_EQ(c.id(), a.connection_id());
  EXPECT_THAT(c.remote_address(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_EQ(c.origin(), "https://shop.test");
  EXPECT_EQ(c.user_agent(), "itest-agent/2");
  EXPECT_THAT(c.channels(), ::testing::ElementsAre("order:9", "store:1"));
  EXPECT_EQ(c.frames_in(), 2u);
  EXPECT_EQ(c.frames_out(), 3u);  // welcome + 2 subscribed
  EXPECT_GT(c.bytes_in(), 0u);
  EXPECT_GT(c.connected_at_ms(), 0);

  v1::GetConnectionRequest get;
  get.set_connection_id(b.connection_id());
  v1::Connection got;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->GetConnection(&ctx, get, &got).ok());
  EXPECT_EQ(got.id(), b.connection_id());
  EXPECT_TRUE(got.channels().empty());
}

TEST_F(ServerTest, DisconnectClosesWithTheGivenCodeAndReason) {
  WsClient a, b;
  ASSERT_TRUE(a.Connect(herald_.ws_url()));
  ASSERT_TRUE(b.Connect(herald_.ws_url()));
  auto stub = herald_.Stub();
  v1::DisconnectRequest req;
  req.set_connection_id(a.connection_id());
  req.set_code(4003);
  req.set_reason("kicked by operator");
  v1::DisconnectResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Disconnect(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.disconnected(), 1u);
  ASSERT_TRUE(a.WaitClosed());
  EXPECT_EQ(a.close_code(), 4003);
  EXPECT_EQ(a.close_reason(), "kicked by operator");
  EXPECT_TRUE(b.open());
  EXPECT_TRUE(WaitFor([&] {
    grpc::ClientContext c2;
    v1::StatsResponse stats;
    return stub->Stats(&c2, v1::StatsRequest(), &stats).ok() && stats.connections() == 1;
  }));
}

// Each kind of bad input gets its specified answer, and a bystander keeps receiving.
class BadInputTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    ASSERT_TRUE(bystander_.Connect(herald_.ws_url()));
    ASSERT_TRUE(bystander_.Subscribe("live"));
    stub_ = herald_.Stub();
  }
  void TearDown() override {
    // The bystander still gets a publication after the bad input.
    const std::string marker = absl::StrCat(R"({"n":)", ++published_, "}");
    v1::PublishResponse resp;
    ASSERT_TRUE(Publish(*stub_, "live", marker, &resp).ok());
    bystander_.WaitFrame(
        [&](const v1::ServerFrame& f) {
          return f.has_pub() && f.pub().offset() == static_cast<uint64_t>(published_);
        },
        "bystander publication");
    EXPECT_TRUE(bystander_.open());
  }
  WsClient bystander_;
  std::unique_ptr<v1::Broker::Stub> stub_;
  int published_ = 0;
};

TEST_F(BadInputTest, MalformedJsonGetsAnErrorFrame) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.Send("{\"id\":1,\"subscribe\":");
  v1::ServerFrame err =
      c.WaitFrame([](const v1::ServerFrame& f) { return f.has_error(); }, "error frame");
  EXPECT_EQ(err.error().code(), "INVALID_ARGUMENT");
  EXPECT_THAT(err.error().message(), HasSubstr("malformed frame"));
  EXPECT_TRUE(c.open());
  // Valid JSON that is not an object: said so, with where.
  c.Send(" [1,2]");
  err = c.WaitFrame(
      [](const v1::ServerFrame& f) {
        return f.has_error() && absl::StrContains(f.error().message(), "object");
      },
      "second error");
  EXPECT_EQ(err.error().message(), "malformed frame: not a JSON object at byte 1");
  EXPECT_TRUE(c.open());
}

TEST_F(BadInputTest, UnknownFrameGetsAnErrorReplyWithItsId) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.Send(R"({"id":77,"teleport":{"channel":"x"}})");  // (publish is a frame type now)
  v1::ServerFrame err = c.WaitReply(77);
  EXPECT_EQ(err.error().code(), "INVALID_ARGUMENT");
  EXPECT_THAT(err.error().message(), HasSubstr("unknown frame type"));
}

// protocol.md: without an `id` an ack that succeeds gets no reply at all, one that fails still
// gets its error frame, without an id. A ping with an id behind each marks where replies end.
TEST_F(BadInputTest, AnAckWithoutIdIsAnsweredOnlyWhenItFails) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  ASSERT_TRUE(c.Subscribe("acks", 1));
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*stub_, "acks", R"({"n":1})", &resp).ok());
  c.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
  const size_t before = c.Texts().size();
  c.Send(R"({"ack":{"channel":"acks","offset":"1"}})");
  c.Send(R"({"id":2,"ping":{}})");
  c.WaitReply(2);
  std::vector<std::string> texts = c.Texts();
  ASSERT_EQ(texts.size(), before + 1) << texts.back();
  EXPECT_EQ(texts.back(), R"({"id":2,"pong":{}})");

  c.Send(R"({"ack":{"deliveryId":"t9.1"}})");
  c.Send(R"({"id":3,"ping":{}})");
  c.WaitReply(3);
  texts = c.Texts();
  ASSERT_EQ(texts.size(), before + 3);
  EXPECT_EQ(texts[before + 1],
            R"x({"error":{"code":"NOT_FOUND","message":"ack.delivery_id: t9.1 is not a task this )x"
            R"x(connection holds (already acked, redelivered or expired)"}})x");
}

TEST_F(BadInputTest, InvalidChannelGetsAnErrorReply) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.Send(R"({"id":5,"subscribe":{"channel":"no spaces allowed"}})");
  v1::ServerFrame err = c.WaitReply(5);
  EXPECT_EQ(err.error().code(), "INVALID_ARGUMENT");
  EXPECT_THAT(err.error().message(), ::testing::StartsWith("subscribe.channel:"));
}

TEST_F(BadInputTest, OversizeFrameClosesWith1009) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.Send(std::string(70 * 1024, 'x'));  // default max_frame_bytes is 64 KiB
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 1009);
}

TEST_F(BadInputTest, InvalidUtf8ClosesWith1007) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.SendRawText("{\"id\":1,\"ping\":{}, \"x\":\"\xff\xfe\"}");
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 1007);
}

TEST_F(BadInputTest, BinaryFrameClosesWith1003) {
  WsClient c;
  ASSERT_TRUE(c.Connect(herald_.ws_url()));
  c.SendBinary(std::string("\x00\x01\x02", 3));
  ASSERT_TRUE(c.WaitClosed());
  EXPECT_EQ(c.close_code(), 1003);
  EXPECT_THAT(c.close_reason(), HasSubstr("binary"));
}

TEST_F(BadInputTest, WrongPathIsRefused) {
  WsClient c;
  EXPECT_FALSE(c.Connect("ws://" + herald_.ws_address() + "/nope"));
  EXPECT_EQ(c.http_status(), 404);
}

TEST_F(BadInputTest, InvalidGrpcRequestNamesTheField) {
  v1::PublishOrderResponse resp;
  v1::Order order = MakeOrder("o-1", 1, "", "");
  grpc::Status st = PublishOrder(*stub_, order, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), ::testing::StartsWith("order.store_id:"));
  v1::PublishResponse presp;
  st = Publish(*stub_, "bad channel", "1", &presp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), ::testing::StartsWith("channel:"));
}

TEST(OriginTest, ForbiddenOriginIsRefusedWith403) {
  HeraldProcess herald({"--allowed-origins", "https://shop.test, https://admin.test"});
  ASSERT_TRUE(herald.ok());
  WsClient ok, bad;
  EXPECT_TRUE(ok.Connect(herald.ws_url(), {{"Origin", "https://admin.test"}}));
  EXPECT_FALSE(bad.Connect(herald.ws_url(), {{"Origin", "https://evil.test"}}));
  EXPECT_EQ(bad.http_status(), 403);
  EXPECT_TRUE(ok.open());
}

TEST(ApiKeyTest, WrongOrMissingKeyIsUnauthenticated) {
  HeraldProcess herald({"--api-key", "s3cret"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  v1::PublishOrderResponse resp;
  v1::Order order = MakeOrder("o-1", 1, "42", "");
  grpc::Status st = PublishOrder(*stub, order, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("authorization"));
  st = PublishOrder(*stub, order, &resp, "wrong");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  st = PublishOrder(*stub, order, &resp, "s3cret");
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.applied());
  // Health stays reachable without the key, for load balancers.
  auto health = grpc::health::v1::Health::NewStub(herald.Channel());
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckResponse hresp;
  ASSERT_TRUE(health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &hresp).ok());
  EXPECT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  // Also by the service's name, as load balancers are often configured.
  EXPECT_EQ(HealthOf(herald, "herald.v1.Broker"), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(HealthOf(herald, "no.such.Service"), -1);
}

TEST(ShutdownTest, SigtermClosesClientsWith1001AndExitsZero) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  WsClient a, b;
  ASSERT_TRUE(a.Connect(herald.ws_url()));
  ASSERT_TRUE(b.Connect(herald.ws_url()));
  std::optional<int> code = herald.Stop(SIGTERM);
  ASSERT_TRUE(code.has_value()) << herald.Stderr();
  EXPECT_EQ(*code, 0);
  ASSERT_TRUE(a.WaitClosed());
  ASSERT_TRUE(b.WaitClosed());
  EXPECT_EQ(a.close_code(), 1001);
  EXPECT_EQ(b.close_reason(), "server shutting down");
  EXPECT_THAT(herald.Stderr(), HasSubstr("draining"));
}

constexpr char kHalfPublishBody[] = R"({"channel":"feed","data":"x"})";

// The first part of a WebSocket upgrade on `upgrade` and of a publish on `publish`.
void SendHalves(RawHttpConnection& upgrade, RawHttpConnection& publish) {
  const absl::string_view body = kHalfPublishBody;
  ASSERT_TRUE(upgrade.Send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"));
  ASSERT_TRUE(publish.Send(absl::StrCat("POST /api/v1/Publish HTTP/1.1\r\nHost: x\r\n",
                                        "Content-Type: application/json\r\nContent-Length: ",
                                        body.size(), "\r\n\r\n", body.substr(0, 10))));
}

// Their rest, and each answered 503 "draining" (the publish as UNAVAILABLE).
void FinishHalvesExpecting503(RawHttpConnection& upgrade, RawHttpConnection& publish) {
  ASSERT_TRUE(
      upgrade.Send("Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n"));
  std::optional<RawResponse> refused = upgrade.ReadResponse();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 503);
  EXPECT_THAT(refused->body, HasSubstr("draining"));
  ASSERT_TRUE(publish.Send(std::string(kHalfPublishBody).substr(10)));
  std::optional<RawResponse> unavailable = publish.ReadResponse();
  ASSERT_TRUE(unavailable.has_value());
  EXPECT_EQ(unavailable->status, 503);
  EXPECT_THAT(unavailable->body, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(unavailable->body, HasSubstr("draining"));
}

// Requests under way when a drain begins are read to their end and answered: a WebSocket upgrade
// is refused with 503, like a control call, not opened on a node that is going away, and a
// publish gets its 503 "draining", not a connection cut off mid-request.
TEST(ShutdownTest, RequestsUnderWayWhenADrainBeginsGet503) {
  // A client that never answers Herald's close holds the drain open for the close timeout.
  HeraldProcess herald({"--close-timeout-ms", "3000"});
  ASSERT_TRUE(herald.ok());
  RawWsClient silent;
  ASSERT_TRUE(silent.Connect(herald.ws_address()));
  // Two kept-alive connections (each served a request first, so herald holds them), each with
  // the start of a request herald has read when the drain begins.
  RawHttpConnection late(herald.ws_address());
  RawHttpConnection publish(herald.ws_address());
  for (RawHttpConnection* c : {&late, &publish}) {
    ASSERT_TRUE(c->ok());
    ASSERT_TRUE(c->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<RawResponse> healthy = c->ReadResponse();
    ASSERT_TRUE(healthy.has_value());
    EXPECT_EQ(healthy->status, 200);
  }
  ASSERT_NO_FATAL_FAILURE(SendHalves(late, publish));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(kill(herald.pid(), SIGTERM), 0);
  // The drain has begun when the held client receives its 1001.
  std::optional<RawWsClient::Frame> frame;
  while ((frame = silent.Read()).has_value() && frame->opcode != 8) {
  }
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->close_code, 1001);
  ASSERT_NO_FATAL_FAILURE(FinishHalvesExpecting503(late, publish));
  std::optional<int> code = herald.Stop(SIGTERM);
  ASSERT_TRUE(code.has_value()) << herald.Stderr();
  EXPECT_EQ(*code, 0);
}

// With no WebSocket client left to wait for, the requests under way still hold the drain until
// they are read to their end and answered (bounded by --drain-timeout): before, herald stopped
// 200 ms into the drain and the rest of such a request met a closed socket.
TEST(ShutdownTest, RequestsUnderWayHoldTheDrainWhenNoClientIsLeft) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  RawHttpConnection late(herald.ws_address());
  RawHttpConnection publish(herald.ws_address());
  ASSERT_TRUE(late.ok() && publish.ok());
  ASSERT_NO_FATAL_FAILURE(SendHalves(late, publish));
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_EQ(kill(herald.pid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(herald.Stderr(), "draining"); }));
  absl::SleepFor(absl::Milliseconds(700));
  for (const char* service : {"", "herald.v1.Broker"}) {
    EXPECT_EQ(HealthOf(herald, service), grpc::health::v1::HealthCheckResponse::NOT_SERVING)
        << service;
  }
  ASSERT_NO_FATAL_FAILURE(FinishHalvesExpecting503(late, publish));
  std::optional<int> code = herald.Stop(SIGTERM);
  ASSERT_TRUE(code.has_value()) << herald.Stderr();
  EXPECT_EQ(*code, 0);
}

// Calls that meet a drain are refused with UNAVAILABLE, which backends retry (elsewhere), never
// cut off with CANCELLED. Each publisher stops at its first refusal, as a client that moves to
// another node does.
TEST(ShutdownTest, CallsDuringADrainGetUnavailableNeverCancelled) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  std::atomic<int> ok{0};
  std::vector<grpc::Status> last(4);
  std::vector<std::thread> publishers;
  for (size_t i = 0; i < last.size(); ++i) {
    publishers.emplace_back([&, i] {
      for (;;) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::PublishRequest req;
        req.set_channel("feed");
        req.mutable_data()->set_string_value("x");
        v1::PublishResponse resp;
        grpc::Status st = stub->Publish(&ctx, req, &resp);
        if (!st.ok()) {
          last[i] = st;
          return;
        }
        ++ok;
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return ok.load() > 100; }));
  const absl::Time start = absl::Now();
  std::optional<int> code = herald.Stop(SIGTERM);
  // No clients left and callers gone: the drain does not sit out --drain-timeout (5 s here).
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  for (std::thread& t : publishers) t.join();
  ASSERT_TRUE(code.has_value()) << herald.Stderr();
  EXPECT_EQ(*code, 0);
  int draining = 0;
  for (const grpc::Status& st : last) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    if (absl::StrContains(st.error_message(), "draining")) ++draining;
  }
  EXPECT_GT(draining, 0);
}

TEST(StartupTest, BusyPortAndBadConfigExitNonZeroWithOneLine) {
  HeraldProcess first;
  ASSERT_TRUE(first.ok());
  CommandResult busy = RunCommand(
      {HeraldBinary(), "--ws-listen", first.ws_address(), "--grpc-listen", "127.0.0.1:0"});
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_THAT(busy.err, HasSubstr("--ws-listen"));
  EXPECT_EQ(std::count(busy.err.begin(), busy.err.end(), '\n'), 1) << busy.err;

  busy = RunCommand(
      {HeraldBinary(), "--ws-listen", "127.0.0.1:0", "--grpc-listen", first.grpc_address()});
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_THAT(busy.err, HasSubstr("--grpc-listen"));

  CommandResult bad = RunCommand({HeraldBinary(), "--ws-listen", "nonsense"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--ws-listen: expected HOST:PORT"));
  bad = RunCommand({HeraldBinary(), "--max-frame-bytes", "-5"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("max-frame-bytes"));
  bad = RunCommand({HeraldBinary(), "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  CommandResult help = RunCommand({HeraldBinary(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--grpc-listen"));
}

TEST(ConfigTest, ConfigFileAndEnvironmentApply) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/herald-test.toml");
  {
    std::ofstream f(path);
    f << "# herald config\nmax-subscriptions = 1\nnode = \"filenode\"\n";
  }
  HeraldProcess herald({"--config", path});
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  EXPECT_EQ(c.Frames()[0].welcome().node(), "filenode");
  EXPECT_EQ(c.Frames()[0].welcome().max_subscriptions(), 1u);
  ASSERT_TRUE(c.Subscribe("a", 1));
  c.Send(R"({"id":2,"subscribe":{"channel":"b"}})");
  EXPECT_EQ(c.WaitReply(2).error().code(), "RESOURCE_EXHAUSTED");
}

TEST(HttpTest, HealthzAnswersOnTheWebSocketPort) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  CommandResult r = RunCommand({"/usr/bin/curl", "-s", "-w", "\n%{http_code}",
                                "http://" + herald.ws_address() + "/healthz"});
  EXPECT_THAT(r.out, HasSubstr(R"("status":"ok")"));
  EXPECT_THAT(r.out, ::testing::EndsWith("200"));
  r = RunCommand({"/usr/bin/curl", "-s", "http://" + herald.ws_address() + "/metrics"});
  EXPECT_THAT(r.out, HasSubstr("herald_connections 0"));
}

// Each I/O thread listens on the WebSocket port with SO_REUSEPORT; a second server must still
// be refused that port rather than silently share it.
TEST(ListenTest, WebSocketPortInUseIsRefused) {
  HeraldProcess first;
  ASSERT_TRUE(first.ok());
  CommandResult second = RunCommand({HeraldBinary(), "--ws-listen", first.ws_address(),
                                     "--grpc-listen", "127.0.0.1:0", "--threads", "2"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("--ws-listen: cannot listen on"));
  EXPECT_THAT(second.err, HasSubstr("in use"));
  // The first server still serves every client.
  WsClient a, b;
  ASSERT_TRUE(a.Connect(first.ws_url()));
  ASSERT_TRUE(b.Connect(first.ws_url()));
}

// Every I/O thread accepts its own connections (SO_REUSEPORT) and serves them with the
// endpoint-wide handlers (message, ping, pong, close), which find each session in their thread's
// table. Many connections from many source ports land on both threads; every one of them must
// subscribe, receive, and close cleanly (the close handler unregisters it).
TEST(IoThreadsTest, ConnectionsOnEveryThreadSubscribeReceiveAndClose) {
  HeraldProcess herald({"--threads", "2"});
  ASSERT_TRUE(herald.ok());
  constexpr int kClients = 32;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    ASSERT_TRUE(clients.back()->Connect(herald.ws_url()));
    ASSERT_TRUE(clients.back()->Subscribe("spread"));
  }
  auto stub = herald.Stub();
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*stub, "spread", R"({"n":1})", &resp).ok());
  for (auto& c : clients) {
    v1::ServerFrame pub =
        c->WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
    EXPECT_EQ(pub.pub().data().struct_value().fields().at("n").number_value(), 1);
  }
  for (auto& c : clients) {
    c->Close(1000, "done");
    EXPECT_TRUE(c->WaitClosed());
  }
  // Every close reached its session: none is left in the node.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string health;
  while (absl::Now() < deadline) {
    health = RunCommand({"/usr/bin/curl", "-s", "http://" + herald.ws_address() + "/healthz"}).out;
    if (absl::StrContains(health, R"("connections":0)")) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(health, HasSubstr(R"("connections":0)"));
}

// A handshake and a frame longer than one small read still arrive whole (the transport reads
// them in pieces when the peer sends them so).
TEST(ReadBufferTest, HandshakeAndFrameLongerThanTheReadBufferArriveWhole) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  WsClient c;
  // A handshake of well over 256 bytes, as browsers send (cookies, a long User-Agent).
  ASSERT_TRUE(c.Connect(herald.ws_url(), {{"User-Agent", std::string(400, 'u')},
                                          {"Cookie", "session=" + std::string(300, 'c')}}));
  const std::string channel(250, 'x');  // the subscribe frame is ~290 bytes
  ASSERT_TRUE(c.Subscribe(channel, 7));
  auto stub = herald.Stub();
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*stub, channel, R"({"n":2})", &resp).ok());
  v1::ServerFrame pub =
      c.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
  EXPECT_EQ(pub.pub().channel(), channel);
}

}  // namespace
}  // namespace herald::testing
