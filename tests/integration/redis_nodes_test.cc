// Real `herald` nodes on one real redis-server (--engine redis): a publication accepted by one
// node reaches subscribers on the other with the same offsets, a client that moves to the other
// node recovers exactly what it missed, the stale-version guard holds across nodes, and (three
// nodes) tasks dispatched on any node reach exactly one worker anywhere, also under worker churn
// and when a node holding leases is killed; the control API covers the cluster — listings,
// Disconnect and SendToUser by user, Stats, Presence, WatchEvents — a publish call waiting for an
// ack ends with the ack of a subscriber on any node, and a killed node drops out within the
// dead-node bound.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/auth/jwt.h"
#include "tests/support/await.h"
#include "tests/support/event_reader.h"
#include "tests/support/grpc_publish.h"
#include "tests/support/herald_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

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
  return PollUntil(std::move(pred), timeout, absl::Milliseconds(20));
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
TEST_F(RedisNodes, ASubscriberIsToldToResubscribeWhenRedisRestartedWithoutItsStreamMidStream) {
  WsClient ws;
  ASSERT_TRUE(ws.Connect(b_->ws_url()));
  ws.Send(R"({"id":1,"subscribe":{"channel":"feed"}})");
  v1::ServerFrame subscribed = ws.WaitReply(1);
  ASSERT_TRUE(subscribed.has_subscribed());
  const std::string epoch = subscribed.subscribed().epoch();
  auto stub_a = a_->Stub();
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*stub_a, "feed", R"({"n":1})", &resp).ok());
  ASSERT_TRUE(Publish(*stub_a, "feed", R"({"n":2})", &resp).ok());
  ws.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == 2; },
               "offset 2");

  // Redis restarts without persistence: the stream, and what is published right after, start
  // over in a new epoch. The subscriber cannot be handed that as if nothing happened.
  redis_.Stop();
  ASSERT_TRUE(redis_.Start());
  ASSERT_TRUE(Eventually([&] { return Publish(*stub_a, "feed", R"({"n":3})", &resp).ok(); }));
  v1::ServerFrame notice = ws.WaitFrame(
      [](const v1::ServerFrame& f) { return f.has_unsubscribed(); }, "unsubscribed notice");
  EXPECT_EQ(notice.unsubscribed().channel(), "feed");
  EXPECT_TRUE(notice.unsubscribed().resubscribe());
  EXPECT_EQ(notice.id(), 0u);
  // Nothing of the new epoch reached it as if it continued the old stream.
  for (const v1::ServerFrame& f : ws.Publications()) EXPECT_LE(f.pub().offset(), 2u);
  const size_t before = ws.Publications().size();

  // Resubscribing with recovery says what happened: recovered false, a new epoch.
  ws.Send(absl::StrCat(R"({"id":2,"subscribe":{"channel":"feed","recover":{"epoch":")", epoch,
                       R"(","offset":"2"}}})"));
  v1::ServerFrame again = ws.WaitReply(2);
  ASSERT_TRUE(again.has_subscribed()) << again.DebugString();
  EXPECT_FALSE(again.subscribed().recovered());
  EXPECT_NE(again.subscribed().epoch(), epoch);
  // And live again.
  ASSERT_TRUE(Publish(*stub_a, "feed", R"({"n":4})", &resp).ok());
  ASSERT_TRUE(WaitFor([&] { return ws.publication_count() == before + 1; }));
  const v1::Publication last = ws.Publications().back().pub();
  EXPECT_EQ(last.offset(), resp.delivery().offset());
  EXPECT_EQ(last.data().struct_value().fields().at("n").number_value(), 4);
}

TEST_F(RedisNodes, AQuietSubscriberIsToldToResubscribeAfterRedisWasUnreachableAndRecoversTheGap) {
  // Node b has had no publication of the channel when Redis goes: it cannot know what its
  // subscriber missed, so the subscriber resubscribes with recovery and gets exactly that.
  WsClient ws;
  ASSERT_TRUE(ws.Connect(b_->ws_url()));
  ws.Send(R"({"id":1,"subscribe":{"channel":"quiet"}})");
  v1::ServerFrame subscribed = ws.WaitReply(1);
  ASSERT_TRUE(subscribed.has_subscribed());
  // Only the pub/sub connections drop: the stream stays in Redis.
  ASSERT_EQ(redis_.Command("CLIENT KILL TYPE pubsub").substr(0, 1), ":");
  v1::PublishResponse resp;
  ASSERT_TRUE(Publish(*a_->Stub(), "quiet", R"({"n":1})", &resp).ok());
  // (b's subscription was gone before the publish: the publication cannot come first.)
  v1::ServerFrame notice =
      ws.WaitFrame([](const v1::ServerFrame& f) { return f.has_unsubscribed() || f.has_pub(); },
                   "unsubscribed notice or the publication");
  ASSERT_TRUE(notice.has_unsubscribed());
  EXPECT_TRUE(notice.unsubscribed().resubscribe());
  ws.Send(absl::StrCat(R"({"id":2,"subscribe":{"channel":"quiet","recover":{"epoch":")",
                       subscribed.subscribed().epoch(), R"(","offset":"0"}}})"));
  v1::ServerFrame again = ws.WaitReply(2);
  ASSERT_TRUE(again.has_subscribed());
  EXPECT_TRUE(again.subscribed().recovered());
  ASSERT_EQ(again.subscribed().publications_size(), 1);
  EXPECT_EQ(again.subscribed().publications(0).offset(), 1u);
}

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

