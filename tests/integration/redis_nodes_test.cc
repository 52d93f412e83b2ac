// Real `herald` nodes on one real redis-server (--engine redis): a publication accepted by one
// node reaches subscribers on the other with the same offsets, a client that moves to the other
// node recovers exactly what it missed, the stale-version guard holds across nodes, and (three
// nodes) tasks dispatched on any node reach exactly one worker anywhere, also under worker churn
// and when a node holding leases is killed.
#include <signal.h>

#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

// Three nodes (na, nb, nc) on one Redis, for the task queues.
class RedisTaskNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ok()) << "redis-server did not start";
    for (const char* name : {"na", "nb", "nc"}) {
      nodes_.push_back(std::make_unique<HeraldProcess>(
          std::vector<std::string>{"--engine", "redis", "--redis-url", redis_.url(),
                                   "--redis-prefix", "it", "--node", name}));
      ASSERT_TRUE(nodes_.back()->ok());
    }
  }

  // The queue as node `node` reports it (ListQueues: workers of every node, state from Redis).
  v1::QueueInfo Queue(int node, const std::string& name) {
    grpc::ClientContext ctx;
    v1::ListQueuesResponse resp;
    EXPECT_TRUE(nodes_[node]->Stub()->ListQueues(&ctx, v1::ListQueuesRequest(), &resp).ok());
    for (const v1::QueueInfo& q : resp.queues()) {
      if (q.queue() == name) return q;
    }
    ADD_FAILURE() << "no queue " << name;
    return v1::QueueInfo();
  }

  RedisServer redis_;
  std::vector<std::unique_ptr<HeraldProcess>> nodes_;
};

grpc::Status Dispatch(v1::Broker::Stub& stub, const std::string& queue, int n,
                      uint32_t ack_deadline_ms, v1::DispatchTaskResponse* resp) {
  grpc::ClientContext ctx;
  v1::DispatchTaskRequest req;
  req.set_queue(queue);
  (*req.mutable_data()->mutable_struct_value()->mutable_fields())["n"].set_number_value(n);
  req.set_ack_deadline_ms(ack_deadline_ms);
  return stub.DispatchTask(&ctx, req, resp);
}

// "<task id>.<attempt>" -> task id.
std::string TaskOf(const std::string& delivery_id) {
  return delivery_id.substr(0, delivery_id.rfind('.'));
}

// Joins `queue` with request id 1.
bool Join(WsClient& worker, const std::string& queue) {
  worker.Send(absl::StrCat(R"({"id":1,"join":{"queue":")", queue, R"("}})"));
  return worker.WaitReply(1).has_joined();
}

// The task frames `worker` got, in order.
std::vector<v1::Task> Tasks(const WsClient& worker) {
  std::vector<v1::Task> out;
  for (const v1::ServerFrame& f : worker.Frames()) {
    if (f.has_task()) out.push_back(f.task());
  }
  return out;
}

// The first task `worker` got that is not in `seen` (then added), waiting at most `wait`.
std::optional<v1::Task> NextTask(const WsClient& worker, absl::flat_hash_set<std::string>* seen,
                                 absl::Duration wait) {
  std::optional<v1::Task> next;
  WaitFor(
      [&] {
        for (const v1::Task& t : Tasks(worker)) {
          if (!seen->contains(t.delivery_id())) {
            next = t;
            return true;
          }
        }
        return false;
      },
      wait);
  if (next.has_value()) seen->insert(next->delivery_id());
  return next;
}

