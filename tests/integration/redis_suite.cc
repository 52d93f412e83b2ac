// Runs one integration test binary (argv[1], with the arguments after it) on the Redis engine:
// starts a real redis-server on a free loopback port (tests/support/redis_server.h), runs the
// binary with $TEST_REDIS_URL naming it — so every herald the binary starts is a node with
// --engine redis and a key prefix of its own (tests/support/herald_process.cc) — and stops the
// server. Exits with the binary's exit code, and prints its output when it failed. Tests that only
// make sense on the memory engine skip themselves in that mode, saying why. ctest runs one of
// these per integration binary (label redis-suite, tests/integration/CMakeLists.txt).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/support/herald_process.h"
#include "tests/support/redis_server.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: redis_suite TEST_BINARY [ARGS...]\n");
    return 2;
  }
  herald::testing::RedisServer redis;
  if (!redis.ok()) {
    std::fprintf(stderr, "redis_suite: redis-server did not start\n%s\n", redis.Log().c_str());
    return 1;
  }
  setenv("TEST_REDIS_URL", redis.url().c_str(), 1);
  std::vector<std::string> command(argv + 1, argv + argc);
  command.push_back("--gtest_brief=1");
  herald::testing::CommandResult r = herald::testing::RunCommand(command, absl::Minutes(15));
  std::fputs(r.out.c_str(), stdout);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "%s on the Redis engine (%s) failed with exit code %d\n%s\n", argv[1],
                 redis.url().c_str(), r.exit_code, r.err.c_str());
    return r.exit_code == 0 ? 1 : r.exit_code;
  }
  return 0;
}
