// Recovery under churn, slow consumers, task redelivery and upstream events, against the real
// herald process with real WebSocket clients and gRPC stubs.
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/protocol.h"
#include "tests/support/event_reader.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;

v1::PublishOrderRequest OrderRequest(const std::string& id, uint64_t version,
                                     const std::string& store, const std::string& note = "") {
  v1::PublishOrderRequest req;
  v1::Order* o = req.mutable_order();
  o->set_id(id);
  o->set_version(version);
  o->set_store_id(store);
  o->set_status(v1::ORDER_STATUS_PREPARING);
  if (!note.empty()) (*o->mutable_attributes())["note"] = note;
  return req;
}

v1::StatsResponse Stats(v1::Broker::Stub& stub) {
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  EXPECT_TRUE(stub.Stats(&ctx, v1::StatsRequest(), &stats).ok());
  return stats;
}

// What one churning client has seen across all its connections.
struct Seen {
  std::string epoch;
  uint64_t last = 0;
  int connections = 0;
  int recovered = 0;
  int resyncs = 0;
  std::vector<std::string> problems;

  // Checks one connection's frames: the subscribed reply, then publications with consecutive
  // offsets continuing from `last`.
  void Absorb(const std::vector<v1::ServerFrame>& frames) {
    ++connections;
    bool subscribed = false;
    for (const v1::ServerFrame& f : frames) {
      if (f.has_subscribed()) {
        subscribed = true;
        const v1::Subscribed& s = f.subscribed();
        if (connections > 1 && !s.recovered()) {
          ++resyncs;  // explicitly told: not a silent gap
          last = s.offset();
        } else {
          if (connections > 1) ++recovered;
          for (const v1::Publication& p : s.publications()) Next(p.offset());
          if (connections == 1) last = s.offset();
        }
        epoch = s.epoch();
      } else if (f.has_pub()) {
        if (!subscribed) problems.push_back("publication before subscribed");
        Next(f.pub().offset());
      }
    }
  }
  void Next(uint64_t offset) {
    if (offset != last + 1) {
      problems.push_back(absl::StrCat("expected offset ", last + 1, ", got ", offset));
    }
    last = offset;
  }
};

TEST(ChurnTest, ReconnectingClientsGetEveryPublicationInOrderOrAreToldToResync) {
  HeraldProcess herald({"--history-size", "100000", "--history-ttl", "600"});
  ASSERT_TRUE(herald.ok());
  constexpr int kClients = 8;
  constexpr int kUpdates = 2000;
  std::atomic<bool> publishing{true};
  std::atomic<uint64_t> final_offset{0};

  std::thread publisher([&] {
    auto stub = herald.Stub();
    for (int i = 1; i <= kUpdates; ++i) {
      grpc::ClientContext ctx;
      v1::PublishOrderResponse resp;
      grpc::Status st =
          stub->PublishOrder(&ctx, OrderRequest(absl::StrCat("o", i % 50), i, "1"), &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      final_offset = resp.deliveries(1).offset();  // store:1
    }
    publishing = false;
  });

  std::vector<Seen> seen(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(c);
      Seen& me = seen[c];
      while (true) {
        const bool last_round = !publishing.load();
        WsClient ws;
        ASSERT_TRUE(ws.Connect(herald.ws_url()));
        if (me.connections == 0) {
          ws.Send(R"({"id":1,"subscribe":{"channel":"store:1"}})");
        } else {
          ws.Send(absl::StrCat(R"({"id":1,"subscribe":{"channel":"store:1","recover":{"epoch":")",
                               me.epoch, R"(","offset":")", me.last, R"("}}})"));
        }
        ASSERT_TRUE(ws.WaitReply(1).has_subscribed());
        if (last_round) {
          // Stay until the final publication arrived.
          ws.WaitFrame(
              [&](const v1::ServerFrame& f) {
                return (f.has_pub() && f.pub().offset() == final_offset.load()) ||
                       (f.has_subscribed() && f.subscribed().offset() == final_offset.load());
              },
              "final publication", absl::Seconds(30));
        } else {
          // Read a little, then drop the connection (page refresh, network blip).
          const size_t want = 1 + rng() % 40;
          WaitFor([&] { return ws.publication_count() >= want || !publishing.load(); },
                  absl::Seconds(10));
        }
        me.Absorb(ws.Frames());
        if (last_round) break;
      }
    });
  }
  publisher.join();
  for (auto& t : clients) t.join();

  int recovered = 0;
  for (int c = 0; c < kClients; ++c) {
    EXPECT_THAT(seen[c].problems, ::testing::IsEmpty()) << "client " << c;
    EXPECT_EQ(seen[c].last, final_offset.load()) << "client " << c;
    EXPECT_GE(seen[c].connections, 2) << "client " << c;
    recovered += seen[c].recovered;
  }
  // The history is large enough that reconnects recover rather than resync.
  EXPECT_GT(recovered, kClients);
}

