// TaskDispatcher (the node's worker pool) on a task store that answers later, as a remote one
// does: leases granted for a worker that left meanwhile are given back, and a TasksWaiting that
// arrives while a Lease call is out is not lost.
#include "server/core/tasks.h"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
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
using Kind = v1::ServerFrame::KindCase;

// The in-memory engine behind a task store whose operations take effect at once but complete
// only when the test releases them (ReleaseAll); the store's notices reach the node at once.
class LateTaskEngine : public Engine, public TaskStore {
 public:
  explicit LateTaskEngine(const Limits& limits) : memory_(limits) {}

  Broker& broker() override { return memory_.broker(); }
  OrderStore& orders() override { return memory_.orders(); }
  IdempotencyStore& idempotency() override { return memory_.idempotency(); }
  TaskStore& tasks() override { return *this; }
  ControlBus& control() override { return memory_.control(); }
  PresenceRegistry& presence() override { return memory_.presence(); }
  OnlineRegistry& online() override { return memory_.online(); }

  void SetEventHandler(TaskEventHandler* handler) override {
    memory_.tasks().SetEventHandler(handler);
  }
  void Enqueue(const std::string& queue, TaskSpec spec, std::string offer_to,
               Done<Enqueued> done) override {
    memory_.tasks().Enqueue(queue, std::move(spec), std::move(offer_to), Later(std::move(done)));
  }
  void Lease(const std::string& queue, std::vector<std::string> holders,
             Done<std::vector<core::Lease>> done) override {
    memory_.tasks().Lease(queue, std::move(holders), Later(std::move(done)));
  }
  void Ack(const std::string& delivery_id, const std::string& holder, StatusDone done) override {
    memory_.tasks().Ack(delivery_id, holder, Later(std::move(done)));
  }
  void Release(const std::string& delivery_id, const std::string& holder,
               StatusDone done) override {
    memory_.tasks().Release(delivery_id, holder, Later(std::move(done)));
  }
  void List(Done<std::vector<QueueState>> done) override { memory_.tasks().List(std::move(done)); }
  void Sweep(absl::Time now) override { memory_.tasks().Sweep(now); }

  size_t held() const { return held_.size(); }
  // Completes every held operation, and those their completions start, in order.
  void ReleaseAll() {
    while (!held_.empty()) {
      auto next = std::move(held_.front());
      held_.pop_front();
      next();
    }
  }

 private:
  template <typename R>
  absl::AnyInvocable<void(R)> Later(absl::AnyInvocable<void(R)> done) {
    return [this, done = std::move(done)](R result) mutable {
      held_.push_back([done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
    };
  }

  engine::MemoryEngine memory_;
  std::deque<absl::AnyInvocable<void()>> held_;
};

class LateTaskStoreTest : public ::testing::Test {
 protected:
  LateTaskStoreTest() : engine_(MakeLimits()), hub_(MakeLimits(), "n1", &engine_, &frames_) {}

  static Limits MakeLimits() {
    Limits l;
    l.max_tasks_per_worker = 1;
    return l;
  }
  std::shared_ptr<FakeSession> Connect() {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId(), "w");
    EXPECT_TRUE(hub_.Register(s).ok());
    return s;
  }
  void JoinQueue(const std::shared_ptr<FakeSession>& s) {
    hub_.OnClientFrame(s, R"({"id":1,"join":{"queue":"q"}})");
  }
  // Dispatches a task; its response once the store has answered.
  std::shared_ptr<std::optional<absl::StatusOr<v1::DispatchTaskResponse>>> Dispatch(
      const std::string& what) {
    v1::DispatchTaskRequest req;
    req.set_queue("q");
    req.mutable_data()->set_string_value(what);
    auto result = std::make_shared<std::optional<absl::StatusOr<v1::DispatchTaskResponse>>>();
    hub_.DispatchTask(
        req, [result](absl::StatusOr<v1::DispatchTaskResponse> r) { *result = std::move(r); });
    return result;
  }
  static std::vector<v1::Task> Tasks(const FakeSession& s) {
    std::vector<v1::Task> out;
    for (auto& f : s.OfKind(Kind::kTask)) out.push_back(f.task());
    return out;
  }

  LateTaskEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_F(LateTaskStoreTest, ALeaseGrantedForAWorkerThatLeftMeanwhileGoesToAnotherWorker) {
  auto sent = Dispatch("x");
  engine_.ReleaseAll();
  ASSERT_TRUE(sent->has_value() && (*sent)->ok());
  EXPECT_TRUE((**sent)->assigned_connection_id().empty());
  auto w1 = Connect();
  JoinQueue(w1);  // the store leases "x" to w1, but says so only later
  ASSERT_GE(engine_.held(), 1u);
  hub_.Unregister(*w1);
  engine_.ReleaseAll();  // the late lease is given back
  EXPECT_TRUE(Tasks(*w1).empty());
  auto w2 = Connect();
  JoinQueue(w2);
  engine_.ReleaseAll();
  ASSERT_EQ(Tasks(*w2).size(), 1u);
  EXPECT_EQ(Tasks(*w2)[0].data().string_value(), "x");
  EXPECT_EQ(Tasks(*w2)[0].attempt(), 2u);
}

TEST_F(LateTaskStoreTest, TasksWaitingWhileALeaseCallIsOutLeasesAgainWhenItCompletes) {
  auto w = Connect();
  JoinQueue(w);  // a Lease call out for w's one slot; nothing waits yet
  ASSERT_EQ(engine_.held(), 1u);
  auto sent = Dispatch("x");  // no free slot to offer it to: it waits, TasksWaiting comes now
  engine_.ReleaseAll();       // the empty lease completes, and the node leases again
  ASSERT_TRUE(sent->has_value() && (*sent)->ok());
  ASSERT_EQ(Tasks(*w).size(), 1u);
  EXPECT_EQ(Tasks(*w)[0].data().string_value(), "x");
  // The ack is answered once the store has it, and frees the slot for the next task.
  auto next = Dispatch("y");
  engine_.ReleaseAll();
  hub_.OnClientFrame(w, R"({"id":7,"ack":{"deliveryId":")" + Tasks(*w)[0].delivery_id() + R"("}})");
  EXPECT_NE(w->Last().id(), 7u);
  engine_.ReleaseAll();
  ASSERT_EQ(Tasks(*w).size(), 2u);
  EXPECT_EQ(Tasks(*w)[1].data().string_value(), "y");
  EXPECT_EQ(w->OfKind(Kind::kAcked).size(), 1u);
}

}  // namespace
}  // namespace herald::core
