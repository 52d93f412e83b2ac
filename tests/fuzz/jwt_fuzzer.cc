// Fuzzes the JWT parser and verifier (auth::JwtVerifier::Verify) with HS256 and RS256 keys.
//
// Input: the first byte picks the mode (its low two bits):
//   0  the rest is a token, verified with both an HS256 secret and an RS256 public key;
//   1  the same with the HS256 secret only;  2  with the RS256 key only;
//   3  the rest is "<header JSON>\n<claims JSON>": the fuzzer assembles and HS256-signs the
//      token itself, so that the header and claims checks after the signature are reached.
// Invariants: no crash/leak/UB (sanitizers); a token that verifies has a non-empty `sub` of at
// most 255 bytes and has not expired at the time it was verified at.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/auth/jwt.h"
#include "tests/fuzz/fuzz_check.h"

namespace herald::fuzz {
namespace {

// The public half of a throwaway RSA key; the RS256 seed tokens in corpus/jwt were signed with
// its private half, which is not kept.
constexpr absl::string_view kRs256PublicKey = R"(
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtPbAExGEDO4KNHj0drsJ
YAusCC+FdS+9WvPjqJDgXgJz0CyREDXCktdAbVoykEE2LVJWy5KPzAsVOBIdbX8M
irT8FFGG7j6IdkNB+PnyVvPRUPXW8/IRw3L0r+CHnZm8kR8Aq6u0TJlVBw1W2SE0
lFxKV1aqEjMUeVlrfuug0MUCpYzHRbohad+Um4+6sUsPHftVupr2/DQshTL0Vr5f
SFK8XgpYR2IwOIRephcOo163CRupk1YknCI7KrhSVA7YQ8cUqSey2Xt/sCktibYg
JnzXC0vLfbcPRnw6w7i2hd+SLvrZ/Q1u8JSqH7nY7TtDegOApR2LPrjYdJwvKjms
5QIDAQAB
-----END PUBLIC KEY-----
)";

const auth::JwtVerifier& Verifier(int mode) {
  static const auth::JwtVerifier* const both =
      auth::JwtVerifier::Create({std::string(kHs256Secret), std::string(kRs256PublicKey)})
          ->release();
  static const auth::JwtVerifier* const hs256 =
      auth::JwtVerifier::Create({std::string(kHs256Secret), ""})->release();
  static const auth::JwtVerifier* const rs256 =
      auth::JwtVerifier::Create({"", std::string(kRs256PublicKey)})->release();
  return mode == 1 ? *hs256 : mode == 2 ? *rs256 : *both;
}

std::string SignHs256(absl::string_view header, absl::string_view claims) {
  const std::string input = absl::StrCat(auth::Base64Url(header), ".", auth::Base64Url(claims));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kHs256Secret.data(), static_cast<int>(kHs256Secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return absl::StrCat(input, ".",
                      auth::Base64Url(absl::string_view(reinterpret_cast<char*>(mac), len)));
}

void Run(absl::string_view input) {
  if (input.empty()) return;
  const int mode = static_cast<uint8_t>(input[0]) & 3;
  input.remove_prefix(1);
  std::string token(input);
  if (mode == 3) {
    const size_t nl = input.find('\n');
    if (nl == absl::string_view::npos) return;
    token = SignHs256(input.substr(0, nl), input.substr(nl + 1));
  }
  absl::StatusOr<auth::Claims> claims = Verifier(mode).Verify(token, FuzzNow());
  if (!claims.ok()) {
    Check(claims.status().code() == absl::StatusCode::kUnauthenticated,
          absl::StrCat("Verify failed with a code other than UNAUTHENTICATED: ",
                       claims.status().ToString()));
    return;
  }
  Check(!claims->user.empty() && claims->user.size() <= 255, "verified token with a bad sub");
  Check(FuzzNow() < claims->expires_at, "verified an expired token");
  (void)auth::ChannelAllowed(*claims, "store:42");
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::fuzz::Run(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