TEST(SlowConsumerTest, ABehindClientGetsConflatedOrdersAndConvergesToTheLatest) {
  HeraldProcess herald(
      {"--soft-send-buffer-bytes", "65536", "--max-send-buffer-bytes", "67108864"});
  ASSERT_TRUE(herald.ok());
  RawWsClient slow;
  ASSERT_TRUE(slow.Connect(herald.ws_address(), 4096));
  ASSERT_TRUE(slow.Read().has_value());  // welcome
  ASSERT_TRUE(slow.SendText(R"({"id":1,"subscribe":{"channel":"store:9"}})"));
  ASSERT_THAT(slow.Read()->payload, HasSubstr("subscribed"));
  WsClient fast;
  ASSERT_TRUE(fast.Connect(herald.ws_url()));
  ASSERT_TRUE(fast.Subscribe("store:9"));

  // The slow client stops reading; 5 orders get 600 updates each of ~4 KB. The publisher keeps
  // pace with the fast client (one round of 5 at a time), so only the slow one falls behind.
  auto stub = herald.Stub();
  const std::string note(4000, 'x');
  constexpr int kOrders = 5, kVersions = 600;
  for (int v = 1; v <= kVersions; ++v) {
    for (int o = 0; o < kOrders; ++o) {
      grpc::ClientContext ctx;
      v1::PublishOrderResponse resp;
      ASSERT_TRUE(
          stub->PublishOrder(&ctx, OrderRequest(absl::StrCat("s", o), v, "9", note), &resp).ok());
    }
    ASSERT_TRUE(WaitFor([&] { return fast.publication_count() >= size_t{kOrders} * v; }));
  }
  // The fast subscriber on the same channel got every update.
  fast.WaitFrame(
      [&](const v1::ServerFrame& f) {
        return f.has_pub() && f.pub().offset() == kOrders * kVersions;
      },
      "last update on the fast client", absl::Seconds(30));
  EXPECT_EQ(fast.Publications().size(), static_cast<size_t>(kOrders * kVersions));
  EXPECT_GT(Stats(*stub).conflated_updates(), 0u);

  // Now the slow client reads everything: it converges to the latest version of each order.
  std::map<std::string, uint64_t> latest;
  size_t received = 0;
  while (latest.size() < kOrders || std::any_of(latest.begin(), latest.end(), [&](const auto& kv) {
           return kv.second < kVersions;
         })) {
    auto frame = slow.Read(absl::Seconds(20));
    ASSERT_TRUE(frame.has_value()) << "slow client stalled after " << received << " frames";
    // A client silent past the ping interval (a slow instrumented build) is pinged meanwhile.
    if (frame->opcode == 9) continue;
    ASSERT_EQ(frame->opcode, 1) << frame->payload;
    v1::ServerFrame f;
    ASSERT_TRUE(core::FromJson(frame->payload, &f, 64).ok());
    ASSERT_TRUE(f.has_pub());
    const auto& fields = f.pub().data().struct_value().fields();
    uint64_t version = std::stoull(fields.at("version").string_value());
    uint64_t& seen = latest[fields.at("id").string_value()];
    EXPECT_GT(version, seen) << "older version after a newer one";
    seen = version;
    ++received;
  }
  EXPECT_LT(received, static_cast<size_t>(kOrders * kVersions));  // some were conflated away
  EXPECT_EQ(Stats(*stub).slow_consumer_closes(), 0u);
}

