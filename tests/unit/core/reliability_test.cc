// Recovery, snapshots, idempotency, acks, task dispatch and events, through the Hub with fake
// sessions and a fake clock.
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = v1::ServerFrame::KindCase;

class ReliabilityTest : public ::testing::Test {
 protected:
  ReliabilityTest()
      : engine_(MakeLimits(), [this] { return Now(); }),
        hub_(MakeLimits(), "n1", &engine_, &frames_, nullptr, [this] { return Now(); }) {}

  static Limits MakeLimits() {
    Limits l;
    l.history.size = 10;
    l.idempotency_window = absl::Seconds(60);
    l.max_tasks_per_worker = 2;
    l.max_queue_depth = 3;
    l.disconnect_grace = absl::Seconds(5);
    l.order_retention = absl::Seconds(30);
    return l;
  }

  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    {
      absl::MutexLock lock(&clock_mu_);
      now_ += d;
    }
    hub_.Tick();
  }

  std::shared_ptr<FakeSession> Connect(const std::string& user = "") {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId(), user);
    EXPECT_TRUE(hub_.Register(s).ok());
    return s;
  }

  v1::PublishResponse Publish(const std::string& channel, double n, const std::string& key = "") {
    v1::PublishRequest req;
    req.set_channel(channel);
    req.mutable_data()->set_number_value(n);
    req.set_idempotency_key(key);
    auto r = hub_.Publish(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  static std::vector<double> Values(const google::protobuf::RepeatedPtrField<v1::Publication>& p) {
    std::vector<double> out;
    for (const auto& x : p) out.push_back(x.data().number_value());
    return out;
  }

  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromUnixSeconds(2000000);
  engine::MemoryEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_F(ReliabilityTest, ResubscribeWithRecoverGetsExactlyTheMissedPublications) {
  auto a = Connect();
  hub_.OnClientFrame(a, R"({"id":1,"subscribe":{"channel":"c1"}})");
  v1::Subscribed first = a->Last().subscribed();
  Publish("c1", 1);
  Publish("c1", 2);
  hub_.Unregister(*a);  // the page went away after offset 2
  Publish("c1", 3);
  Publish("c1", 4);
  auto b = Connect();
  hub_.OnClientFrame(b, absl::StrCat(R"({"id":5,"subscribe":{"channel":"c1","recover":{"epoch":")",
                                     first.epoch(), R"(","offset":"2"}}})"));
  v1::ServerFrame reply = b->Last();
  ASSERT_EQ(reply.kind_case(), Kind::kSubscribed);
  EXPECT_EQ(reply.id(), 5u);
  EXPECT_TRUE(reply.subscribed().recovered());
  EXPECT_EQ(reply.subscribed().offset(), 4u);
  EXPECT_THAT(Values(reply.subscribed().publications()), ElementsAre(3, 4));
  Publish("c1", 5);
  EXPECT_EQ(b->Last().pub().offset(), 5u);  // live continues with no gap

  auto c = Connect();
  hub_.OnClientFrame(
      c, R"({"id":6,"subscribe":{"channel":"c1","recover":{"epoch":"gone","offset":"2"}}})");
  EXPECT_FALSE(c->Last().subscribed().recovered());
  EXPECT_TRUE(c->Last().subscribed().publications().empty());
  EXPECT_EQ(c->Last().subscribed().offset(), 5u);
  // On the wire, as documented: a client testing `recovered === false` sees it.
  EXPECT_THAT(c->Frames().back(), HasSubstr(R"("recovered":false)"));
  EXPECT_THAT(
      b->Frames()[b->Frames().size() - 2],
      HasSubstr(R"("recovered":true,"publications":[{"channel":"c1","offset":"3","data":)"));
  // Without `recover`, no `recovered` at all.
  EXPECT_THAT(a->Frames()[1], Not(HasSubstr("recovered")));
}

