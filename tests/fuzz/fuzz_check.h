#ifndef HERALD_TESTS_FUZZ_FUZZ_CHECK_H_
#define HERALD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// What every fuzz target shares: a fixed clock, the HS256 secret of the seed tokens and an
// invariant check.
namespace herald::fuzz {

// The instant every fuzz target runs at, so that an input behaves the same on every run (token
// expiry, TTLs): 2030-01-01T00:00:00Z. Seed tokens expire in 2100.
inline absl::Time FuzzNow() { return absl::FromUnixSeconds(1893456000); }

// The HS256 secret of the fuzz targets' verifiers; the seed tokens are signed with it.
inline constexpr absl::string_view kHs256Secret = "herald-fuzz-secret";

// An invariant of Herald's that the input broke: prints it and aborts, which libFuzzer reports
// as a crash with the input that caused it.
[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "herald fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}
inline void Check(bool condition, const std::string& what) {
  if (!condition) Fail(what);
}

}  // namespace herald::fuzz

#endif  // HERALD_TESTS_FUZZ_FUZZ_CHECK_H_
