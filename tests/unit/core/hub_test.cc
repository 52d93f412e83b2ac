#include "server/core/hub.h"
#include "tests/support/test_hub.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/engine/memory_engine.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::herald::testing::StringFrameFactory;
using ::herald::testing::TestHub;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Kind = v1::ServerFrame::KindCase;

google::protobuf::Value Json(const std::string& text) {
  google::protobuf::Value v;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &v).ok()) << text;
  return v;
}

v1::Order MakeOrder(const std::string& id, uint64_t version, const std::string& store,
                    const std::string& customer,
                    v1::OrderStatus status = v1::ORDER_STATUS_CREATED) {
  v1::Order o;
  o.set_id(id);
  o.set_version(version);
  o.set_store_id(store);
  o.set_customer_id(customer);
  o.set_status(status);
  o.mutable_total()->set_minor_units(1250);
  o.mutable_total()->set_currency("EUR");
  return o;
}

class HubTest : public ::testing::Test {
 protected:
  HubTest() : engine_(MakeLimits()), hub_(MakeLimits(), "n1", &engine_, &frames_) {}

  static Limits MakeLimits() {
    Limits l;
    l.max_subscriptions_per_connection = 3;
    l.max_page_size = 50;
    return l;
  }

  std::shared_ptr<FakeSession> Connect(const std::string& user = "",
                                       const std::string& remote = "10.0.0.1:5000") {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId(), user, remote);
    EXPECT_TRUE(hub_.Register(s).ok());
    return s;
  }

  void Send(const std::shared_ptr<FakeSession>& s, const std::string& text) {
    hub_.OnClientFrame(s, text);
  }

  void ClientSubscribe(const std::shared_ptr<FakeSession>& s, const std::string& channel) {
    Send(s, R"({"id":9,"subscribe":{"channel":")" + channel + R"("}})");
    ASSERT_EQ(s->Last().kind_case(), Kind::kSubscribed) << s->Frames().back();
  }

  engine::MemoryEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_F(HubTest, RegisterSendsWelcomeWithIdAndLimits) {
  auto s = Connect();
  auto welcome = s->OfKind(Kind::kWelcome);
  ASSERT_EQ(welcome.size(), 1u);
  EXPECT_EQ(welcome[0].welcome().connection_id(), s->id());
  EXPECT_EQ(welcome[0].welcome().node(), "n1");
  EXPECT_EQ(welcome[0].welcome().max_subscriptions(), 3u);
  EXPECT_THAT(s->Frames()[0], HasSubstr(R"("connectionId")"));
}

TEST_F(HubTest, ConnectionIdsAreUniqueAndSortable) {
  std::string a = hub_.NextConnectionId(), b = hub_.NextConnectionId();
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_THAT(a, ::testing::StartsWith("n1-"));
}

TEST_F(HubTest, SubscribeRepliesWithIdAndPosition) {
  auto s = Connect();
  Send(s, R"({"id":7,"subscribe":{"channel":"store:42"}})");
  v1::ServerFrame reply = s->Last();
  ASSERT_EQ(reply.kind_case(), Kind::kSubscribed);
  EXPECT_EQ(reply.id(), 7u);
  EXPECT_EQ(reply.subscribed().channel(), "store:42");
  EXPECT_EQ(reply.subscribed().offset(), 0u);
  EXPECT_FALSE(reply.subscribed().epoch().empty());
}

TEST_F(HubTest, PublishReachesOnlySubscribersOnceWithIncreasingOffsets) {
  auto a = Connect(), b = Connect(), c = Connect();
  ClientSubscribe(a, "news");
  ClientSubscribe(b, "news");
  ClientSubscribe(c, "other");
  v1::PublishRequest req;
  req.set_channel("news");
  *req.mutable_data() = Json(R"({"headline":"hi","n":1})");
  auto r1 = hub_.Publish(req);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->delivery().queued(), 2u);
  EXPECT_EQ(r1->delivery().offset(), 1u);
  auto r2 = hub_.Publish(req);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->delivery().offset(), 2u);
  EXPECT_EQ(r1->delivery().epoch(), r2->delivery().epoch());

  for (auto& s : {a, b}) {
    auto pubs = s->OfKind(Kind::kPub);
    ASSERT_EQ(pubs.size(), 2u);
    EXPECT_EQ(pubs[0].pub().channel(), "news");
    EXPECT_EQ(pubs[0].pub().offset(), 1u);
    EXPECT_EQ(pubs[1].pub().offset(), 2u);
    EXPECT_EQ(pubs[0].pub().data().struct_value().fields().at("headline").string_value(), "hi");
  }
  EXPECT_TRUE(c->OfKind(Kind::kPub).empty());
}