// A worker that remembers the task ids it processed (reliability.md) is never handed a new task
// under one of them: Redis restarted without its data starts the ids after every earlier one.
TEST_F(RedisTaskNodes, ATaskIdIsNeverGivenAgainAfterRedisRestartedWithoutItsData) {
  WsClient worker;
  ASSERT_TRUE(worker.Connect(nodes_[1]->ws_url()));
  ASSERT_TRUE(Join(worker, "ids"));
  auto stub = nodes_[0]->Stub();
  v1::DispatchTaskResponse before;
  ASSERT_TRUE(Dispatch(*stub, "ids", 1, 30000, &before).ok());
  ASSERT_TRUE(WaitFor([&] { return Tasks(worker).size() == 1; }));
  worker.Send(
      absl::StrCat(R"({"id":2,"ack":{"deliveryId":")", Tasks(worker)[0].delivery_id(), R"("}})"));
  ASSERT_TRUE(worker.WaitReply(2).has_acked());

  redis_.Stop();
  ASSERT_TRUE(redis_.Start());  // empty: no persistence
  v1::DispatchTaskResponse after;
  ASSERT_TRUE(Eventually([&] { return Dispatch(*stub, "ids", 2, 30000, &after).ok(); }));
  uint64_t first = 0, second = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(before.task_id(), "t"), &first))
      << before.task_id();
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(after.task_id(), "t"), &second))
      << after.task_id();
  EXPECT_GT(second, first);
  // The worker gets it under an id it has not seen.
  ASSERT_TRUE(WaitFor([&] { return Tasks(worker).size() == 2; }, absl::Seconds(15)));
  EXPECT_EQ(TaskOf(Tasks(worker)[1].delivery_id()), after.task_id());
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

// --- Three nodes: the control API covers the cluster -------------------------------------------

constexpr char kSecret[] = "redis-nodes-secret-3f9a2c";
// The nodes' heartbeat interval here; a node that stops is gone 3 intervals later.
constexpr int kHeartbeatMs = 200;
const absl::Duration kDeadNodeBound = absl::Milliseconds(3 * kHeartbeatMs);
constexpr int kControlTimeoutMs = 500;

std::string Token(const std::string& user) {
  auto t = auth::SignJwt("HS256", kSecret,
                         auth::ClaimsJson(user, absl::Now() + absl::Hours(1), {"chat:*", "news"}));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

class ThreeNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ok()) << "redis-server did not start";
    for (const char* name : {"a", "b", "c"}) {
      nodes_.push_back(std::make_unique<HeraldProcess>(std::vector<std::string>{
          "--engine", "redis", "--redis-url", redis_.url(), "--redis-prefix", "it3", "--node", name,
          "--node-heartbeat-ms", absl::StrCat(kHeartbeatMs), "--control-timeout-ms",
          absl::StrCat(kControlTimeoutMs), "--jwt-hs256-secret", kSecret, "--presence-prefixes",
          "chat:", "--disconnect-grace", "2"}));
      ASSERT_TRUE(nodes_.back()->ok());
    }
  }

  HeraldProcess& node(int i) { return *nodes_[i]; }
  static std::string Name(int i) { return std::string(1, static_cast<char>('a' + i)); }
  // A client of `user` on node `i`.
  std::unique_ptr<WsClient> Client(int i, const std::string& user) {
    auto ws = std::make_unique<WsClient>();
    EXPECT_TRUE(ws->Connect(node(i).ws_url("?token=" + Token(user))));
    return ws;
  }
  // Every page of ListConnections through node `i`.
  v1::ListConnectionsResponse ListAll(int i, v1::ListConnectionsRequest req = {}) {
    auto stub = node(i).Stub();
    v1::ListConnectionsResponse all;
    req.set_page_size(2);
    for (int page = 0; page < 20; ++page) {
      grpc::ClientContext ctx;
      v1::ListConnectionsResponse resp;
      grpc::Status st = stub->ListConnections(&ctx, req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok()) break;
      all.set_total(resp.total());
      all.set_missing_nodes(std::max(all.missing_nodes(), resp.missing_nodes()));
      for (const v1::Connection& c : resp.connections()) *all.add_connections() = c;
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }
  // connection id -> node, of a listing.
  static std::map<std::string, std::string> Nodes(const v1::ListConnectionsResponse& list) {
    std::map<std::string, std::string> out;
    for (const v1::Connection& c : list.connections()) out[c.id()] = c.node();
    return out;
  }

  RedisServer redis_;
  std::vector<std::unique_ptr<HeraldProcess>> nodes_;
};