// The lists a subscribe asked for are on the wire even when empty: a client may iterate them.
TEST_F(ReliabilityTest, AskedForListsArePresentWhenEmpty) {
  auto a = Connect();
  hub_.OnClientFrame(a, R"({"id":1,"subscribe":{"channel":"store:9","snapshot":true}})");
  EXPECT_THAT(a->Frames().back(), HasSubstr(R"("offset":"0","snapshot":[]}})"));
  const std::string epoch = a->Last().subscribed().epoch();
  auto b = Connect();
  hub_.OnClientFrame(
      b, absl::StrCat(R"({"id":2,"subscribe":{"channel":"store:9","recover":{"epoch":")", epoch,
                      R"(","offset":"0"}}})"));
  EXPECT_THAT(b->Frames().back(), HasSubstr(R"("recovered":true,"publications":[]}})"));
  // Neither list when neither was asked for.
  auto c = Connect();
  hub_.OnClientFrame(c, R"({"id":3,"subscribe":{"channel":"store:9"}})");
  EXPECT_THAT(c->Frames().back(), Not(HasSubstr("snapshot")));
  EXPECT_THAT(c->Frames().back(), Not(HasSubstr("publications")));
}

TEST_F(ReliabilityTest, SnapshotReturnsOpenOrdersThenLiveUpdates) {
  auto order = [&](const std::string& id, uint64_t v, v1::OrderStatus status) {
    v1::PublishOrderRequest req;
    req.mutable_order()->set_id(id);
    req.mutable_order()->set_version(v);
    req.mutable_order()->set_store_id("42");
    req.mutable_order()->set_status(status);
    ASSERT_TRUE(hub_.PublishOrder(req).ok());
  };
  order("o1", 1, v1::ORDER_STATUS_CREATED);
  order("o2", 1, v1::ORDER_STATUS_CREATED);
  order("o1", 2, v1::ORDER_STATUS_ACCEPTED);
  order("o3", 1, v1::ORDER_STATUS_CANCELLED);
  Advance(absl::Seconds(31));  // o3 is terminal and past retention
  auto board = Connect();
  hub_.OnClientFrame(board, R"({"id":1,"subscribe":{"channel":"store:42","snapshot":true}})");
  v1::Subscribed sub = board->Last().subscribed();
  ASSERT_EQ(sub.snapshot_size(), 2);
  EXPECT_EQ(sub.snapshot(0).data().struct_value().fields().at("id").string_value(), "o2");
  EXPECT_EQ(sub.snapshot(1).data().struct_value().fields().at("id").string_value(), "o1");
  EXPECT_EQ(sub.snapshot(1).data().struct_value().fields().at("version").string_value(), "2");
  EXPECT_EQ(sub.offset(), 4u);
  order("o2", 2, v1::ORDER_STATUS_READY);
  EXPECT_EQ(board->Last().pub().offset(), 5u);
}

TEST_F(ReliabilityTest, IdempotencyKeyPublishesOnceWithinTheWindow) {
  auto a = Connect();
  hub_.OnClientFrame(a, R"({"subscribe":{"channel":"c"}})");
  v1::PublishResponse first = Publish("c", 1, "k1");
  v1::PublishResponse again = Publish("c", 1, "k1");
  EXPECT_FALSE(first.duplicate());
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.delivery().offset(), first.delivery().offset());
  EXPECT_EQ(a->OfKind(Kind::kPub).size(), 1u);
  EXPECT_FALSE(Publish("other", 1, "k1").duplicate());  // keys are per channel
  Advance(absl::Seconds(61));
  v1::PublishResponse later = Publish("c", 1, "k1");
  EXPECT_FALSE(later.duplicate());
  EXPECT_EQ(later.delivery().offset(), first.delivery().offset() + 1);
}

// The reply of a publish that finishes by completion; fills `out` and notifies when it does.
struct Reply {
  absl::Notification done;
  absl::StatusOr<v1::PublishResponse> result;
  TestHub::Done<v1::PublishResponse> Completion() {
    return [this](absl::StatusOr<v1::PublishResponse> r) {
      result = std::move(r);
      done.Notify();
    };
  }
};

