// Node: subscriptions joined through a broker that answers later (as a remote one does). The join
// buffer must give the client every publication exactly once, in order, after `subscribed`.
#include "server/core/node.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/memory_engine.h"
#include "tests/support/string_frame.h"
#include "tests/support/test_hub.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::herald::testing::StringFrameFactory;
using ::herald::testing::TestHub;
using ::testing::ElementsAre;
using Kind = v1::ServerFrame::KindCase;

// The in-memory engine behind a broker whose joins answer only when the test releases them:
// either the whole Join runs late (`late_read`: it reads the stream after what was published
// meanwhile) or it reads at once and only its answer is late. It can also hold publications on
// their way to the node (HoldDeliveries), as a remote broker's pub/sub lags its stream.
class SlowJoinEngine : public Engine, public Broker, public BrokerEventHandler {
 public:
  explicit SlowJoinEngine(bool late_read) : memory_(Limits()), late_read_(late_read) {}

  Broker& broker() override { return *this; }
  OrderStore& orders() override { return memory_.orders(); }
  IdempotencyStore& idempotency() override { return memory_.idempotency(); }
  TaskStore& tasks() override { return memory_.tasks(); }
  ControlBus& control() override { return memory_.control(); }
  PresenceRegistry& presence() override { return memory_.presence(); }
  OnlineRegistry& online() override { return memory_.online(); }

  void SetEventHandler(BrokerEventHandler* h) override {
    node_ = h;
    memory_.broker().SetEventHandler(this);
  }
  void HandlePublication(const Publication& p) override {
    if (hold_deliveries_) {
      held_deliveries_.push_back(p);
      return;
    }
    node_->HandlePublication(p);
  }
  void HoldDeliveries() { hold_deliveries_ = true; }
  void ReleaseDeliveries() {
    hold_deliveries_ = false;
    for (const Publication& p : held_deliveries_) node_->HandlePublication(p);
    held_deliveries_.clear();
  }
  void Publish(const std::string& c, PublishSpec s, Done<StreamPosition> d) override {
    memory_.broker().Publish(c, std::move(s), std::move(d));
  }
  void Subscribe(const std::string& c, StatusDone d) override {
    memory_.broker().Subscribe(c, std::move(d));
  }
  void Unsubscribe(const std::string& c) override { memory_.broker().Unsubscribe(c); }
  void Join(const std::string& c, JoinSpec s, Done<JoinResult> d) override {
    if (late_read_) {
      held_.push_back([this, c, s = std::move(s), d = std::move(d)]() mutable {
        memory_.broker().Join(c, std::move(s), std::move(d));
      });
      return;
    }
    memory_.broker().Join(c, std::move(s), [this](absl::StatusOr<JoinResult> r) mutable {
      held_results_.push_back(std::move(r));
    });
    held_.push_back([this, d = std::move(d)]() mutable {
      absl::StatusOr<JoinResult> r = std::move(held_results_.front());
      held_results_.pop_front();
      d(std::move(r));
    });
  }
  void History(const std::string& c, HistoryQuery q, Done<HistoryResult> d) override {
    memory_.broker().History(c, q, std::move(d));
  }
  void Sweep(absl::Time now) override { memory_.broker().Sweep(now); }

  size_t held() const { return held_.size(); }
  void ReleaseJoins() {
    while (!held_.empty()) {
      auto next = std::move(held_.front());
      held_.pop_front();
      next();
    }
  }

 private:
  engine::MemoryEngine memory_;
  const bool late_read_;
  BrokerEventHandler* node_ = nullptr;
  bool hold_deliveries_ = false;
  std::vector<Publication> held_deliveries_;
  std::deque<absl::AnyInvocable<void()>> held_;
  std::deque<absl::StatusOr<JoinResult>> held_results_;
};

class NodeJoinTest : public ::testing::TestWithParam<bool> {
 protected:
  NodeJoinTest() : engine_(GetParam()), hub_(Limits(), "n1", &engine_, &frames_) {}