// A LoopExecutor that keeps posted work per loop until the test runs it, like I/O threads
// that have not got to it yet.
class QueuedLoops : public LoopExecutor {
 public:
  void Post(uint32_t loop, std::function<void()> work) override {
    queues_[loop].push_back(std::move(work));
  }
  size_t pending(uint32_t loop) { return queues_[loop].size(); }
  void Run(uint32_t loop) {
    std::vector<std::function<void()>> work;
    work.swap(queues_[loop]);
    for (auto& w : work) w();
  }

 private:
  std::map<uint32_t, std::vector<std::function<void()>>> queues_;
};

TEST_F(HubTest, FanOutRunsOnEachSubscribersShardAndSkipsThoseWhoLeft) {
  QueuedLoops loops;
  hub_.SetLoopExecutor(&loops);
  std::vector<std::shared_ptr<FakeSession>> subs;
  for (uint32_t i = 0; i < 4; ++i) {
    subs.push_back(std::make_shared<FakeSession>(hub_.NextConnectionId(), "", "10.0.0.1:1", i % 2));
    ASSERT_TRUE(hub_.Register(subs.back()).ok());
    ClientSubscribe(subs.back(), "news");
  }
  v1::PublishRequest req;
  req.set_channel("news");
  *req.mutable_data() = Json(R"({"n":1})");
  auto r = hub_.Publish(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->delivery().queued(), 4u);
  // One task per loop, nothing sent before the loop's thread runs it.
  EXPECT_EQ(loops.pending(0), 1u);
  EXPECT_EQ(loops.pending(1), 1u);
  for (auto& s : subs) EXPECT_TRUE(s->OfKind(Kind::kPub).empty());
  loops.Run(0);
  EXPECT_EQ(subs[0]->OfKind(Kind::kPub).size(), 1u);
  EXPECT_EQ(subs[2]->OfKind(Kind::kPub).size(), 1u);
  EXPECT_TRUE(subs[1]->OfKind(Kind::kPub).empty());
  // subs[3] unsubscribes before its loop gets to the publication: no pub after `unsubscribed`.
  Send(subs[3], R"({"id":10,"unsubscribe":{"channel":"news"}})");
  ASSERT_EQ(subs[3]->Last().kind_case(), Kind::kUnsubscribed);
  loops.Run(1);
  EXPECT_EQ(subs[1]->OfKind(Kind::kPub).size(), 1u);
  EXPECT_TRUE(subs[3]->OfKind(Kind::kPub).empty());
  hub_.SetLoopExecutor(nullptr);
}

// Publications that reach a loop before it ran the last fan-out join that task (one task, not
// one per publication), and every subscriber still gets them in order; a publication of another
// channel in between starts a new task, so the loop's work keeps its posting order.
TEST_F(HubTest, PublicationsWaitingForALoopShareOneTaskInOrder) {
  QueuedLoops loops;
  hub_.SetLoopExecutor(&loops);
  std::vector<std::shared_ptr<FakeSession>> subs;
  for (uint32_t i = 0; i < 2; ++i) {
    subs.push_back(std::make_shared<FakeSession>(hub_.NextConnectionId(), "", "10.0.0.1:1", 0));
    ASSERT_TRUE(hub_.Register(subs.back()).ok());
    ClientSubscribe(subs.back(), "news");
  }
  ClientSubscribe(subs[0], "sport");
  auto publish = [&](const std::string& channel, int n) {
    v1::PublishRequest req;
    req.set_channel(channel);
    *req.mutable_data() = Json(absl::StrCat(R"({"n":)", n, "}"));
    ASSERT_TRUE(hub_.Publish(req).ok());
  };
  for (int n = 1; n <= 3; ++n) publish("news", n);
  EXPECT_EQ(loops.pending(0), 1u);
  publish("sport", 4);
  publish("news", 5);
  EXPECT_EQ(loops.pending(0), 3u);
  // subs[1] leaves before the loop gets to any of it: it gets none of them.
  Send(subs[1], R"({"id":10,"unsubscribe":{"channel":"news"}})");
  loops.Run(0);
  auto numbers = [](FakeSession& s) {
    std::vector<std::string> out;
    for (const v1::ServerFrame& f : s.OfKind(Kind::kPub)) {
      out.push_back(absl::StrCat(f.pub().channel(), ":",
                                 f.pub().data().struct_value().fields().at("n").number_value()));
    }
    return out;
  };
  EXPECT_THAT(numbers(*subs[0]), ElementsAre("news:1", "news:2", "news:3", "sport:4", "news:5"));
  EXPECT_TRUE(numbers(*subs[1]).empty());
  hub_.SetLoopExecutor(nullptr);
}

