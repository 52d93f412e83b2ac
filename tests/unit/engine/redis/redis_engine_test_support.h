#ifndef HERALD_TESTS_UNIT_ENGINE_REDIS_REDIS_ENGINE_TEST_SUPPORT_H_
#define HERALD_TESTS_UNIT_ENGINE_REDIS_REDIS_ENGINE_TEST_SUPPORT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/engine.h"
#include "server/core/limits.h"
#include "server/engine/redis/redis_engine.h"
#include "tests/conformance/engine_conformance.h"
#include "tests/support/await.h"

// What the RedisEngine tests on one redis-server (redis_engine_test.cc) and on a Redis Cluster
// (redis_cluster_engine_test.cc) share: their conformance suite entry and the helpers of their
// tests of several nodes.
namespace herald::testing::redis_engine {

// How long the tests wait for a completion, a publication or an engine to be ready.
inline constexpr absl::Duration kWait = absl::Seconds(10);

// The heartbeat interval of the tests' engines: short, so that the dead-node bound (a few
// intervals) is quick to test.
inline constexpr absl::Duration kHeartbeatInterval = absl::Milliseconds(200);

// testing::Await with the Redis tests' wait.
template <typename T, typename Start>
absl::StatusOr<T> Await(Start start) {
  return testing::Await<T>(std::move(start), kWait);
}

// Waits (bounded) until `pred` holds.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration timeout = absl::Seconds(5)) {
  return testing::PollUntil(std::move(pred), timeout, absl::Milliseconds(25));
}

// A RedisEngine with `limits` and `options` (its heartbeat set to kHeartbeatInterval), awaited
// ready for 10 s; a test that makes one fails if it is not.
std::unique_ptr<engine::RedisEngine> StartEngine(const core::Limits& limits,
                                                 engine::RedisOptions options);

// Makes a RedisEngine with `limits` for node `node` on the key prefix `prefix`.
using MakeRedisEngine = std::function<std::unique_ptr<engine::RedisEngine>(
    const core::Limits& limits, const std::string& prefix, const std::string& node)>;

// The conformance suite's entry `name` for engines `make` makes: each engine the suite makes gets
// a fresh prefix from `fresh_prefix`, its peers (other nodes) share it; a killed engine vanishes
// without a word, and is gone after the dead-node bound of kHeartbeatInterval.
conformance::EngineUnderTest RedisEngineUnderTest(const std::string& name,
                                                  std::function<std::string()> fresh_prefix,
                                                  MakeRedisEngine make);

// Keeps every publication the broker hands the node; any thread may wait for them.
class Recorder : public core::BrokerEventHandler {
 public:
  void HandlePublication(const core::Publication& p) override;
  // All the publications once there are `n`, or what there is after kWait.
  std::vector<core::Publication> Wait(size_t n);
  // The publications of `channel` once there are `n`, or what there is after kWait.
  std::vector<core::Publication> Wait(const std::string& channel, size_t n);

 private:
  std::vector<core::Publication> Of(const std::string& channel) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Mutex mu_;
  std::vector<core::Publication> seen_ ABSL_GUARDED_BY(mu_);
};

// The limits of the tests of several nodes: a history of 10 for 60 s.
core::Limits TestLimits();

// Publishes `data` to `channel` as node "a" would, with an ack asked for or not; awaits the
// position.
absl::StatusOr<core::StreamPosition> Publish(core::Engine& e, const std::string& channel,
                                             const std::string& data, bool ack_requested);

// Subscribes the node of `e` to `channel`; awaits the subscription.
absl::Status Subscribe(core::Engine& e, const std::string& channel);

}  // namespace herald::testing::redis_engine

#endif  // HERALD_TESTS_UNIT_ENGINE_REDIS_REDIS_ENGINE_TEST_SUPPORT_H_