// A publication that asked for an ack, missed while the client was away, asks again when it is
// recovered, and the recovered copy's ack ends the publish call's wait.
TEST_F(ReliabilityTest, ARecoveredPublicationAsksForItsAckAndTheAckCounts) {
  auto away = Connect("alice");
  hub_.OnClientFrame(away, R"({"id":1,"subscribe":{"channel":"customer:alice"}})");
  const std::string epoch = away->Last().subscribed().epoch();
  hub_.Unregister(*away);
  v1::PublishRequest req;
  req.set_channel("customer:alice");
  req.mutable_data()->set_string_value("your order is here");
  req.mutable_ack()->set_wait_ms(5000);
  Reply acked;
  hub_.Publish(req, acked.Completion());
  auto back = Connect("alice");
  hub_.OnClientFrame(back,
                     absl::StrCat(R"({"id":2,"subscribe":{"channel":"customer:alice","recover":)",
                                  R"({"epoch":")", epoch, R"(","offset":"0"}}})"));
  EXPECT_THAT(back->Frames().back(),
              HasSubstr(R"("recovered":true,"publications":[{"channel":"customer:alice",)"
                        R"("offset":"1","data":"your order is here","ackRequested":true}])"));
  EXPECT_FALSE(acked.done.HasBeenNotified());
  hub_.OnClientFrame(back, R"({"id":3,"ack":{"channel":"customer:alice","offset":"1"}})");
  ASSERT_TRUE(acked.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(acked.result.ok()) << acked.result.status();
  EXPECT_TRUE(acked.result->ack().acked());
  EXPECT_EQ(acked.result->ack().connection_id(), back->id());
}

TEST_F(ReliabilityTest, AckWaitReportsTheFirstAckOfTheUser) {
  auto phone = Connect("alice");
  hub_.OnClientFrame(phone, R"({"subscribe":{"channel":"customer:alice"}})");
  std::thread client([&] {
    // Acks once the publication (with ackRequested) arrives.
    for (int i = 0; i < 2000; ++i) {
      auto pubs = phone->OfKind(Kind::kPub);
      if (!pubs.empty()) {
        EXPECT_TRUE(pubs[0].pub().ack_requested());
        hub_.OnClientFrame(phone,
                           absl::StrCat(R"({"id":9,"ack":{"channel":"customer:alice","offset":")",
                                        pubs[0].pub().offset(), R"("}})"));
        return;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  v1::PublishRequest req;
  req.set_channel("customer:alice");
  req.mutable_data()->set_string_value("your order is here");
  req.mutable_ack()->set_wait_ms(5000);
  req.mutable_ack()->set_user("alice");
  Reply acked;
  hub_.Publish(req, acked.Completion());
  ASSERT_TRUE(acked.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  client.join();
  auto& r = acked.result;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ack().acked());
  EXPECT_EQ(r->ack().connection_id(), phone->id());
  EXPECT_EQ(r->ack().offset(), r->delivery().offset());
  EXPECT_EQ(phone->Last().kind_case(), Kind::kAcked);

  req.mutable_ack()->set_wait_ms(20);  // nobody acks this one
  Reply unacked;
  hub_.Publish(req, unacked.Completion());
  Advance(absl::Milliseconds(20));  // the wait ends at the tick after its deadline
  ASSERT_TRUE(unacked.done.HasBeenNotified());
  ASSERT_TRUE(unacked.result.ok());
  EXPECT_FALSE(unacked.result->ack().acked());
  req.mutable_ack()->set_wait_ms(60000);
  Reply too_long;
  hub_.Publish(req, too_long.Completion());
  ASSERT_TRUE(too_long.done.HasBeenNotified());
  EXPECT_THAT(std::string(too_long.result.status().message()), HasSubstr("ack.wait_ms"));
}

TEST_F(ReliabilityTest, AnAckWaitHoldsNoThreadAndEndsAtTheFirstTickAfterItsDeadline) {
  auto phone = Connect("alice");
  hub_.OnClientFrame(phone, R"({"subscribe":{"channel":"customer:alice"}})");
  v1::PublishRequest req;
  req.set_channel("customer:alice");
  req.mutable_data()->set_string_value("are you there?");
  req.mutable_ack()->set_wait_ms(3000);
  Reply reply;
  hub_.Publish(req, reply.Completion());
  // Publish returned with the wait pending, and the publication is already out.
  EXPECT_FALSE(reply.done.HasBeenNotified());
  ASSERT_EQ(phone->OfKind(Kind::kPub).size(), 1u);
  EXPECT_TRUE(phone->OfKind(Kind::kPub)[0].pub().ack_requested());
  Advance(absl::Milliseconds(2999));
  EXPECT_FALSE(reply.done.HasBeenNotified());
  Advance(absl::Milliseconds(1));
  ASSERT_TRUE(reply.done.HasBeenNotified());
  ASSERT_TRUE(reply.result.ok());
  EXPECT_FALSE(reply.result->ack().acked());
  EXPECT_EQ(reply.result->delivery().queued(), 1u);
  // A late ack changes nothing and is still answered.
  hub_.OnClientFrame(phone, absl::StrCat(R"({"id":4,"ack":{"channel":"customer:alice","offset":")",
                                         reply.result->delivery().offset(), R"("}})"));
  EXPECT_EQ(phone->Last().kind_case(), Kind::kAcked);
}

TEST_F(ReliabilityTest, AnAckWaitCompletesWithNoHubLockHeld) {
  auto phone = Connect("alice");
  hub_.OnClientFrame(phone, R"({"subscribe":{"channel":"customer:alice"}})");
  v1::PublishRequest req;
  req.set_channel("customer:alice");
  req.mutable_data()->set_string_value("first");
  req.mutable_ack()->set_wait_ms(1000);
  // The completion calls back into the hub — another publish that waits, and Stats — which
  // would deadlock if it ran under a lock the hub or its ack waits hold.
  Reply second;
  absl::Notification first_done;
  hub_.Publish(req, [&](absl::StatusOr<v1::PublishResponse> r) {
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->ack().acked());
    EXPECT_TRUE(hub_.Stats({}).ok());
    v1::PublishRequest again = req;
    again.mutable_data()->set_string_value("second");
    hub_.Publish(again, second.Completion());
    first_done.Notify();
  });
  auto ack = [&](uint64_t offset) {
    hub_.OnClientFrame(
        phone, absl::StrCat(R"({"ack":{"channel":"customer:alice","offset":")", offset, R"("}})"));
  };
  ack(phone->OfKind(Kind::kPub).back().pub().offset());
  ASSERT_TRUE(first_done.HasBeenNotified());
  EXPECT_FALSE(second.done.HasBeenNotified());
  ack(phone->OfKind(Kind::kPub).back().pub().offset());
  ASSERT_TRUE(second.done.HasBeenNotified());
  EXPECT_TRUE(second.result->ack().acked());
}