TEST_F(ThreeNodes, ListConnectionsOnAnyNodeListsEveryNodesConnectionsWithTheirNode) {
  std::vector<std::unique_ptr<WsClient>> clients;
  std::map<std::string, std::string> expected;  // id -> node
  const std::vector<int> spread = {0, 0, 1, 1, 1, 2};
  for (size_t k = 0; k < spread.size(); ++k) {
    clients.push_back(Client(spread[k], absl::StrCat("u", k)));
    expected[clients.back()->connection_id()] = Name(spread[k]);
  }
  for (int i = 0; i < 3; ++i) {
    v1::ListConnectionsResponse all = ListAll(i);
    EXPECT_EQ(all.total(), 6u) << "through node " << Name(i);
    EXPECT_EQ(all.missing_nodes(), 0u);
    EXPECT_EQ(Nodes(all), expected) << "through node " << Name(i);
    std::vector<std::string> ids;
    for (const auto& c : all.connections()) ids.push_back(c.id());
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  }
  // Filters and GetConnection reach the node that has the connection.
  v1::ListConnectionsRequest by_user;
  by_user.set_user("u3");
  v1::ListConnectionsResponse u3 = ListAll(2, by_user);
  ASSERT_EQ(u3.connections_size(), 1);
  EXPECT_EQ(u3.connections(0).node(), "b");
  grpc::ClientContext ctx;
  v1::GetConnectionRequest get;
  get.set_connection_id(clients[5]->connection_id());
  v1::Connection c;
  ASSERT_TRUE(node(0).Stub()->GetConnection(&ctx, get, &c).ok());
  EXPECT_EQ(c.node(), "c");
  EXPECT_EQ(c.user(), "u5");

  // Stats: every node's figures and their totals.
  grpc::ClientContext sctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(node(1).Stub()->Stats(&sctx, v1::StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.node(), "b");
  EXPECT_EQ(stats.connections(), 6u);
  EXPECT_EQ(stats.connections_total(), 6u);
  ASSERT_EQ(stats.nodes_size(), 3);
  std::map<std::string, uint32_t> per_node;
  for (const auto& n : stats.nodes()) per_node[n.node()] = n.connections();
  EXPECT_EQ(per_node, (std::map<std::string, uint32_t>{{"a", 2}, {"b", 3}, {"c", 1}}));
  EXPECT_EQ(stats.missing_nodes(), 0u);

  // heraldctl conns, through any node, shows them all with their node.
  CommandResult r = RunCommand({HeraldctlBinary(), "--server", node(2).grpc_address(), "conns"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("NODE"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("6 of 6 connections"));
  for (const auto& [id, name] : expected) {
    EXPECT_THAT(r.out, ::testing::ContainsRegex(absl::StrCat(id, " +", name, " ")));
  }
}

TEST_F(ThreeNodes, DisconnectByUserClosesTheUsersSocketsOnEveryNode) {
  auto tab_a = Client(0, "u-kick");
  auto tab_b = Client(1, "u-kick");
  auto tab_c = Client(2, "u-kick");
  auto other = Client(1, "u-stay");
  grpc::ClientContext ctx;
  v1::DisconnectRequest req;
  req.set_user("u-kick");
  req.set_code(4001);
  req.set_reason("moved");
  v1::DisconnectResponse resp;
  ASSERT_TRUE(node(0).Stub()->Disconnect(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.disconnected(), 3u);
  for (WsClient* tab : {tab_a.get(), tab_b.get(), tab_c.get()}) {
    ASSERT_TRUE(tab->WaitClosed()) << tab->connection_id();
    EXPECT_EQ(tab->close_code(), 4001);
    EXPECT_EQ(tab->close_reason(), "moved");
  }
  EXPECT_TRUE(other->open());
  // One connection, by id, through a node that does not have it.
  grpc::ClientContext ctx2;
  v1::DisconnectRequest by_id;
  by_id.set_connection_id(other->connection_id());
  ASSERT_TRUE(node(2).Stub()->Disconnect(&ctx2, by_id, &resp).ok());
  EXPECT_EQ(resp.disconnected(), 1u);
  EXPECT_TRUE(other->WaitClosed());
  EXPECT_EQ(other->close_code(), 1000);
}

TEST_F(ThreeNodes, SendToUserReachesTheUsersTabsOnEveryNode) {
  auto tab_a = Client(0, "u-tabs");
  auto tab_c = Client(2, "u-tabs");
  auto other = Client(1, "u-other");
  grpc::ClientContext ctx;
  v1::SendToUserRequest req;
  req.set_user("u-tabs");
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({"hi":1})", req.mutable_data()).ok());
  v1::SendResponse resp;
  ASSERT_TRUE(node(1).Stub()->SendToUser(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.queued(), 2u);
  for (WsClient* tab : {tab_a.get(), tab_c.get()}) {
    v1::ServerFrame push =
        tab->WaitFrame([](const v1::ServerFrame& f) { return f.has_push(); }, "push to the user");
    EXPECT_EQ(push.push().data().struct_value().fields().at("hi").number_value(), 1);
  }
  // Server-side subscribe of the user, on both nodes; a publication through the third reaches
  // both tabs.
  grpc::ClientContext sctx;
  v1::SubscribeRequest sub;
  sub.set_user("u-tabs");
  sub.set_channel("news");
  v1::SubscribeResponse subscribed;
  ASSERT_TRUE(node(1).Stub()->Subscribe(&sctx, sub, &subscribed).ok());
  EXPECT_EQ(subscribed.subscribed(), 2u);
  for (WsClient* tab : {tab_a.get(), tab_c.get()}) {
    tab->WaitFrame([](const v1::ServerFrame& f) { return f.has_subscribed(); }, "subscribed");
  }
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(*node(1).Stub(), "news", R"({"n":1})", &published).ok());
  for (WsClient* tab : {tab_a.get(), tab_c.get()}) {
    tab->WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
  }
  for (const v1::ServerFrame& f : other->Frames()) EXPECT_FALSE(f.has_push() || f.has_pub());
}

TEST_F(ThreeNodes, WatchEventsOnOneNodeSeesEveryNodesEventsOnceAndHeldDisconnects) {
  auto stub_a = node(0).Stub();
  EventReader events(*stub_a);
  // A connect on another node, and one on this node (seen once, not again through Redis).
  auto on_c = Client(2, "u-w");
  auto on_a = Client(0, "u-local");
  ASSERT_TRUE(events.WaitFor(v1::EVENT_TYPE_CONNECT, on_c->connection_id()));
  ASSERT_TRUE(events.WaitFor(v1::EVENT_TYPE_CONNECT, on_a->connection_id()));
  // A client's message on a third node.
  auto on_b = Client(1, "u-m");
  on_b->Send(R"({"id":2,"message":{"data":{"rating":5}}})");
  ASSERT_TRUE(on_b->WaitReply(2).has_sent());
  ASSERT_TRUE(events.WaitFor(v1::EVENT_TYPE_MESSAGE, on_b->connection_id()));

  // u-w leaves node c and comes back on node b within the grace period: its DISCONNECT is not
  // news. u-gone leaves node c for good right after: its DISCONNECT follows the grace period,
  // and u-w's would have come before it.
  auto gone = Client(2, "u-gone");
  ASSERT_TRUE(events.WaitFor(v1::EVENT_TYPE_CONNECT, gone->connection_id()));
  const std::string moved_id = on_c->connection_id();
  on_c->Close();
  on_c->WaitClosed();
  auto back = Client(1, "u-w");
  ASSERT_TRUE(events.WaitFor(v1::EVENT_TYPE_CONNECT, back->connection_id()));
  const std::string gone_id = gone->connection_id();
  gone->Close();
  gone->WaitClosed();
  ASSERT_TRUE(events.WaitFor(v1::EVENT_TYPE_DISCONNECT, gone_id));
  EXPECT_EQ(events.Count(v1::EVENT_TYPE_DISCONNECT, moved_id), 0u);

  EXPECT_EQ(events.Count(v1::EVENT_TYPE_CONNECT, on_a->connection_id()), 1u);
  EXPECT_EQ(events.Count(v1::EVENT_TYPE_CONNECT, moved_id), 1u);
  EXPECT_EQ(events.Count(v1::EVENT_TYPE_MESSAGE, on_b->connection_id()), 1u);
}

// A Publish through node `i` that waits `wait_ms` for an ack (of `user`, any when empty), on its
// own thread; response() waits for the reply.
class WaitingPublish {
 public:
  WaitingPublish(HeraldProcess& node, const std::string& channel, uint32_t wait_ms,
                 const std::string& user = "")
      : stub_(node.Stub()) {
    req_.set_channel(channel);
    EXPECT_TRUE(
        google::protobuf::util::JsonStringToMessage(R"({"n":1})", req_.mutable_data()).ok());
    req_.mutable_ack()->set_wait_ms(wait_ms);
    req_.mutable_ack()->set_user(user);
    started_ = absl::Now();
    thread_ = std::thread([this] {
      status_ = stub_->Publish(&ctx_, req_, &resp_);
      elapsed_ = absl::Now() - started_;
    });
  }
  ~WaitingPublish() {
    if (thread_.joinable()) thread_.join();
  }
  const v1::PublishResponse& response() {
    if (thread_.joinable()) thread_.join();
    EXPECT_TRUE(status_.ok()) << status_.error_message();
    return resp_;
  }
  absl::Duration elapsed() {
    if (thread_.joinable()) thread_.join();
    return elapsed_;
  }

 private:
  std::unique_ptr<v1::Broker::Stub> stub_;
  grpc::ClientContext ctx_;
  v1::PublishRequest req_;
  v1::PublishResponse resp_;
  grpc::Status status_;
  absl::Time started_;
  absl::Duration elapsed_;
  std::thread thread_;
};

// Sends an ack of the publication `pub` (with `id`).
void Ack(WsClient& ws, const v1::ServerFrame& pub, uint32_t id) {
  ws.Send(absl::StrCat(R"({"id":)", id, R"(,"ack":{"channel":")", pub.pub().channel(),
                       R"(","offset":")", pub.pub().offset(), R"("}})"));
}

// The publication at `offset`, which must ask for an ack.
v1::ServerFrame AckRequested(WsClient& ws, uint64_t offset = 1) {
  v1::ServerFrame f = ws.WaitFrame(
      [&](const v1::ServerFrame& f) { return f.has_pub() && f.pub().offset() == offset; },
      absl::StrCat("publication ", offset));
  EXPECT_TRUE(f.pub().ack_requested());
  return f;
}

TEST_F(ThreeNodes, APublishWaitingForAnAckOnOneNodeEndsWithTheAckOfASubscriberOnAnother) {
  // Nobody on node a subscribes: the ack comes from node b; node c's subscriber never acks.
  auto on_b = Client(1, "u-ack");
  auto silent = Client(2, "u-silent");
  ASSERT_TRUE(on_b->Subscribe("news"));
  ASSERT_TRUE(silent->Subscribe("news"));
  WaitingPublish call(node(0), "news", 10000);
  v1::ServerFrame pub = AckRequested(*on_b);
  AckRequested(*silent);
  Ack(*on_b, pub, 7);
  EXPECT_TRUE(on_b->WaitReply(7).has_acked());
  const v1::PublishResponse& resp = call.response();
  EXPECT_TRUE(resp.ack().acked());
  EXPECT_EQ(resp.ack().connection_id(), on_b->connection_id());
  EXPECT_EQ(resp.ack().user(), "u-ack");
  EXPECT_EQ(resp.ack().channel(), "news");
  EXPECT_EQ(resp.ack().offset(), pub.pub().offset());
  EXPECT_LT(call.elapsed(), absl::Seconds(5)) << "the ack, not the deadline, ended the wait";

  // A wait for a user: another user's ack on node c does not end it, the user's on node b does.
  WaitingPublish for_user(node(0), "news", 10000, "u-ack");
  v1::ServerFrame second = AckRequested(*silent, 2);
  Ack(*silent, second, 8);
  EXPECT_TRUE(silent->WaitReply(8).has_acked());
  v1::ServerFrame mine = AckRequested(*on_b, 2);
  Ack(*on_b, mine, 9);
  const v1::PublishResponse& user_resp = for_user.response();
  EXPECT_TRUE(user_resp.ack().acked());
  EXPECT_EQ(user_resp.ack().user(), "u-ack");
  EXPECT_EQ(user_resp.ack().connection_id(), on_b->connection_id());
}

TEST_F(ThreeNodes, APublishWaitingForAnAckThatNoNodeSendsReportsItNotAcked) {
  auto on_b = Client(1, "u-ack");  // receives the publication and never acks
  ASSERT_TRUE(on_b->Subscribe("news"));
  WaitingPublish call(node(0), "news", 400);
  AckRequested(*on_b);
  const v1::PublishResponse& resp = call.response();
  EXPECT_FALSE(resp.ack().acked());
  EXPECT_TRUE(resp.ack().connection_id().empty());
  EXPECT_GE(call.elapsed(), absl::Milliseconds(400));
  EXPECT_LT(call.elapsed(), absl::Seconds(5));
  // An ack after the deadline changes nothing, and the next wait is answered as before.
  Ack(*on_b, on_b->Publications().back(), 3);
  EXPECT_TRUE(on_b->WaitReply(3).has_acked());
}

TEST_F(ThreeNodes,
       AUserWithTabsOnTwoNodesIsOnlineOnceAndGoesOfflineOnceAfterTheLastTabAndTheGrace) {
  // Watchers on nodes a and b; the user's tabs on b and c.
  auto stub_a = node(0).Stub();
  auto stub_b = node(1).Stub();
  EventReader on_a(*stub_a), on_b(*stub_b);
  auto tab_b = Client(1, "u-tabs2");
  auto tab_c = Client(2, "u-tabs2");
  ASSERT_TRUE(on_a.WaitFor(v1::EVENT_TYPE_CONNECT, tab_c->connection_id()));
  ASSERT_TRUE(on_b.WaitFor(v1::EVENT_TYPE_CONNECT, tab_c->connection_id()));
  ASSERT_TRUE(on_a.WaitForUser(v1::EVENT_TYPE_USER_ONLINE, "u-tabs2"));

  // One tab closes: its DISCONNECT follows the grace period (2 s), the user stays online.
  const std::string first_id = tab_b->connection_id();
  tab_b->Close();
  ASSERT_TRUE(tab_b->WaitClosed());
  ASSERT_TRUE(on_a.WaitFor(v1::EVENT_TYPE_DISCONNECT, first_id));
  // The last one closes: one USER_OFFLINE, after the grace period, for watchers on every node.
  const absl::Time last_closed = absl::Now();
  tab_c->Close();
  ASSERT_TRUE(tab_c->WaitClosed());
  for (EventReader* events : {&on_a, &on_b}) {
    ASSERT_TRUE(events->WaitForUser(v1::EVENT_TYPE_USER_OFFLINE, "u-tabs2"));
  }
  // A second node reporting it would do so at the same moment; give it time to (absence check).
  absl::SleepFor(absl::Milliseconds(500));
  for (EventReader* events : {&on_a, &on_b}) {
    std::vector<v1::Event> offline = events->OfUser(v1::EVENT_TYPE_USER_OFFLINE, "u-tabs2");
    ASSERT_EQ(offline.size(), 1u);
    // Not after the first close: only once the last tab's grace period ended.
    EXPECT_GE(absl::FromUnixMillis(offline[0].time_ms()),
              last_closed + absl::Seconds(2) - absl::Milliseconds(50));
    EXPECT_EQ(events->OfUser(v1::EVENT_TYPE_USER_ONLINE, "u-tabs2").size(), 1u);
  }

  // Back within the grace period on another node: neither offline nor online again.
  auto tab_a = Client(0, "u-tabs3");
  ASSERT_TRUE(on_b.WaitForUser(v1::EVENT_TYPE_USER_ONLINE, "u-tabs3"));
  tab_a->Close();
  ASSERT_TRUE(tab_a->WaitClosed());
  auto again = Client(2, "u-tabs3");
  ASSERT_TRUE(on_b.WaitFor(v1::EVENT_TYPE_CONNECT, again->connection_id()));
  absl::SleepFor(absl::Seconds(3));  // past the first tab's grace period (absence check)
  EXPECT_TRUE(on_b.OfUser(v1::EVENT_TYPE_USER_OFFLINE, "u-tabs3").empty());
  EXPECT_EQ(on_b.OfUser(v1::EVENT_TYPE_USER_ONLINE, "u-tabs3").size(), 1u);
}

// Whichever node reports a user offline, watchers on the node of their last connection get its
// DISCONNECT (held back by the grace period) first.
TEST_F(ThreeNodes, AUsersOfflineComesAfterTheDisconnectOfTheirLastConnectionOnItsNode) {
  std::vector<std::unique_ptr<v1::Broker::Stub>> stubs;
  std::vector<std::unique_ptr<EventReader>> readers;
  for (int i = 0; i < 3; ++i) {
    stubs.push_back(node(i).Stub());
    readers.push_back(std::make_unique<EventReader>(*stubs.back()));
  }
  EventReader& on_b = *readers[1];
  std::vector<std::unique_ptr<WsClient>> tabs;
  for (int i = 0; i < 6; ++i) {
    tabs.push_back(Client(1, absl::StrCat("u-order", i)));
    ASSERT_TRUE(on_b.WaitFor(v1::EVENT_TYPE_CONNECT, tabs.back()->connection_id()));
  }
  for (auto& tab : tabs) tab->Close();
  for (int i = 0; i < 6; ++i) {
    const std::string user = absl::StrCat("u-order", i);
    ASSERT_TRUE(on_b.WaitForUser(v1::EVENT_TYPE_USER_OFFLINE, user, absl::Seconds(15)));
    EXPECT_THAT(on_b.TypesOfUser(user),
                ::testing::ElementsAre(v1::EVENT_TYPE_CONNECT, v1::EVENT_TYPE_USER_ONLINE,
                                       v1::EVENT_TYPE_DISCONNECT, v1::EVENT_TYPE_USER_OFFLINE))
        << user;
  }
}

// A node drained with SIGTERM emits the DISCONNECTs it holds back (--disconnect-grace) before it
// exits: a watcher on another node gets the DISCONNECT of the drained connection, then the
// USER_OFFLINE of its user once the grace period passed.
TEST_F(ThreeNodes, ADrainedNodeEmitsItsHeldBackDisconnectsBeforeItExits) {
  auto stub_a = node(0).Stub();
  EventReader on_a(*stub_a);
  auto tab = Client(1, "u-drained");
  const std::string id = tab->connection_id();
  ASSERT_TRUE(on_a.WaitFor(v1::EVENT_TYPE_CONNECT, id));
  std::optional<int> code = node(1).Stop(SIGTERM);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  ASSERT_TRUE(tab->WaitClosed());
  EXPECT_EQ(tab->close_code(), 1001);
  std::optional<v1::Event> gone = on_a.WaitFor(v1::EVENT_TYPE_DISCONNECT, id, absl::Seconds(5));
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->code(), 1001u);
  ASSERT_TRUE(on_a.WaitForUser(v1::EVENT_TYPE_USER_OFFLINE, "u-drained", absl::Seconds(10)));
  EXPECT_THAT(on_a.TypesOfUser("u-drained"),
              ::testing::ElementsAre(v1::EVENT_TYPE_CONNECT, v1::EVENT_TYPE_USER_ONLINE,
                                     v1::EVENT_TYPE_DISCONNECT, v1::EVENT_TYPE_USER_OFFLINE));
}

TEST_F(ThreeNodes, TheUsersOfAKilledNodeGoOfflineWithinTheDeadNodeBoundAndTheGrace) {
  auto stub_a = node(0).Stub();
  EventReader events(*stub_a);
  auto only_on_c = Client(2, "u-killed");
  auto also_on_b = Client(2, "u-both");
  auto tab_b = Client(1, "u-both");
  ASSERT_TRUE(events.WaitForUser(v1::EVENT_TYPE_USER_ONLINE, "u-killed"));
  ASSERT_TRUE(events.WaitForUser(v1::EVENT_TYPE_USER_ONLINE, "u-both"));
  ASSERT_FALSE(node(2).Stop(SIGKILL).has_value());
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(events.WaitForUser(v1::EVENT_TYPE_USER_OFFLINE, "u-killed", absl::Seconds(15)));
  EXPECT_LE(absl::Now() - killed, kDeadNodeBound + absl::Seconds(2) + absl::Milliseconds(800));
  EXPECT_GE(absl::Now() - killed, absl::Seconds(2));
  absl::SleepFor(absl::Milliseconds(500));  // absence check: once, and not u-both (tab on b)
  EXPECT_EQ(events.OfUser(v1::EVENT_TYPE_USER_OFFLINE, "u-killed").size(), 1u);
  EXPECT_TRUE(events.OfUser(v1::EVENT_TYPE_USER_OFFLINE, "u-both").empty());
}

// A password in the URL authenticates; a wrong one is a refusal the log names (Redis answered),
// not an outage: the node still starts (after 5 s) and fails engine calls with UNAVAILABLE.
TEST(RedisAuth, APasswordInTheUrlAuthenticatesAndAWrongOneIsLoggedAsARefusal) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  ASSERT_EQ(redis.Command("CONFIG SET requirepass s3cret"), "+OK");
  const std::string at = absl::StrCat("@127.0.0.1:", redis.port(), "/0");
  HeraldProcess good({"--engine", "redis", "--redis-url", "redis://:s3cret" + at});
  ASSERT_TRUE(good.ok());
  v1::PublishResponse resp;
  auto stub = good.Stub();
  EXPECT_TRUE(Publish(*stub, "news", R"({"n":1})", &resp).ok());
  HeraldProcess bad({"--engine", "redis", "--redis-url", "redis://:wrong" + at});
  ASSERT_TRUE(bad.ok());
  EXPECT_THAT(bad.Stderr(),
              ::testing::HasSubstr("refused the command connection's handshake: AUTH: redis: "
                                   "WRONGPASS"));
  auto bad_stub = bad.Stub();
  EXPECT_EQ(Publish(*bad_stub, "news", R"({"n":2})", &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// The bound holds with the default heartbeat too, however the surviving node's heartbeats fall:
// a node that dies right after its heartbeat is counted gone within 100 ms of the dead-node bound
// (every node's due-users check reaps expired nodes), not at the next heartbeat of another node.
TEST(RedisUsersOffline, TheUsersOfANodeKilledRightAfterItsHeartbeatGoOfflineWithinTheBound) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  std::vector<std::unique_ptr<HeraldProcess>> nodes;
  for (const char* name : {"a", "b"}) {
    nodes.push_back(std::make_unique<HeraldProcess>(std::vector<std::string>{
        "--engine", "redis", "--redis-url", redis.url(), "--redis-prefix", "off", "--node", name,
        "--node-heartbeat-ms", "1000", "--jwt-hs256-secret", kSecret}));
    ASSERT_TRUE(nodes.back()->ok());
  }
  auto stub = nodes[0]->Stub();
  EventReader events(*stub);
  WsClient client;
  ASSERT_TRUE(client.Connect(nodes[1]->ws_url("?token=" + Token("u-gone"))));
  ASSERT_TRUE(events.WaitForUser(v1::EVENT_TYPE_USER_ONLINE, "u-gone"));
  // Node b's heartbeat score (its expiry) moves once a second: kill it just after a move.
  auto score = [&] {
    CommandResult r = RunCommand(
        {"/usr/bin/redis-cli", "-p", absl::StrCat(redis.port()), "ZSCORE", "{off}:nodes", "b"});
    return r.out;
  };
  const std::string first = score();
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(WaitFor([&] { return score() != first; }, absl::Seconds(3)));
  ASSERT_FALSE(nodes[1]->Stop(SIGKILL).has_value());
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(events.WaitForUser(v1::EVENT_TYPE_USER_OFFLINE, "u-gone", absl::Seconds(15)));
  // Documented: the dead-node bound (3 s) + 100 ms (+ no grace); here with 350 ms to spare.
  EXPECT_LE(absl::Now() - killed, absl::Milliseconds(3450));
  EXPECT_GE(absl::Now() - killed, absl::Milliseconds(2500));
}

// A node that hangs (SIGSTOP) past the dead-node bound is counted gone: its users go offline
// after the grace period. When it resumes, their connections are still there: they are online
// again, and watchers hear it.
TEST_F(ThreeNodes, TheUsersOfANodeThatHungAreOnlineAgainWhenItResumes) {
  auto stub_a = node(0).Stub();
  EventReader events(*stub_a);
  auto on_c = Client(2, "u-hung");
  ASSERT_TRUE(events.WaitForUser(v1::EVENT_TYPE_USER_ONLINE, "u-hung"));
  ASSERT_EQ(kill(node(2).pid(), SIGSTOP), 0);
  const bool offline = events.WaitForUser(v1::EVENT_TYPE_USER_OFFLINE, "u-hung", absl::Seconds(15));
  ASSERT_EQ(kill(node(2).pid(), SIGCONT), 0);
  ASSERT_TRUE(offline);
  ASSERT_TRUE(
      WaitFor([&] { return events.OfUser(v1::EVENT_TYPE_USER_ONLINE, "u-hung").size() == 2; }));
  std::vector<v1::Event> online = events.OfUser(v1::EVENT_TYPE_USER_ONLINE, "u-hung");
  EXPECT_GE(online[1].time_ms(), events.OfUser(v1::EVENT_TYPE_USER_OFFLINE, "u-hung")[0].time_ms());
  // Still connected, and counted so: no second offline past the grace period (absence check),
  // and the connection is listed again.
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(events.OfUser(v1::EVENT_TYPE_USER_OFFLINE, "u-hung").size(), 1u);
  EXPECT_EQ(events.OfUser(v1::EVENT_TYPE_USER_ONLINE, "u-hung").size(), 2u);
  EXPECT_TRUE(on_c->Subscribe("chat:back"));
}

TEST_F(ThreeNodes, AKilledNodesConnectionsAndPresenceLeaveWithinTheDeadNodeBound) {
  auto on_a = Client(0, "u-a");
  auto on_b = Client(1, "u-b");
  auto on_c1 = Client(2, "u-c1");
  auto on_c2 = Client(2, "u-c2");
  for (WsClient* ws : {on_a.get(), on_c1.get()}) ASSERT_TRUE(ws->Subscribe("chat:room"));
  ASSERT_EQ(ListAll(0).total(), 4u);
  auto present = [&] {
    grpc::ClientContext ctx;
    v1::PresenceRequest req;
    req.set_channel("chat:room");
    v1::PresenceResponse resp;
    EXPECT_TRUE(node(0).Stub()->Presence(&ctx, req, &resp).ok());
    std::set<std::string> users;
    for (const auto& c : resp.clients()) users.insert(absl::StrCat(c.user(), "@", c.node()));
    return users;
  };
  EXPECT_EQ(present(), (std::set<std::string>{"u-a@a", "u-c1@c"}));

  ASSERT_FALSE(node(2).Stop(SIGKILL).has_value());  // died from the signal
  const absl::Time killed = absl::Now();
  // At once its connections are not listed (it cannot answer); it is counted as missing until
  // its heartbeat lapses, then it is simply gone.
  v1::ListConnectionsResponse now = ListAll(0);
  EXPECT_EQ(Nodes(now), (std::map<std::string, std::string>{{on_a->connection_id(), "a"},
                                                            {on_b->connection_id(), "b"}}));
  ASSERT_TRUE(WaitFor([&] {
    v1::ListConnectionsResponse list = ListAll(0);
    return list.missing_nodes() == 0 && list.total() == 2u;
  })) << "node c is still counted";
  // Within the bound, give or take one listing that waited for node c (the control timeout).
  EXPECT_LE(absl::Now() - killed,
            kDeadNodeBound + absl::Milliseconds(kControlTimeoutMs) + absl::Milliseconds(500));
  EXPECT_EQ(present(), (std::set<std::string>{"u-a@a"}));
  EXPECT_LE(absl::Now() - killed,
            kDeadNodeBound + absl::Milliseconds(kControlTimeoutMs) + absl::Milliseconds(700));
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(node(0).Stub()->Stats(&ctx, v1::StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.nodes_size(), 2);
  EXPECT_EQ(stats.connections(), 2u);
}

}  // namespace
}  // namespace herald::testing