TEST_F(HubTest, PublicationFrameIsTheJsonMappingOfServerFrame) {
  auto a = Connect();
  ClientSubscribe(a, "x");
  v1::PublishRequest req;
  req.set_channel("x");
  *req.mutable_data() = Json(R"([1,"two",{"three":3}])");
  ASSERT_TRUE(hub_.Publish(req).ok());
  std::string text = a->Frames().back();
  v1::ServerFrame expected;
  expected.mutable_pub()->set_channel("x");
  expected.mutable_pub()->set_offset(1);
  *expected.mutable_pub()->mutable_data() = req.data();
  EXPECT_EQ(text, EncodeFrame(expected));
}

TEST_F(HubTest, UnsubscribeStopsDelivery) {
  auto a = Connect();
  ClientSubscribe(a, "x");
  Send(a, R"({"id":3,"unsubscribe":{"channel":"x"}})");
  EXPECT_EQ(a->Last().kind_case(), Kind::kUnsubscribed);
  EXPECT_EQ(a->Last().id(), 3u);
  v1::PublishRequest req;
  req.set_channel("x");
  *req.mutable_data() = Json("1");
  auto r = hub_.Publish(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->delivery().queued(), 0u);
  EXPECT_TRUE(a->OfKind(Kind::kPub).empty());
}

TEST_F(HubTest, PingGetsPongAndMessageIsAccepted) {
  auto a = Connect();
  Send(a, R"({"id":4,"ping":{}})");
  EXPECT_EQ(a->Last().kind_case(), Kind::kPong);
  EXPECT_EQ(a->Last().id(), 4u);
  Send(a, R"({"id":5,"message":{"data":{"hello":"backend"}}})");
  EXPECT_EQ(a->Last().kind_case(), Kind::kSent);
  EXPECT_EQ(a->Last().id(), 5u);
  EXPECT_EQ(hub_.Stats({})->messages_from_clients(), 1u);
}

TEST_F(HubTest, BadFramesGetErrorRepliesAndConnectionStays) {
  auto a = Connect();
  struct Case {
    std::string frame;
    uint32_t id;
    std::string code;
    std::string message_part;
  } cases[] = {
      {"{not json", 0, "INVALID_ARGUMENT", "malformed frame"},
      {"[1,2]", 0, "INVALID_ARGUMENT", "malformed frame"},
      {R"({"id":2,"teleport":{}})", 2, "INVALID_ARGUMENT", "unknown frame type"},
      {R"({"id":3})", 3, "INVALID_ARGUMENT", "empty frame"},
      {R"({"id":4,"subscribe":{"channel":"has space"}})", 4, "INVALID_ARGUMENT",
       "subscribe.channel: invalid character"},
      {R"({"id":5,"subscribe":{"channel":""}})", 5, "INVALID_ARGUMENT",
       "subscribe.channel: must not be empty"},
      {R"({"id":6,"subscribe":{"channel":"a","bogus":1}})", 6, "INVALID_ARGUMENT", "bogus"},
      {R"({"id":7,"message":{}})", 7, "INVALID_ARGUMENT", "message.data: required"},
      {R"({"id":8,"message":{"data":)" + std::string(40, '[') + std::string(40, ']') + "}}", 8,
       "INVALID_ARGUMENT", "malformed frame: nested deeper than 32 levels"},
      {R"({"id":9,"subscribe":)", 9, "INVALID_ARGUMENT", "malformed frame"},
  };
  for (const Case& c : cases) {
    Send(a, c.frame);
    v1::ServerFrame reply = a->Last();
    ASSERT_EQ(reply.kind_case(), Kind::kError) << c.frame;
    EXPECT_EQ(reply.id(), c.id) << c.frame;
    EXPECT_EQ(reply.error().code(), c.code) << c.frame;
    EXPECT_THAT(reply.error().message(), HasSubstr(c.message_part)) << c.frame;
  }
  EXPECT_EQ(a->close_code(), 0);
  EXPECT_EQ(hub_.Stats({})->client_errors(), std::size(cases));
  ClientSubscribe(a, "still-works");
}

