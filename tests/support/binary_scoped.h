#ifndef HERALD_TESTS_SUPPORT_BINARY_SCOPED_H_
#define HERALD_TESTS_SUPPORT_BINARY_SCOPED_H_

#include "gtest/gtest.h"

namespace herald::testing {

// One T (e.g. a RedisServer, a RedisClusterServers) for the whole test binary: made on first use,
// so a binary that lists its tests starts nothing, and destroyed after the last test (a gtest
// environment's TearDown), so its processes never outlive the run. Thread-safe first use (a
// function-local static).
template <typename T>
T* BinaryScoped() {
  class Destroy : public ::testing::Environment {
   public:
    explicit Destroy(T* object) : object_(object) {}
    void TearDown() override { delete object_; }

   private:
    T* const object_;
  };
  static T* const object = [] {
    T* made = new T();
    ::testing::AddGlobalTestEnvironment(new Destroy(made));
    return made;
  }();
  return object;
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_BINARY_SCOPED_H_
