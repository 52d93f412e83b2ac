#ifndef HERALD_TESTS_CONFORMANCE_ENGINE_CONFORMANCE_H_
#define HERALD_TESTS_CONFORMANCE_ENGINE_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/engine.h"
#include "server/core/limits.h"

namespace herald::conformance {

// An engine the conformance suite runs against: each test makes a fresh one with the suite's
// limits and clock. An engine whose expiry runs elsewhere (a Redis server's own TTLs) sets
// `fake_clock` false, and the tests that move the clock are skipped for it.
struct EngineUnderTest {
  std::string name;
  std::function<std::unique_ptr<core::Engine>(const core::Limits& limits,
                                              std::function<absl::Time()> clock)>
      make;
  bool fake_clock = true;
  // The node the engine serves: the task tests' holders are "<node>/<connection>", so that the
  // store's TaskTimedOut notices for them reach this engine's handler.
  std::string node = "n1";
  // For an engine whose state several nodes share: an engine of another node, `node`, on the
  // state of the engine `make` returned last. Unset for a single-node engine (the tests of
  // several nodes are skipped).
  std::function<std::unique_ptr<core::Engine>(const core::Limits& limits, const std::string& node)>
      make_peer;
  // With make_peer: stops `engine` as a node that died, without a word: its heartbeats stop.
  std::function<void(core::Engine& engine)> kill;
  // With make_peer: a node that stopped is gone (not counted as missing by surveys, its presence
  // entries gone from reads) at most this long after it stopped.
  absl::Duration dead_node_bound = absl::ZeroDuration();
};

// ctest names and gtest messages show the engine's name, not its bytes.
inline void PrintTo(const EngineUnderTest& engine, std::ostream* os) { *os << engine.name; }

// The behaviour every core::Engine (Broker, OrderStore, IdempotencyStore, TaskStore, ControlBus,
// PresenceRegistry) must show, written against the interfaces only
// (tests/conformance/engine_conformance.cc). A test binary runs the suite for the engines its
// EnginesUnderTest() returns: it links engine_conformance.cc and defines that function (see
// tests/unit/engine/memory_engine_test.cc).
std::vector<EngineUnderTest> EnginesUnderTest();

}  // namespace herald::conformance

#endif  // HERALD_TESTS_CONFORMANCE_ENGINE_CONFORMANCE_H_
