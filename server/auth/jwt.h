#ifndef HERALD_SERVER_AUTH_JWT_H_
#define HERALD_SERVER_AUTH_JWT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

// OpenSSL's EVP_PKEY and EVP_MAC_CTX, kept out of this header.
struct evp_pkey_st;
struct evp_mac_ctx_st;

namespace herald::auth {

// Largest token accepted (query parameter or `connect` frame).
inline constexpr size_t kMaxTokenBytes = 8192;

// The keys a server verifies client tokens with. Either or both may be set; a token is checked
// only with the key of the algorithm it names, so an HS256 token can never be checked against
// the RSA public key (no algorithm confusion). Plain value type.
struct JwtKeys {
  // Shared secret for HS256 tokens (empty: HS256 tokens are refused).
  std::string hs256_secret;
  // PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") of an RSA key for RS256 tokens
  // (empty: RS256 tokens are refused).
  std::string rs256_public_key_pem;

  bool empty() const { return hs256_secret.empty() && rs256_public_key_pem.empty(); }
};

// What a verified token says about its holder. Plain value type.
struct Claims {
  // `sub`: the user id; becomes the connection's user.
  std::string user;
  // `exp`: the token is refused at and after this instant.
  absl::Time expires_at;
  // `channels`: channel names and patterns the holder may subscribe to; a trailing `*` matches
  // any suffix (`order:*`). `customer:<sub>` is always allowed on top of these.
  std::vector<std::string> channels;
  // `publish`: channel names and patterns (as in `channels`) the holder may publish to with a
  // `publish` frame. None by default.
  std::vector<std::string> publish;
  // `info`: a JSON object about the holder, shown with it in presence (null: none).
  std::shared_ptr<const google::protobuf::Struct> info;
  // Set when a connect proxy's reply, not a token, gave these claims (`channels` is its `allow`):
  // a refusal then names the backend.
  bool from_connect_proxy = false;
};

// Verifies compact JWS tokens (RFC 7519) signed with HS256 or RS256 and reads Herald's claims:
// `sub` (required string), `exp` (required NumericDate), `nbf` (optional), `channels` and
// `publish` (optional arrays of strings), `info` (optional object). Refuses `alg: none`, any other
// algorithm, an algorithm whose key is not configured, a `crit` header, malformed base64url or
// JSON, and bad signatures. Owns the parsed keys; immutable after Create(), so Verify() is safe to
// call from any number of threads.
class JwtVerifier {
 public:
  // Fails with INVALID_ARGUMENT naming the key when the keys are empty or the PEM is not an RSA
  // public key.
  static absl::StatusOr<std::unique_ptr<const JwtVerifier>> Create(const JwtKeys& keys);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // The claims of a valid token, or UNAUTHENTICATED with a message that names the bad part
  // ("token.exp: expired at 2026-…", "token.signature: does not verify").
  absl::StatusOr<Claims> Verify(absl::string_view token, absl::Time now) const;

  bool accepts_hs256() const { return !hs256_secret_.empty(); }
  bool accepts_rs256() const { return rs256_public_key_ != nullptr; }

 private:
  JwtVerifier() = default;

  // Whether a header segment is acceptable: base64url JSON naming an algorithm this verifier has
  // a key for, with no `crit`. True for HS256, false for RS256.
  absl::StatusOr<bool> CheckHeader(absl::string_view segment) const;

  std::string hs256_secret_;
  // HMAC-SHA256 keyed with hs256_secret_ once; each thread verifies with its own copy of it
  // (OpenSSL 3's one-shot HMAC() looks the algorithm up and keys it again on every call: 2x the
  // cost).
  evp_mac_ctx_st* hs256_keyed_ = nullptr;
  // Unique per verifier: what a thread keeps between tokens (that copy, the last header it
  // accepted) is kept for one serial.
  uint64_t serial_ = 0;
  evp_pkey_st* rs256_public_key_ = nullptr;
};

// Signs `claims_json` (a JSON object) as a compact JWS. `alg` is "HS256" (key: the secret) or
// "RS256" (key: a PEM private RSA key). For heraldctl and tests.
absl::StatusOr<std::string> SignJwt(absl::string_view alg, absl::string_view key,
                                    absl::string_view claims_json);
// The JSON claims Herald reads, for `SignJwt`.
std::string ClaimsJson(absl::string_view sub, absl::Time expires_at,
                       const std::vector<std::string>& channels);
// base64url without padding (RFC 7515 §2), to assemble tokens by hand in tests.
std::string Base64Url(absl::string_view bytes);

// Whether `claims` allow subscribing to `channel`: an exact entry, a prefix pattern ending in
// `*` (a lone `*` allows every channel), or the holder's own `customer:<sub>`.
bool ChannelAllowed(const Claims& claims, absl::string_view channel);
// Whether `claims` allow publishing to `channel`: an entry of `publish`, matched the same way.
bool PublishAllowed(const Claims& claims, absl::string_view channel);

}  // namespace herald::auth

#endif  // HERALD_SERVER_AUTH_JWT_H_
