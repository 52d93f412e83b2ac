// JwtVerifier::Verify of the storm's own kind of token (HS256, `sub`, `exp`, `iat`, empty
// `channels`), hot, 3M calls. Built from a build tree's static libraries (2026-12-03 20:30 UTC):
//   g++ -O2 -g -std=c++17 -I. verify.cc -o verify build/default/server/auth/libherald_auth.a \
//     build/default/server/json/libherald_json.a $(pkg-config --libs protobuf) -lcrypto \
//     $(ls /usr/lib/x86_64-linux-gnu/libabsl_*.so | sed 's|.*/lib\(absl_[^.]*\)\.so|-l\1|')
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ./verify
#include <chrono>
#include <cstdio>
#include <string>
#include "absl/time/clock.h"
#include "server/auth/jwt.h"
using Clock = std::chrono::steady_clock;
template <class F>
void Bench(const char* name, F f, int n = 3000000) {
  for (int i = 0; i < 1000; ++i) f();
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) f();
  printf("%-40s %8.1f ns\n", name,
         std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n);
}
volatile bool sink;
int main(int argc, char** argv) {
  herald::auth::JwtKeys keys;
  keys.hs256_secret = "bench-secret-0123456789abcdef";
  auto v = herald::auth::JwtVerifier::Create(keys);
  std::string claims = herald::auth::ClaimsJson("bench-user", absl::Now() + absl::Hours(1), {});
  auto token = herald::auth::SignJwt("HS256", keys.hs256_secret, claims);
  printf("token %zu bytes: %s\n", token->size(), claims.c_str());
  absl::Time now = absl::Now();
  Bench("Verify", [&] {
    auto c = (*v)->Verify(*token, now);
    sink = c.ok();
  });
}
