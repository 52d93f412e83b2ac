#include "tests/unit/engine/redis/redis_engine_test_support.h"

#include "gtest/gtest.h"

namespace herald::testing::redis_engine {

std::unique_ptr<engine::RedisEngine> StartEngine(const core::Limits& limits,
                                                 engine::RedisOptions options) {
  options.heartbeat_interval = kHeartbeatInterval;
  auto engine = std::make_unique<engine::RedisEngine>(limits, options);
  absl::Status ready = engine->WaitReady(absl::Seconds(10));
  EXPECT_TRUE(ready.ok()) << ready;
  return engine;
}

conformance::EngineUnderTest RedisEngineUnderTest(const std::string& name,
                                                  std::function<std::string()> fresh_prefix,
                                                  MakeRedisEngine make) {
  // The prefix of the engine made last: its peers (other nodes) share it.
  auto last = std::make_shared<std::string>();
  conformance::EngineUnderTest redis{
      name,
      [last, fresh_prefix, make](const core::Limits& limits, std::function<absl::Time()>) {
        *last = fresh_prefix();
        return std::unique_ptr<core::Engine>(make(limits, *last, "n1"));
      },
      /*fake_clock=*/false};
  redis.make_peer = [last, make](const core::Limits& limits, const std::string& node) {
    return std::unique_ptr<core::Engine>(make(limits, *last, node));
  };
  redis.kill = [](core::Engine& engine) {
    static_cast<engine::RedisEngine&>(engine).Shutdown(engine::RedisEngine::Departure::kVanish);
  };
  redis.dead_node_bound = kHeartbeatInterval * engine::RedisControlBus::kLapseIntervals;
  return redis;
}

void Recorder::HandlePublication(const core::Publication& p) {
  absl::MutexLock lock(&mu_);
  seen_.push_back(p);
}

std::vector<core::Publication> Recorder::Wait(size_t n) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
  mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  return seen_;
}

std::vector<core::Publication> Recorder::Wait(const std::string& channel, size_t n) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Of(channel).size() >= n; };
  mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  return Of(channel);
}

std::vector<core::Publication> Recorder::Of(const std::string& channel) const {
  std::vector<core::Publication> out;
  for (const core::Publication& p : seen_) {
    if (p.channel == channel) out.push_back(p);
  }
  return out;
}

core::Limits TestLimits() {
  core::Limits limits;
  limits.history.size = 10;
  limits.history.ttl = absl::Seconds(60);
  return limits;
}

absl::StatusOr<core::StreamPosition> Publish(core::Engine& e, const std::string& channel,
                                             const std::string& data, bool ack_requested) {
  core::PublishSpec spec;
  spec.data_json = std::make_shared<const std::string>(data);
  spec.origin_node = "a";
  spec.ack_requested = ack_requested;
  return Await<core::StreamPosition>(
      [&](auto done) { e.broker().Publish(channel, spec, std::move(done)); });
}

absl::Status Subscribe(core::Engine& e, const std::string& channel) {
  struct Ok {};
  return Await<Ok>([&](auto done) {
           e.broker().Subscribe(channel, [done = std::move(done)](absl::Status s) mutable {
             if (s.ok()) return done(Ok{});
             done(s);
           });
         })
      .status();
}

}  // namespace herald::testing::redis_engine