TEST_F(RedisTaskNodes, UnderWorkerChurnEveryTaskDispatchedOnAnyNodeIsAckedExactlyOnce) {
  constexpr int kTasks = 150;
  struct Delivery {
    std::string delivery_id;
    uint32_t attempt = 0;
    int node = 0;  // of the worker
    bool acked = false;
  };
  absl::Mutex mu;
  absl::flat_hash_map<std::string, int> dispatched_on;           // task id -> node
  absl::flat_hash_map<std::string, std::vector<Delivery>> seen;  // task id -> its deliveries
  absl::flat_hash_map<std::string, int> acks;                    // task id -> acks answered ok
  int failed_acks = 0;
  std::atomic<bool> stop{false};

  // Per node, workers one after another: each connects, joins, acks one to four of the tasks it
  // gets, or disconnects at once holding one (one in five), and disconnects after that holding
  // whatever else it got (its node gives those back).
  auto churn = [&](int node, uint32_t seed) {
    std::mt19937 rng(seed);
    while (!stop) {
      WsClient worker;
      if (!worker.Connect(nodes_[node]->ws_url()) || !Join(worker, "jobs")) {
        ADD_FAILURE() << "worker on node " << node;
        return;
      }
      absl::flat_hash_set<std::string> handled;
      uint32_t next_id = 2;
      for (int left = 1 + static_cast<int>(rng() % 4); left > 0 && !stop; --left) {
        std::optional<v1::Task> task = NextTask(worker, &handled, absl::Milliseconds(300));
        if (!task.has_value()) break;
        Delivery d{task->delivery_id(), task->attempt(), node, false};
        if (rng() % 5 != 0) {
          const uint32_t id = next_id++;
          worker.Send(absl::StrCat(R"({"id":)", id, R"(,"ack":{"deliveryId":")",
                                   task->delivery_id(), R"("}})"));
          d.acked = worker.WaitReply(id).has_acked();
          absl::MutexLock lock(&mu);
          if (d.acked) {
            ++acks[TaskOf(d.delivery_id)];
          } else {
            ++failed_acks;
          }
          seen[TaskOf(d.delivery_id)].push_back(d);
          continue;
        }
        absl::MutexLock lock(&mu);
        seen[TaskOf(d.delivery_id)].push_back(d);
        break;  // gone without a word
      }
    }
  };
  // Every node dispatches a third, while the workers come and go.
  auto dispatch = [&](int node) {
    auto stub = nodes_[node]->Stub();
    for (int n = node; n < kTasks; n += 3) {
      v1::DispatchTaskResponse resp;
      grpc::Status st = Dispatch(*stub, "jobs", n, 30000, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      absl::MutexLock lock(&mu);
      dispatched_on[resp.task_id()] = node;
    }
  };
  std::vector<std::thread> threads;
  for (int node = 0; node < 3; ++node) threads.emplace_back(churn, node, 1000 + node);
  for (int node = 0; node < 3; ++node) threads.emplace_back(dispatch, node);
  const bool all_acked = WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return acks.size() == static_cast<size_t>(kTasks);
      },
      absl::Seconds(60));
  stop = true;
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(all_acked);

  absl::MutexLock lock(&mu);
  EXPECT_EQ(failed_acks, 0);  // no lease was ever taken from a live worker
  ASSERT_EQ(dispatched_on.size(), static_cast<size_t>(kTasks));
  int dropped = 0, elsewhere = 0;
  for (const auto& [task_id, node] : dispatched_on) {
    EXPECT_EQ(acks[task_id], 1) << task_id;
    const std::vector<Delivery>& ds = seen[task_id];
    absl::flat_hash_set<std::string> distinct;
    uint32_t last_attempt = 0;
    for (const Delivery& d : ds) {
      EXPECT_TRUE(distinct.insert(d.delivery_id).second) << d.delivery_id << " delivered twice";
      EXPECT_GT(d.attempt, last_attempt) << task_id;  // one holder after another
      last_attempt = d.attempt;
      if (!d.acked) ++dropped;
    }
    ASSERT_FALSE(ds.empty()) << task_id;
    EXPECT_TRUE(ds.back().acked) << task_id;  // nothing after its ack
    if (ds.back().node != node) ++elsewhere;
  }
  EXPECT_GT(dropped, 0);    // the churn gave tasks back
  EXPECT_GT(elsewhere, 0);  // and tasks crossed nodes
  v1::QueueInfo q = Queue(1, "jobs");
  EXPECT_EQ(q.dispatched(), static_cast<uint64_t>(kTasks));
  EXPECT_EQ(q.acked(), static_cast<uint64_t>(kTasks));
  EXPECT_GE(q.redelivered(), static_cast<uint64_t>(dropped));
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_EQ(q.in_flight_size(), 0);
}

TEST_F(RedisTaskNodes, TasksHeldOnANodeThatWasKilledAreRedeliveredOnAnotherAfterTheirDeadline) {
  constexpr int kTasks = 5;
  constexpr uint32_t kDeadlineMs = 1500;
  WsClient on_a, on_b;
  ASSERT_TRUE(on_a.Connect(nodes_[0]->ws_url()));
  ASSERT_TRUE(Join(on_a, "couriers"));
  auto stub_a = nodes_[0]->Stub();
  const absl::Time start = absl::Now();
  absl::flat_hash_set<std::string> ids;
  for (int n = 0; n < kTasks; ++n) {
    v1::DispatchTaskResponse resp;
    ASSERT_TRUE(Dispatch(*stub_a, "couriers", n, kDeadlineMs, &resp).ok());
    ids.insert(resp.task_id());
  }
  // Offered to it at once, or (while the lease its join started is out, its slots are reserved)
  // a moment later through the queue: the only worker holds them all.
  ASSERT_TRUE(WaitFor([&] { return Tasks(on_a).size() == kTasks; }));
  EXPECT_EQ(Queue(1, "couriers").in_flight_size(), kTasks);  // seen from another node
  ASSERT_TRUE(on_b.Connect(nodes_[1]->ws_url()));
  ASSERT_TRUE(Join(on_b, "couriers"));

  nodes_[0]->Stop(SIGKILL);  // no node gives its leases back: they run out
  ASSERT_TRUE(WaitFor([&] { return !Tasks(on_b).empty(); }, absl::Seconds(15)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(kDeadlineMs));  // not before the deadline
  ASSERT_TRUE(WaitFor([&] { return Tasks(on_b).size() == kTasks; }));
  uint32_t id = 2;
  for (const v1::Task& t : Tasks(on_b)) {
    EXPECT_EQ(t.attempt(), 2u);
    EXPECT_TRUE(ids.contains(TaskOf(t.delivery_id()))) << t.delivery_id();
    on_b.Send(
        absl::StrCat(R"({"id":)", id, R"(,"ack":{"deliveryId":")", t.delivery_id(), R"("}})"));
    EXPECT_TRUE(on_b.WaitReply(id++).has_acked());
  }
  v1::QueueInfo q = Queue(1, "couriers");
  EXPECT_EQ(q.dispatched(), static_cast<uint64_t>(kTasks));
  EXPECT_EQ(q.redelivered(), static_cast<uint64_t>(kTasks));
  EXPECT_EQ(q.acked(), static_cast<uint64_t>(kTasks));
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_EQ(q.in_flight_size(), 0);
}

}  // namespace
}  // namespace herald::testing