  std::shared_ptr<FakeSession> Connect() {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId());
    EXPECT_TRUE(hub_.Register(s).ok());
    return s;
  }
  v1::ChannelDelivery Publish(const std::string& channel, int n) {
    v1::PublishRequest req;
    req.set_channel(channel);
    req.mutable_data()->set_number_value(n);
    auto r = hub_.Publish(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->delivery() : v1::ChannelDelivery();
  }
  // What the client saw of `channel` after `subscribed`, in order: the recovered publications,
  // then the pushed ones.
  static std::vector<uint64_t> SeenOffsets(const FakeSession& s) {
    std::vector<uint64_t> out;
    bool subscribed = false;
    for (const v1::ServerFrame& f : s.Parsed()) {
      if (f.kind_case() == Kind::kSubscribed) {
        EXPECT_FALSE(subscribed) << "two subscribed replies";
        subscribed = true;
        for (const auto& p : f.subscribed().publications()) out.push_back(p.offset());
      } else if (f.kind_case() == Kind::kPub) {
        EXPECT_TRUE(subscribed) << "a publication before subscribed";
        out.push_back(f.pub().offset());
      }
    }
    return out;
  }

  SlowJoinEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_P(NodeJoinTest, PublicationsDuringAJoinArriveOnceInOrderAfterSubscribed) {
  v1::ChannelDelivery first = Publish("c", 1);
  Publish("c", 2);
  auto s = Connect();
  hub_.OnClientFrame(s, R"({"id":3,"subscribe":{"channel":"c","recover":{"epoch":")" +
                            first.epoch() + R"(","offset":"1"}}})");
  ASSERT_EQ(engine_.held(), 1u);
  EXPECT_TRUE(s->OfKind(Kind::kSubscribed).empty());
  Publish("c", 3);  // during the join: buffered, not pushed
  Publish("c", 4);
  EXPECT_TRUE(s->OfKind(Kind::kPub).empty());
  engine_.ReleaseJoins();
  ASSERT_EQ(s->OfKind(Kind::kSubscribed).size(), 1u);
  EXPECT_TRUE(s->OfKind(Kind::kSubscribed)[0].subscribed().recovered());
  EXPECT_EQ(s->OfKind(Kind::kSubscribed)[0].id(), 3u);
  Publish("c", 5);  // live
  EXPECT_THAT(SeenOffsets(*s), ElementsAre(2, 3, 4, 5));
}

TEST_P(NodeJoinTest, AnUnsubscribeDuringAJoinLeavesNothingBehind) {
  auto s = Connect();
  hub_.OnClientFrame(s, R"({"id":1,"subscribe":{"channel":"c"}})");
  hub_.OnClientFrame(s, R"({"id":2,"unsubscribe":{"channel":"c"}})");
  Publish("c", 1);
  engine_.ReleaseJoins();
  EXPECT_TRUE(s->OfKind(Kind::kSubscribed).empty());
  EXPECT_EQ(Publish("c", 2).queued(), 0u);
  EXPECT_TRUE(s->OfKind(Kind::kPub).empty());
  // Subscribing again works: the node subscription was given back and taken again.
  hub_.OnClientFrame(s, R"({"id":3,"subscribe":{"channel":"c"}})");
  engine_.ReleaseJoins();
  EXPECT_EQ(Publish("c", 3).queued(), 1u);
  ASSERT_EQ(s->OfKind(Kind::kPub).size(), 1u);
  EXPECT_EQ(s->OfKind(Kind::kPub)[0].pub().offset(), 3u);
}

TEST_P(NodeJoinTest, AConnectionClosedDuringAJoinIsNeverMadeLive) {
  auto s = Connect();
  hub_.OnClientFrame(s, R"({"id":1,"subscribe":{"channel":"c"}})");
  hub_.Unregister(*s, 1000, "bye");
  engine_.ReleaseJoins();
  EXPECT_EQ(Publish("c", 1).queued(), 0u);
  EXPECT_EQ(hub_.Stats(v1::StatsRequest())->subscriptions(), 0u);
}

// A publication the broker appended before a join read the stream but hands to the node only
// after the join went live was counted by the join: it is not pushed again.
TEST_P(NodeJoinTest, APublicationDeliveredLateAfterAJoinThatCountedItIsNotSentTwice) {
  auto early = Connect();
  hub_.OnClientFrame(early, R"({"id":1,"subscribe":{"channel":"c"}})");
  engine_.ReleaseJoins();
  engine_.HoldDeliveries();
  v1::ChannelDelivery first = Publish("c", 1);  // appended; its delivery is held
  auto late = Connect();
  hub_.OnClientFrame(late, R"({"id":2,"subscribe":{"channel":"c","recover":{"epoch":")" +
                               first.epoch() + R"(","offset":"0"}}})");
  engine_.ReleaseJoins();
  engine_.ReleaseDeliveries();
  Publish("c", 2);
  EXPECT_THAT(SeenOffsets(*late), ElementsAre(1, 2));
  EXPECT_THAT(SeenOffsets(*early), ElementsAre(1, 2));
}

INSTANTIATE_TEST_SUITE_P(JoinTiming, NodeJoinTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ReadsLate" : "AnswersLate";
                         });

}  // namespace
}  // namespace herald::core
