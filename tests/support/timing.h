#ifndef HERALD_TESTS_SUPPORT_TIMING_H_
#define HERALD_TESTS_SUPPORT_TIMING_H_

#include <cstdlib>

#include "absl/time/time.h"

namespace herald::testing {

// A time bound for work a test measures: `bound` in an optimized build, ten times that when the
// code runs instrumented — this test built with a sanitizer (ASan/UBSan, TSan), or the herald it
// starts taken from $HERALD_BIN (the TSan pass runs the default build's tests against a
// TSan-built herald). Instrumented code runs several times slower, and its bounds only catch
// stalls; the optimized build's catch regressions. Header-only, so that unit tests need no link.
inline absl::Duration TimeBound(absl::Duration bound) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return bound * 10;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
  return bound * 10;
#endif
#endif
  const char* other = std::getenv("HERALD_BIN");
  return other != nullptr && *other != '\0' ? bound * 10 : bound;
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_TIMING_H_
