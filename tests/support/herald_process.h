#ifndef HERALD_TESTS_SUPPORT_HERALD_PROCESS_H_
#define HERALD_TESTS_SUPPORT_HERALD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "herald/v1/broker.grpc.pb.h"

namespace herald::testing {

// Runs the real `herald` binary on ephemeral ports (--ws-listen/--grpc-listen 127.0.0.1:0) and
// reads the bound addresses from its stdout. Kills the process on destruction. Not thread-safe.
// With $TEST_REDIS_URL set (not HERALD_*: herald refuses unknown HERALD_ variables), herald runs
// with --engine redis on that Redis and a key prefix of its own (unless the test passes --engine):
// the whole suite then runs on the Redis engine.
class HeraldProcess {
 public:
  // Starts herald with `args` added (a `--threads` there replaces the default of 2); fails the test
  // (and leaves ok() false) if it does not print both listening lines within 20 s.
  explicit HeraldProcess(std::vector<std::string> args = {});
  ~HeraldProcess();

  bool ok() const { return pid_ > 0 && !ws_address_.empty() && !grpc_address_.empty(); }
  const std::string& ws_address() const { return ws_address_; }      // "127.0.0.1:PORT"
  const std::string& grpc_address() const { return grpc_address_; }  // "127.0.0.1:PORT"
  std::string ws_url(const std::string& query = "") const {
    return "ws://" + ws_address_ + "/ws" + query;
  }
  pid_t pid() const { return pid_; }
  // The CPU time (user + system) the process has used so far, from /proc; 10 ms ticks.
  absl::Duration CpuTime() const;
  // Whether the process still holds a TCP socket whose peer is 127.0.0.1:`peer_port` (from
  // /proc: its network namespace's sockets and its own descriptors), e.g. a client it closed.
  bool HoldsSocketTo(int peer_port) const;
  // A Broker stub on a fresh channel.
  std::unique_ptr<v1::Broker::Stub> Stub() const;
  std::shared_ptr<grpc::Channel> Channel() const;

  // Sends `signal` and waits up to `timeout` for the exit; the exit code, or nullopt on timeout
  // (then the process is killed) or when it died from a signal.
  std::optional<int> Stop(int signal, absl::Duration timeout = absl::Seconds(20));
  // Everything herald wrote to stderr so far.
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  std::string ws_address_;
  std::string grpc_address_;
  std::string stderr_path_;
};

// Runs a command to completion with a deadline; returns exit code, stdout and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(30));

// True when $TEST_REDIS_URL runs the suite on the Redis engine (tests/integration/redis_suite.cc).
// A test of what only the memory engine does skips itself then: GTEST_SKIP() with the reason.
bool OnRedisEngine();

// Path of a binary built by this project (set by CMake); HeraldBinary() prefers $HERALD_BIN.
std::string HeraldBinary();
std::string HeraldctlBinary();

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
template <typename Fn>
bool WaitFor(Fn condition, absl::Duration timeout = absl::Seconds(10));

}  // namespace herald::testing

#include "absl/time/clock.h"

namespace herald::testing {
template <typename Fn>
bool WaitFor(Fn condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}
}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_HERALD_PROCESS_H_