TEST_F(HubTest, SubscriptionLimitIsEnforced) {
  auto a = Connect();
  ClientSubscribe(a, "c1");
  ClientSubscribe(a, "c2");
  ClientSubscribe(a, "c3");
  Send(a, R"({"id":1,"subscribe":{"channel":"c4"}})");
  EXPECT_EQ(a->Last().error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_THAT(a->Last().error().message(), HasSubstr("at most 3"));
  // Re-subscribing to a channel it already has is fine.
  ClientSubscribe(a, "c1");
}

TEST_F(HubTest, PublishOrderRoutesToItsFourChannels) {
  auto all = Connect(), store = Connect(), other_store = Connect(), customer = Connect(),
       order = Connect(), unrelated = Connect();
  ClientSubscribe(all, "orders");
  ClientSubscribe(store, "store:42");
  ClientSubscribe(other_store, "store:7");
  ClientSubscribe(customer, "customer:c9");
  ClientSubscribe(order, "order:o1");
  ClientSubscribe(unrelated, "news");
  v1::PublishOrderRequest req;
  *req.mutable_order() = MakeOrder("o1", 1, "42", "c9");
  auto r = hub_.PublishOrder(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->applied());
  EXPECT_FALSE(r->stale());
  EXPECT_EQ(r->queued(), 4u);
  ASSERT_EQ(r->deliveries_size(), 4);
  EXPECT_EQ(r->deliveries(0).channel(), "orders");
  EXPECT_EQ(r->deliveries(1).channel(), "store:42");
  EXPECT_EQ(r->deliveries(2).channel(), "customer:c9");
  EXPECT_EQ(r->deliveries(3).channel(), "order:o1");
  for (auto& s : {all, store, customer, order}) {
    auto pubs = s->OfKind(Kind::kPub);
    ASSERT_EQ(pubs.size(), 1u) << s->id();
    v1::Order got;
    std::string json;
    ASSERT_TRUE(ToJson(pubs[0].pub().data(), &json).ok());
    ASSERT_TRUE(FromJson(json, &got, 64).ok()) << json;
    EXPECT_EQ(got.id(), "o1");
    EXPECT_EQ(got.version(), 1u);
    EXPECT_EQ(got.total().minor_units(), 1250);
  }
  EXPECT_TRUE(other_store->OfKind(Kind::kPub).empty());
  EXPECT_TRUE(unrelated->OfKind(Kind::kPub).empty());
}

TEST_F(HubTest, StaleAndRepeatedOrderVersionsAreNotDelivered) {
  auto s = Connect();
  ClientSubscribe(s, "order:o1");
  v1::PublishOrderRequest req;
  *req.mutable_order() = MakeOrder("o1", 5, "42", "");
  ASSERT_TRUE(hub_.PublishOrder(req)->applied());
  for (uint64_t v : {5u, 3u}) {
    req.mutable_order()->set_version(v);
    auto r = hub_.PublishOrder(req);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->applied());
    EXPECT_TRUE(r->stale());
    EXPECT_EQ(r->latest_version(), 5u);
    EXPECT_EQ(r->queued(), 0u);
    EXPECT_TRUE(r->deliveries().empty());
  }
  req.mutable_order()->set_version(6);
  EXPECT_TRUE(hub_.PublishOrder(req)->applied());
  auto pubs = s->OfKind(Kind::kPub);
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_EQ(pubs[0].pub().data().struct_value().fields().at("version").string_value(), "5");
  EXPECT_EQ(pubs[1].pub().data().struct_value().fields().at("version").string_value(), "6");
  EXPECT_EQ(hub_.Stats({})->stale_orders(), 2u);
}

