// MemoryEngine: the engine conformance suite (tests/conformance), plus what only the in-memory
// engine promises.
#include "server/engine/memory_engine.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/conformance/engine_conformance.h"

namespace herald {
namespace conformance {

std::vector<EngineUnderTest> EnginesUnderTest() {
  return {{"Memory", [](const core::Limits& limits, std::function<absl::Time()> clock) {
             return std::make_unique<engine::MemoryEngine>(limits, std::move(clock));
           }}};
}

}  // namespace conformance

namespace engine {
namespace {

// MemoryEngine completes every call before returning, and the one thread that publishes to an
// idle channel delivers it before Publish returns: a single-threaded caller sees its own
// publication handled first.
class CountingHandler : public core::BrokerEventHandler {
 public:
  void HandlePublication(const core::Publication&) override { ++handled; }
  int handled = 0;
};

TEST(MemoryEngineTest, CompletesBeforeReturningAndDeliversOnThePublishingThread) {
  core::Limits limits;
  MemoryEngine engine(limits);
  CountingHandler handler;
  engine.broker().SetEventHandler(&handler);
  bool subscribed = false;
  engine.broker().Subscribe("a", [&](absl::Status st) { subscribed = st.ok(); });
  EXPECT_TRUE(subscribed);
  core::PublishSpec spec;
  spec.data_json = std::make_shared<const std::string>("1");
  int handled_at_completion = -1;
  engine.broker().Publish("a", spec, [&](absl::StatusOr<core::StreamPosition> pos) {
    ASSERT_TRUE(pos.ok());
    handled_at_completion = handler.handled;
  });
  EXPECT_EQ(handled_at_completion, 1);
}

// Sweep visits only channels whose check is due, and forgets idle, unsubscribed ones.
TEST(MemoryEngineTest, SweepVisitsOnlyDueChannels) {
  core::Limits limits;
  limits.history.size = 5;
  limits.history.ttl = absl::Seconds(60);
  absl::Time now = absl::FromUnixSeconds(1000000);
  MemoryEngine engine(limits, [&] { return now; });
  core::PublishSpec spec;
  spec.data_json = std::make_shared<const std::string>("1");
  for (int i = 0; i < 100; ++i) {
    engine.broker().Publish("c" + std::to_string(i), spec, [](auto) {});
  }
  engine.broker().Subscribe("c7", [](absl::Status) {});
  now += absl::Seconds(30);
  engine.broker().Sweep(now);
  EXPECT_EQ(engine.broker().channel_count(), 100u);  // nothing due before the TTL
  now += absl::Seconds(31);
  engine.broker().Sweep(now);
  EXPECT_EQ(engine.broker().channel_count(), 1u);  // c7 is subscribed
}

}  // namespace
}  // namespace engine
}  // namespace herald