// Herald writes every server frame itself, pongs included: a ping is answered in order with the
// frames queued before it, and publications keep flowing around it.
TEST(PingTest, APingGetsAPongWithItsPayloadBetweenPublications) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  RawWsClient client;
  ASSERT_TRUE(client.Connect(herald.ws_address()));
  ASSERT_TRUE(client.Read().has_value());  // welcome
  ASSERT_TRUE(client.SendText(R"({"id":1,"subscribe":{"channel":"feed"}})"));
  ASSERT_THAT(client.Read()->payload, HasSubstr("subscribed"));
  auto stub = herald.Stub();
  auto publish = [&](const std::string& text) {
    grpc::ClientContext ctx;
    v1::PublishRequest req;
    req.set_channel("feed");
    req.mutable_data()->set_string_value(text);
    v1::PublishResponse resp;
    ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
  };
  publish("before");
  ASSERT_THAT(client.Read()->payload, HasSubstr("before"));
  ASSERT_TRUE(client.SendFrame(9, "are-you-there"));
  auto pong = client.Read();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->payload, "are-you-there");
  publish("after");
  auto after = client.Read();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->opcode, 1);
  EXPECT_THAT(after->payload, HasSubstr("after"));
}

TEST(SlowConsumerTest, AClientOverTheHardLimitIsClosedWith4008AndOthersAreUnaffected) {
  HeraldProcess herald({"--soft-send-buffer-bytes", "8192", "--max-send-buffer-bytes", "262144"});
  ASSERT_TRUE(herald.ok());
  RawWsClient slow;
  ASSERT_TRUE(slow.Connect(herald.ws_address(), 4096));
  ASSERT_TRUE(slow.Read().has_value());
  ASSERT_TRUE(slow.SendText(R"({"id":1,"subscribe":{"channel":"feed"}})"));
  ASSERT_TRUE(slow.Read().has_value());
  WsClient fast;
  ASSERT_TRUE(fast.Connect(herald.ws_url()));
  ASSERT_TRUE(fast.Subscribe("feed"));

  // Publish 20 KB messages in rounds of 10 (200 KB, under the limit), each round once the fast
  // client has it, until the slow client, which reads nothing, is dropped.
  auto stub = herald.Stub();
  const std::string blob(20000, 'y');
  int published = 0;
  while (Stats(*stub).slow_consumer_closes() == 0 && published < 5000) {
    for (int i = 0; i < 10; ++i, ++published) {
      grpc::ClientContext ctx;
      v1::PublishRequest req;
      req.set_channel("feed");
      req.mutable_data()->set_string_value(blob);
      v1::PublishResponse resp;
      ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
    }
    ASSERT_TRUE(WaitFor([&] { return fast.publication_count() >= size_t(published); }));
  }
  ASSERT_EQ(Stats(*stub).slow_consumer_closes(), 1u);
  fast.WaitFrame(
      [&](const v1::ServerFrame& f) {
        return f.has_pub() && f.pub().offset() == static_cast<uint64_t>(published);
      },
      "every publication on the fast client", absl::Seconds(30));
  EXPECT_EQ(fast.Publications().size(), static_cast<size_t>(published));
  EXPECT_TRUE(fast.open());
  // Reading on, the slow client finds the close frame after what was already in flight.
  int close_code = 0;
  std::string reason;
  for (int i = 0; i < 10000 && close_code == 0; ++i) {
    auto frame = slow.Read(absl::Seconds(20));
    ASSERT_TRUE(frame.has_value());
    if (frame->opcode == 8) {
      close_code = frame->close_code;
      reason = frame->payload;
    }
  }
  EXPECT_EQ(close_code, 4008);
  EXPECT_THAT(reason, HasSubstr("slow consumer"));
}