TEST_F(HubTest, ControlApiValidationNamesTheField) {
  struct Case {
    absl::Status status;
    std::string prefix;
  };
  v1::PublishOrderRequest no_order;
  v1::PublishOrderRequest bad_version;
  *bad_version.mutable_order() = MakeOrder("o1", 0, "42", "");
  v1::PublishOrderRequest bad_store;
  *bad_store.mutable_order() = MakeOrder("o1", 1, "", "");
  v1::PublishOrderRequest bad_status;
  *bad_status.mutable_order() = MakeOrder("o1", 1, "42", "", v1::ORDER_STATUS_UNSPECIFIED);
  v1::PublishRequest bad_channel;
  bad_channel.set_channel("bad channel");
  *bad_channel.mutable_data() = Json("1");
  v1::PublishRequest no_data;
  no_data.set_channel("ok");
  v1::BroadcastRequest bad_bcast;
  bad_bcast.add_channels("ok");
  bad_bcast.add_channels("");
  *bad_bcast.mutable_data() = Json("1");
  v1::DisconnectRequest bad_code;
  bad_code.set_connection_id("x");
  bad_code.set_code(1006);
  v1::DisconnectRequest no_target;
  v1::ListConnectionsRequest big_page;
  big_page.set_page_size(51);
  Case cases[] = {
      {hub_.PublishOrder(no_order).status(), "order: required"},
      {hub_.PublishOrder(bad_version).status(), "order.version:"},
      {hub_.PublishOrder(bad_store).status(), "order.store_id:"},
      {hub_.PublishOrder(bad_status).status(), "order.status:"},
      {hub_.Publish(bad_channel).status(), "channel:"},
      {hub_.Publish(no_data).status(), "data: required"},
      {hub_.Broadcast(bad_bcast).status(), "channels[1]:"},
      {hub_.Disconnect(bad_code).status(), "code:"},
      {hub_.Disconnect(no_target).status(), "target:"},
      {hub_.ListConnections(big_page).status(), "page_size:"},
      {hub_.GetConnection({}).status(), "connection_id:"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument) << c.status;
    EXPECT_THAT(std::string(c.status.message()), ::testing::StartsWith(c.prefix));
  }
  v1::GetConnectionRequest missing;
  missing.set_connection_id("nope");
  EXPECT_EQ(hub_.GetConnection(missing).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(HubTest, ListConnectionsFiltersPagesAndCounts) {
  std::vector<std::shared_ptr<FakeSession>> sessions;
  for (int i = 0; i < 7; ++i) {
    sessions.push_back(Connect(i < 3 ? "alice" : "bob", absl::StrCat("10.0.0.", i, ":4000")));
  }
  ClientSubscribe(sessions[1], "store:42");
  ClientSubscribe(sessions[4], "store:42");

  v1::ListConnectionsRequest all;
  all.set_page_size(3);
  std::vector<std::string> ids;
  for (int page = 0;; ++page) {
    auto r = hub_.ListConnections(all);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->total(), 7u);
    for (const auto& c : r->connections()) ids.push_back(c.id());
    if (r->next_page_token().empty()) break;
    all.set_page_token(r->next_page_token());
    ASSERT_LT(page, 5);
  }
  ASSERT_EQ(ids.size(), 7u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(ids[0], sessions[0]->id());

  v1::ListConnectionsRequest by_user;
  by_user.set_user("alice");
  EXPECT_EQ(hub_.ListConnections(by_user)->total(), 3u);

  v1::ListConnectionsRequest by_channel;
  by_channel.set_channel("store:42");
  auto r = hub_.ListConnections(by_channel);
  ASSERT_EQ(r->connections_size(), 2);
  EXPECT_THAT(r->connections(0).channels(), ElementsAre("store:42"));

  v1::ListConnectionsRequest both;
  both.set_channel("store:42");
  both.set_user("bob");
  r = hub_.ListConnections(both);
  ASSERT_EQ(r->connections_size(), 1);
  EXPECT_EQ(r->connections(0).id(), sessions[4]->id());

  v1::ListConnectionsRequest by_remote;
  by_remote.set_remote_address("10.0.0.5");
  r = hub_.ListConnections(by_remote);
  ASSERT_EQ(r->connections_size(), 1);
  EXPECT_EQ(r->connections(0).remote_address(), "10.0.0.5:4000");
  EXPECT_EQ(r->connections(0).user(), "bob");
  EXPECT_EQ(r->connections(0).origin(), "https://shop.test");
  EXPECT_EQ(r->connections(0).user_agent(), "fake/1.0");
  EXPECT_EQ(r->connections(0).send_buffer_bytes(), 7u);
  EXPECT_GT(r->connections(0).frames_out(), 0u);
}

TEST_F(HubTest, UnregisterRemovesFromTableAndChannels) {
  auto a = Connect("alice");
  ClientSubscribe(a, "x");
  hub_.Unregister(*a);
  EXPECT_EQ(hub_.connection_count(), 0u);
  auto stats = hub_.Stats({});
  EXPECT_EQ(stats->channels(), 0u);
  EXPECT_EQ(stats->subscriptions(), 0u);
  EXPECT_EQ(stats->users(), 0u);
  EXPECT_EQ(stats->connections_total(), 1u);
  EXPECT_GT(stats->frames_out(), 0u);  // kept after the session left
  // A subscribe that races with close is refused instead of leaking into the index.
  Send(a, R"({"id":1,"subscribe":{"channel":"y"}})");
  EXPECT_EQ(hub_.Stats({})->subscriptions(), 0u);
}

TEST_F(HubTest, DisconnectByConnectionAndByUser) {
  auto a1 = Connect("alice"), a2 = Connect("alice"), b = Connect("bob");
  v1::DisconnectRequest req;
  req.set_user("alice");
  req.set_code(4001);
  req.set_reason("bye");
  auto r = hub_.Disconnect(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->disconnected(), 2u);
  EXPECT_EQ(a1->close_code(), 4001);
  EXPECT_EQ(a2->close_reason(), "bye");
  EXPECT_EQ(b->close_code(), 0);
  v1::DisconnectRequest one;
  one.set_connection_id(b->id());
  EXPECT_EQ(hub_.Disconnect(one)->disconnected(), 1u);
  EXPECT_EQ(b->close_code(), 1000);
  one.set_connection_id("missing");
  EXPECT_EQ(hub_.Disconnect(one).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(HubTest, ServerSideSubscribePushesSubscribedAndDelivers) {
  auto a1 = Connect("alice"), a2 = Connect("alice");
  v1::SubscribeRequest req;
  req.set_user("alice");
  req.set_channel("alerts");
  EXPECT_EQ(hub_.Subscribe(req)->subscribed(), 2u);
  EXPECT_EQ(hub_.Subscribe(req)->subscribed(), 0u);  // already subscribed: not told again
  EXPECT_EQ(a1->OfKind(Kind::kSubscribed).size(), 1u);
  EXPECT_EQ(a1->Last().kind_case(), Kind::kSubscribed);
  EXPECT_EQ(a1->Last().id(), 0u);
  v1::PublishRequest pub;
  pub.set_channel("alerts");
  *pub.mutable_data() = Json(R"("x")");
  EXPECT_EQ(hub_.Publish(pub)->delivery().queued(), 2u);
  v1::UnsubscribeRequest un;
  un.set_connection_id(a2->id());
  un.set_channel("alerts");
  EXPECT_EQ(hub_.Unsubscribe(un)->unsubscribed(), 1u);
  EXPECT_EQ(a2->Last().kind_case(), Kind::kUnsubscribed);
  EXPECT_EQ(hub_.Publish(pub)->delivery().queued(), 1u);
}

TEST_F(HubTest, SendToUserAndConnectionPush) {
  auto a1 = Connect("alice"), a2 = Connect("alice"), b = Connect("bob");
  v1::SendToUserRequest u;
  u.set_user("alice");
  *u.mutable_data() = Json(R"({"note":"hi"})");
  EXPECT_EQ(hub_.SendToUser(u)->queued(), 2u);
  EXPECT_EQ(a1->Last().push().data().struct_value().fields().at("note").string_value(), "hi");
  EXPECT_TRUE(b->OfKind(Kind::kPush).empty());
  v1::SendToConnectionRequest c;
  c.set_connection_id(b->id());
  *c.mutable_data() = Json("42");
  EXPECT_EQ(hub_.SendToConnection(c)->queued(), 1u);
  EXPECT_EQ(b->Last().push().data().number_value(), 42);
  u.set_user("nobody");
  EXPECT_EQ(hub_.SendToUser(u)->queued(), 0u);
}

// `queued` counts this node's subscribers when the publication was handed out (docs/api.md): a
// connection already gone is not counted.
TEST_F(HubTest, AConnectionGoneIsNotCountedAsQueued) {
  auto a = Connect(), b = Connect();
  ClientSubscribe(a, "x");
  ClientSubscribe(b, "x");
  hub_.Unregister(*b, 1000, "bye");
  v1::PublishRequest pub;
  pub.set_channel("x");
  *pub.mutable_data() = Json("1");
  EXPECT_EQ(hub_.Publish(pub)->delivery().queued(), 1u);
  EXPECT_EQ(b->OfKind(Kind::kPub).size(), 0u);
}

TEST_F(HubTest, PresenceFollowsLiveSubscriptionsOfPresenceChannels) {
  Limits l = MakeLimits();
  l.presence_prefixes = {"chat:"};
  engine::MemoryEngine engine(l);
  TestHub hub(l, "n1", &engine, &frames_);
  auto connect = [&](const std::string& user) {
    auto s = std::make_shared<FakeSession>(hub.NextConnectionId(), user);
    EXPECT_TRUE(hub.Register(s).ok());
    return s;
  };
  auto alice = connect("alice"), alice2 = connect("alice"), bob = connect("bob");
  for (const auto& s : {alice, alice2, bob}) {
    hub.OnClientFrame(s, R"({"id":1,"subscribe":{"channel":"chat:1"}})");
    hub.OnClientFrame(s, R"({"id":2,"subscribe":{"channel":"news"}})");
  }
  v1::PresenceRequest req;
  req.set_channel("chat:1");
  auto p = hub.Presence(req);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->clients_size(), 3);
  EXPECT_EQ(p->clients(0).connection_id(), alice->id());
  EXPECT_EQ(p->clients(0).user(), "alice");
  EXPECT_EQ(p->clients(0).node(), "n1");
  v1::PresenceStatsRequest stats;
  stats.set_channel("chat:1");
  EXPECT_EQ(hub.PresenceStats(stats)->connections(), 3u);
  EXPECT_EQ(hub.PresenceStats(stats)->users(), 2u);
  hub.OnClientFrame(alice2, R"({"id":3,"unsubscribe":{"channel":"chat:1"}})");
  hub.Unregister(*bob, 1000, "bye");
  EXPECT_EQ(hub.PresenceStats(stats)->connections(), 1u);
  EXPECT_EQ(hub.PresenceStats(stats)->users(), 1u);
  // Not a presence channel: refused, naming the flag.
  req.set_channel("news");
  EXPECT_EQ(hub.Presence(req).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(hub.Presence(req).status().message()), HasSubstr("--presence-prefixes"));
}

TEST_F(HubTest, ChannelsListsSubscribedChannelsByNameWithCounts) {
  auto a = Connect(), b = Connect();
  ClientSubscribe(a, "store:1");
  ClientSubscribe(b, "store:1");
  ClientSubscribe(b, "store:2");
  ClientSubscribe(a, "news");
  v1::ChannelsRequest req;
  req.set_prefix("store:");
  auto r = hub_.Channels(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->channels_size(), 2);
  EXPECT_EQ(r->channels(0).channel(), "store:1");
  EXPECT_EQ(r->channels(0).subscribers(), 2u);
  EXPECT_EQ(r->channels(1).channel(), "store:2");
  EXPECT_EQ(r->total(), 2u);
  req.set_prefix("");
  req.set_limit(1);
  r = hub_.Channels(req);
  EXPECT_EQ(r->total(), 3u);
  ASSERT_EQ(r->channels_size(), 1);
  EXPECT_EQ(r->channels(0).channel(), "news");
  hub_.Unregister(*a, 1000, "bye");
  req.set_limit(0);
  EXPECT_EQ(hub_.Channels(req)->total(), 2u);
}

}  // namespace
}  // namespace herald::core