TEST_F(ReliabilityTest, StaleOrdersAndDuplicatesDoNotWaitForAnAck) {
  v1::PublishOrderRequest order;
  order.mutable_order()->set_id("o1");
  order.mutable_order()->set_store_id("s1");
  order.mutable_order()->set_version(2);
  order.mutable_order()->set_status(v1::ORDER_STATUS_ACCEPTED);
  ASSERT_TRUE(hub_.PublishOrder(order).ok());
  order.mutable_ack()->set_wait_ms(5000);
  order.mutable_order()->set_version(1);
  bool stale_done = false;
  hub_.PublishOrder(order, [&](absl::StatusOr<v1::PublishOrderResponse> r) {
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->stale());
    EXPECT_FALSE(r->ack().acked());
    stale_done = true;
  });
  EXPECT_TRUE(stale_done);

  Publish("c", 1, "k1");
  v1::PublishRequest again;
  again.set_channel("c");
  again.mutable_data()->set_number_value(1);
  again.set_idempotency_key("k1");
  again.mutable_ack()->set_wait_ms(5000);
  Reply duplicate;
  hub_.Publish(again, duplicate.Completion());
  ASSERT_TRUE(duplicate.done.HasBeenNotified());
  EXPECT_TRUE(duplicate.result->duplicate());
  // The synchronous form has nowhere to deliver a later reply, so it refuses to wait.
  EXPECT_THAT(std::string(hub_.Publish(again).status().message()), HasSubstr("ack.wait_ms"));
}