TEST(TaskTest, ATaskIsRedeliveredWhenItsWorkerDies) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  EventReader events(*stub);
  auto w1 = std::make_unique<WsClient>();
  WsClient w2;
  ASSERT_TRUE(w1->Connect(herald.ws_url()));
  ASSERT_TRUE(w2.Connect(herald.ws_url()));
  w1->Send(R"({"id":1,"join":{"queue":"couriers"}})");
  ASSERT_TRUE(w1->WaitReply(1).has_joined());

  grpc::ClientContext ctx;
  v1::DispatchTaskRequest req;
  req.set_queue("couriers");
  req.mutable_data()
      ->mutable_struct_value()
      ->mutable_fields()
      ->
      operator[]("pickup")
      .set_string_value("store 42");
  v1::DispatchTaskResponse resp;
  ASSERT_TRUE(stub->DispatchTask(&ctx, req, &resp).ok());
  // With --engine redis the worker's join leases from the queue first (a Redis round trip), so
  // the task may reach it through the queue a moment later, and the reply names no worker then
  // (api.md, DispatchTask).
  if (!OnRedisEngine()) EXPECT_EQ(resp.assigned_connection_id(), w1->connection_id());
  v1::ServerFrame task =
      w1->WaitFrame([](const v1::ServerFrame& f) { return f.has_task(); }, "task on worker 1");
  EXPECT_EQ(task.task().attempt(), 1u);

  w2.Send(R"({"id":1,"join":{"queue":"couriers"}})");
  ASSERT_TRUE(w2.WaitReply(1).has_joined());
  const std::string dead = w1->connection_id();
  w1.reset();  // the worker's page is gone without acking
  v1::ServerFrame again =
      w2.WaitFrame([](const v1::ServerFrame& f) { return f.has_task(); }, "task on worker 2");
  EXPECT_EQ(again.task().attempt(), 2u);
  EXPECT_EQ(again.task().data().struct_value().fields().at("pickup").string_value(), "store 42");
  w2.Send(absl::StrCat(R"({"id":2,"ack":{"deliveryId":")", again.task().delivery_id(), R"("}})"));
  EXPECT_TRUE(w2.WaitReply(2).has_acked());

  EXPECT_EQ(events.Expect(v1::EVENT_TYPE_TASK_ASSIGNED, dead).task_id(), resp.task_id());
  EXPECT_EQ(events.Expect(v1::EVENT_TYPE_TASK_REDELIVERED, dead).attempt(), 1u);
  v1::Event acked = events.Expect(v1::EVENT_TYPE_TASK_ACKED, w2.connection_id());
  EXPECT_EQ(acked.task_id(), resp.task_id());
  EXPECT_EQ(acked.delivery_id(), again.task().delivery_id());

  grpc::ClientContext qctx;
  v1::ListQueuesResponse queues;
  ASSERT_TRUE(stub->ListQueues(&qctx, v1::ListQueuesRequest(), &queues).ok());
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_EQ(queues.queues(0).acked(), 1u);
  EXPECT_EQ(queues.queues(0).redelivered(), 1u);
  EXPECT_EQ(queues.queues(0).workers(), 1u);
}