TEST_F(ReliabilityTest, EndAckWaitsAnswersEveryPendingAndLaterWaitAtOnce) {
  v1::PublishRequest req;
  req.set_channel("nobody-acks");
  req.mutable_data()->set_string_value("x");
  req.mutable_ack()->set_wait_ms(30000);
  Reply pending;
  hub_.Publish(req, pending.Completion());
  EXPECT_FALSE(pending.done.HasBeenNotified());
  hub_.EndAckWaits();
  ASSERT_TRUE(pending.done.HasBeenNotified());
  EXPECT_FALSE(pending.result->ack().acked());
  Reply later;
  hub_.Publish(req, later.Completion());
  ASSERT_TRUE(later.done.HasBeenNotified());
  EXPECT_FALSE(later.result->ack().acked());
}

class TaskTest : public ReliabilityTest {
 protected:
  v1::DispatchTaskResponse Dispatch(const std::string& queue, const std::string& what,
                                    uint32_t deadline_ms = 1000, uint32_t ttl_ms = 60000) {
    v1::DispatchTaskRequest req;
    req.set_queue(queue);
    req.mutable_data()->set_string_value(what);
    req.set_ack_deadline_ms(deadline_ms);
    req.set_ttl_ms(ttl_ms);
    auto r = hub_.DispatchTask(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::DispatchTaskResponse();
  }
  void JoinQueue(const std::shared_ptr<FakeSession>& s, const std::string& queue) {
    hub_.OnClientFrame(s, absl::StrCat(R"({"id":1,"join":{"queue":")", queue, R"("}})"));
  }
  std::vector<v1::Task> Tasks(const std::shared_ptr<FakeSession>& s) {
    std::vector<v1::Task> out;
    for (auto& f : s->OfKind(Kind::kTask)) out.push_back(f.task());
    return out;
  }
  void Ack(const std::shared_ptr<FakeSession>& s, const std::string& delivery) {
    hub_.OnClientFrame(s, absl::StrCat(R"({"id":2,"ack":{"deliveryId":")", delivery, R"("}})"));
  }
};

TEST_F(TaskTest, EachTaskGoesToExactlyOneWorkerLeastBusyFirst) {
  auto w1 = Connect("w1"), w2 = Connect("w2");
  JoinQueue(w1, "couriers");
  JoinQueue(w2, "couriers");
  EXPECT_EQ(w1->OfKind(Kind::kJoined).size(), 1u);
  v1::DispatchTaskResponse t1 = Dispatch("couriers", "a");
  v1::DispatchTaskResponse t2 = Dispatch("couriers", "b");
  EXPECT_NE(t1.assigned_connection_id(), t2.assigned_connection_id());
  EXPECT_EQ(Tasks(w1).size() + Tasks(w2).size(), 2u);
  EXPECT_EQ(Tasks(w1).size(), 1u);
  v1::Task task = Tasks(w1)[0];
  EXPECT_EQ(task.queue(), "couriers");
  EXPECT_EQ(task.attempt(), 1u);
  EXPECT_EQ(task.ack_deadline_ms(), 1000u);
  Ack(w1, task.delivery_id());
  EXPECT_EQ(w1->Last().kind_case(), Kind::kAcked);
  auto queues = hub_.ListQueues({});
  ASSERT_EQ(queues->queues_size(), 1);
  EXPECT_EQ(queues->queues(0).acked(), 1u);
  EXPECT_EQ(queues->queues(0).in_flight_size(), 1);
  EXPECT_EQ(queues->queues(0).workers(), 2u);
  // A second ack of the same delivery is an error.
  Ack(w1, task.delivery_id());
  EXPECT_EQ(w1->Last().error().code(), "NOT_FOUND");
}

TEST_F(TaskTest, MissedDeadlineNackAndDisconnectRedeliverToAnotherWorker) {
  auto w1 = Connect("w1"), w2 = Connect("w2");
  JoinQueue(w1, "q");
  Dispatch("q", "x");
  ASSERT_EQ(Tasks(w1).size(), 1u);
  JoinQueue(w2, "q");
  Advance(absl::Milliseconds(1001));  // deadline passed
  ASSERT_EQ(Tasks(w2).size(), 1u);
  EXPECT_EQ(Tasks(w2)[0].attempt(), 2u);
  EXPECT_NE(Tasks(w2)[0].delivery_id(), Tasks(w1)[0].delivery_id());
  // The late worker's ack no longer counts.
  Ack(w1, Tasks(w1)[0].delivery_id());
  EXPECT_EQ(w1->Last().error().code(), "NOT_FOUND");

  hub_.OnClientFrame(
      w2, absl::StrCat(R"({"nack":{"deliveryId":")", Tasks(w2)[0].delivery_id(), R"("}})"));
  ASSERT_EQ(Tasks(w1).size(), 2u);
  EXPECT_EQ(Tasks(w1)[1].attempt(), 3u);
  hub_.Unregister(*w1);  // the worker's tab closed
  ASSERT_EQ(Tasks(w2).size(), 2u);
  EXPECT_EQ(Tasks(w2)[1].attempt(), 4u);
  EXPECT_EQ(hub_.ListQueues({})->queues(0).redelivered(), 3u);
}

TEST_F(TaskTest, TasksWaitForAWorkerBoundedAndExpire) {
  Dispatch("q", "1", 1000, 10000);
  Dispatch("q", "2", 1000, 10000);
  v1::DispatchTaskResponse r = Dispatch("q", "3", 1000, 100);
  EXPECT_TRUE(r.assigned_connection_id().empty());
  EXPECT_EQ(r.queue_depth(), 3u);
  v1::DispatchTaskRequest over;
  over.set_queue("q");
  over.mutable_data()->set_string_value("4");
  EXPECT_EQ(hub_.DispatchTask(over).status().code(), absl::StatusCode::kResourceExhausted);
  Advance(absl::Milliseconds(200));  // task 3 expired while waiting
  EXPECT_EQ(hub_.ListQueues({})->queues(0).expired(), 1u);
  auto w = Connect("w");
  JoinQueue(w, "q");
  // At most max_tasks_per_worker (2) at once; both waiting tasks arrive, in order.
  ASSERT_EQ(Tasks(w).size(), 2u);
  EXPECT_EQ(Tasks(w)[0].data().string_value(), "1");
  EXPECT_EQ(Tasks(w)[1].data().string_value(), "2");
  Dispatch("q", "5");
  EXPECT_EQ(Tasks(w).size(), 2u);  // full: task 5 waits
  Ack(w, Tasks(w)[0].delivery_id());
  ASSERT_EQ(Tasks(w).size(), 3u);
  EXPECT_EQ(Tasks(w)[2].data().string_value(), "5");
}

// Task events wake WatchEvents writers only after the dispatcher's mutex is released: a watcher
// whose wake-up calls back into the dispatcher (as a transport may) would deadlock otherwise.
// Events still arrive in order.
TEST_F(TaskTest, TaskEventsWakeWatchersWithNoDispatcherLockHeld) {
  v1::WatchEventsRequest req;
  std::shared_ptr<core::EventWatcher> watcher;
  int wakeups = 0;
  auto w = hub_.Watch(req, [&] {
    ++wakeups;
    EXPECT_TRUE(hub_.ListQueues({}).ok());
  });
  ASSERT_TRUE(w.ok());
  watcher = *w;
  auto worker = Connect("w");
  JoinQueue(worker, "q");
  Dispatch("q", "x", 1000, 5000);
  Advance(absl::Milliseconds(1001));  // redelivered (to the same, only worker)
  Ack(worker, Tasks(worker).back().delivery_id());
  Dispatch("q", "y", 1000, 100);
  Advance(absl::Milliseconds(150));  // expires in flight
  std::vector<v1::EventType> types;
  while (auto e = watcher->Pop()) {
    if (!e->queue().empty()) types.push_back(e->type());
  }
  EXPECT_THAT(types,
              ::testing::ElementsAre(v1::EVENT_TYPE_TASK_ASSIGNED, v1::EVENT_TYPE_TASK_REDELIVERED,
                                     v1::EVENT_TYPE_TASK_ASSIGNED, v1::EVENT_TYPE_TASK_ACKED,
                                     v1::EVENT_TYPE_TASK_ASSIGNED, v1::EVENT_TYPE_TASK_EXPIRED));
  EXPECT_GE(wakeups, 6);
  hub_.Unwatch(watcher.get());
}

TEST_F(ReliabilityTest, WatchersSeeFilteredEventsAndAreToldWhatTheyDropped) {
  v1::WatchEventsRequest all;  // the session events (not USER_ONLINE)
  for (v1::EventType t : {v1::EVENT_TYPE_CONNECT, v1::EVENT_TYPE_SUBSCRIBE, v1::EVENT_TYPE_MESSAGE,
                          v1::EVENT_TYPE_UNSUBSCRIBE}) {
    all.add_types(t);
  }
  all.set_buffer(3);
  auto watcher = hub_.Watch(all, nullptr);
  ASSERT_TRUE(watcher.ok());
  v1::WatchEventsRequest msgs;
  msgs.add_types(v1::EVENT_TYPE_MESSAGE);
  auto only_messages = hub_.Watch(msgs, nullptr);
  auto a = Connect("alice");
  hub_.OnClientFrame(a, R"({"subscribe":{"channel":"c"}})");
  hub_.OnClientFrame(a, R"({"message":{"data":{"hi":1}}})");
  hub_.OnClientFrame(a, R"({"unsubscribe":{"channel":"c"}})");  // dropped: buffer of 3 is full
  std::vector<v1::EventType> types;
  while (auto e = (*watcher)->Pop()) types.push_back(e->type());
  EXPECT_THAT(
      types, ElementsAre(v1::EVENT_TYPE_CONNECT, v1::EVENT_TYPE_SUBSCRIBE, v1::EVENT_TYPE_MESSAGE));
  hub_.OnClientFrame(a, R"({"subscribe":{"channel":"d"}})");
  auto next = (*watcher)->Pop();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->dropped_before(), 1u);
  EXPECT_EQ(next->channel(), "d");
  auto m = (*only_messages)->Pop();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type(), v1::EVENT_TYPE_MESSAGE);
  EXPECT_EQ(m->user(), "alice");
  EXPECT_EQ(m->data().struct_value().fields().at("hi").number_value(), 1);
  EXPECT_FALSE((*only_messages)->Pop().has_value());
  v1::WatchEventsRequest bad;
  bad.add_types(v1::EVENT_TYPE_UNSPECIFIED);
  EXPECT_THAT(std::string(hub_.Watch(bad, nullptr).status().message()), HasSubstr("types[0]"));
}

TEST_F(ReliabilityTest, DisconnectEventIsHeldForTheGracePeriod) {
  v1::WatchEventsRequest req;
  req.add_types(v1::EVENT_TYPE_DISCONNECT);
  auto watcher = *hub_.Watch(req, nullptr);
  auto a = Connect("alice");
  hub_.Unregister(*a, 1001, "page refresh");
  auto again = Connect("alice");  // back within the grace period
  Advance(absl::Seconds(6));
  EXPECT_FALSE(watcher->Pop().has_value());
  hub_.Unregister(*again, 1000, "bye");
  Advance(absl::Seconds(4));
  EXPECT_FALSE(watcher->Pop().has_value());
  Advance(absl::Seconds(2));
  auto e = watcher->Pop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->connection_id(), again->id());
  EXPECT_EQ(e->code(), 1000u);
  EXPECT_EQ(e->reason(), "bye");
  auto anon = Connect();
  hub_.Unregister(*anon, 1006, "");
  EXPECT_TRUE(watcher->Pop().has_value());  // anonymous: not held
}

}  // namespace
}  // namespace herald::core