TEST(WatchEventsTest, AWatcherSeesConnectMessageAckAndDisconnectWithTheirFields) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  EventReader events(*stub);
  v1::WatchEventsRequest only_messages;
  only_messages.add_types(v1::EVENT_TYPE_MESSAGE);
  EventReader messages(*stub, only_messages);

  auto c = std::make_unique<WsClient>();
  ASSERT_TRUE(c->Connect(herald.ws_url()));
  const std::string id = c->connection_id();
  ASSERT_TRUE(c->Subscribe("order:o9"));
  c->Send(R"({"id":2,"message":{"data":{"rating":5}}})");
  ASSERT_TRUE(c->WaitReply(2).has_sent());

  // A publication that asks for acks; the client acks it; the publisher waited for it.
  std::thread acker([&] {
    v1::ServerFrame pub = c->WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); },
                                       "publication with ack request");
    EXPECT_TRUE(pub.pub().ack_requested());
    c->Send(absl::StrCat(R"({"id":3,"ack":{"channel":"order:o9","offset":")", pub.pub().offset(),
                         R"("}})"));
  });
  grpc::ClientContext ctx;
  v1::PublishOrderRequest order = OrderRequest("o9", 1, "4");
  order.mutable_ack()->set_wait_ms(10000);
  v1::PublishOrderResponse resp;
  ASSERT_TRUE(stub->PublishOrder(&ctx, order, &resp).ok());
  acker.join();
  EXPECT_TRUE(resp.ack().acked());
  EXPECT_EQ(resp.ack().connection_id(), id);
  EXPECT_EQ(resp.ack().channel(), "order:o9");

  v1::Event connect = events.Expect(v1::EVENT_TYPE_CONNECT, id);
  EXPECT_THAT(connect.remote_address(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_GT(connect.time_ms(), 0);
  EXPECT_EQ(events.Expect(v1::EVENT_TYPE_SUBSCRIBE, id).channel(), "order:o9");
  v1::Event message = messages.Expect(v1::EVENT_TYPE_MESSAGE, id);
  EXPECT_EQ(message.data().struct_value().fields().at("rating").number_value(), 5);
  v1::Event ack = events.Expect(v1::EVENT_TYPE_ACK, id);
  EXPECT_EQ(ack.channel(), "order:o9");
  ASSERT_EQ(resp.deliveries_size(), 3);  // orders, store:4, order:o9 (no customer)
  EXPECT_EQ(resp.deliveries(2).channel(), "order:o9");
  EXPECT_EQ(ack.offset(), resp.deliveries(2).offset());
  c->Close(4000, "done for today");
  ASSERT_TRUE(c->WaitClosed());
  v1::Event gone = events.Expect(v1::EVENT_TYPE_DISCONNECT, id);
  EXPECT_EQ(gone.code(), 4000u);
  EXPECT_EQ(gone.reason(), "done for today");
  EXPECT_EQ(Stats(*stub).watchers(), 2u);
}

TEST(HistoryTest, HistoryRpcAndIdempotentPublish) {
  HeraldProcess herald({"--history-size", "3"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  for (int i = 1; i <= 5; ++i) {
    grpc::ClientContext ctx;
    v1::PublishRequest req;
    req.set_channel("news");
    req.mutable_data()->set_number_value(i);
    req.set_idempotency_key(absl::StrCat("k", i));
    v1::PublishResponse resp;
    ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
  }
  grpc::ClientContext ctx;
  v1::PublishRequest repeat;
  repeat.set_channel("news");
  repeat.mutable_data()->set_number_value(5);
  repeat.set_idempotency_key("k5");
  v1::PublishResponse dup;
  ASSERT_TRUE(stub->Publish(&ctx, repeat, &dup).ok());
  EXPECT_TRUE(dup.duplicate());
  EXPECT_EQ(dup.delivery().offset(), 5u);

  grpc::ClientContext hctx;
  v1::HistoryRequest h;
  h.set_channel("news");
  v1::HistoryResponse history;
  ASSERT_TRUE(stub->History(&hctx, h, &history).ok());
  EXPECT_EQ(history.offset(), 5u);
  ASSERT_EQ(history.publications_size(), 3);
  EXPECT_EQ(history.publications(0).offset(), 3u);
  EXPECT_EQ(history.publications(2).data().number_value(), 5);
  EXPECT_GT(history.publications(0).published_at_ms(), 0);
}

}  // namespace
}  // namespace herald::testing
