#include "server/auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "rapidjson/document.h"
#include "server/json/json_check.h"
#include "server/json/json_value.h"

namespace herald::auth {
namespace {

namespace pb = google::protobuf;

constexpr size_t kMaxUserBytes = 255;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

absl::Status Unauthenticated(absl::string_view field, absl::string_view what) {
  return absl::UnauthenticatedError(absl::StrCat(field, ": ", what));
}

// Decodes one base64url segment; JWS forbids padding and any other alphabet.
// (WebSafeBase64Unescape alone would take padding and skip whitespace.)
bool DecodeSegment(absl::string_view in, std::string* out) {
  constexpr absl::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return in.find_first_not_of(kAlphabet) == absl::string_view::npos &&
         absl::WebSafeBase64Unescape(in, out);
}

// A JWT's header and claims are flat objects; deeper nesting is refused while the DOM is built
// (one iterative pass, no recursion), since the header is read before the signature is checked.
// RapidJSON's DOM reads them (protobuf's JSON parser cost a handshake several times more, for two
// small objects).
constexpr size_t kMaxJwtJsonDepth = 16;

// A token segment's DOM, taking its nodes and strings from a pool on the stack (by default
// RapidJSON makes a 64 KB first chunk per document: a malloc and fresh pages on every handshake
// with a token), and its parse stack (RapidJSON's default 1 KB) from `crt`, which is stateless,
// rather than from a CrtAllocator the document would allocate.
template <size_t kPoolBytes>
struct StackDocument {
  char buffer[kPoolBytes];
  rapidjson::MemoryPoolAllocator<> pool{buffer, sizeof buffer};
  rapidjson::CrtAllocator crt;
  rapidjson::Document doc{&pool, /*stackCapacity=*/1024, &crt};
};

// A header segment longer than this (a real one is 36 bytes, or ~60 with a `kid`) is checked on
// every token rather than kept for the next.
constexpr size_t kMaxRememberedHeaderBytes = 256;

// What is wrong with a segment that is not a JSON object: ParseJson's words (syntax, nesting
// deeper than kMaxJwtJsonDepth, with the byte offset), else "not a base64url JSON object".
absl::Status ParseObject(absl::string_view json, rapidjson::Document* out) {
  if (absl::Status st = json::ParseJson(json, kMaxJwtJsonDepth, out); !st.ok()) return st;
  if (!out->IsObject()) return absl::InvalidArgumentError("not a base64url JSON object");
  return absl::OkStatus();
}

// Decodes a token segment into `json` (a thread's scratch string) and reads it into `out`;
// `field` ("token.header", "token.payload") names it in the refusal.
absl::Status ReadSegment(absl::string_view segment, absl::string_view field, std::string* json,
                         rapidjson::Document* out) {
  if (!DecodeSegment(segment, json)) {
    return Unauthenticated(field, "malformed: not a base64url JSON object");
  }
  if (absl::Status st = ParseObject(*json, out); !st.ok()) {
    return Unauthenticated(field, absl::StrCat("malformed: ", st.message()));
  }
  return absl::OkStatus();
}

const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string String(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

PkeyPtr ReadRsaKey(absl::string_view pem, bool private_key) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return nullptr;
  PkeyPtr key(private_key ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                          : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return nullptr;
  return key;
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

// What one thread keeps between tokens for the last verifier it ran. `serial` names that
// verifier, so nothing kept for one serves another, even one made at a reused address; a token
// for another verifier starts afresh.
struct VerifierThreadState {
  uint64_t serial = 0;
  // A copy of the verifier's keyed HS256 context (JwtVerifier::hs256_keyed_, never changed),
  // restarted per token (EVP_MAC_init without a key keeps the key): copying the keyed context for
  // every token (allocations for the MAC and its three digest contexts) cost twice the MAC.
  EVP_MAC_CTX* mac = nullptr;
  // The last header segment CheckHeader accepted, and whether it named HS256: tokens from one
  // issuer carry the same header bytes, and CheckHeader's outcome depends on those bytes and the
  // verifier's keys alone.
  std::string header;
  bool header_hs256 = false;
  ~VerifierThreadState() { EVP_MAC_CTX_free(mac); }
};

VerifierThreadState& ThreadStateFor(uint64_t serial) {
  thread_local VerifierThreadState state;
  if (state.serial != serial) {
    EVP_MAC_CTX_free(state.mac);
    state.mac = nullptr;
    state.header.clear();
    state.serial = serial;
  }
  return state;
}

// HMAC-SHA256 of `data` with `keyed`, on this thread's copy of it in `state`. Writes the MAC to
// `mac` (EVP_MAX_MD_SIZE bytes) and returns its length, 0 on failure.
size_t HmacSha256(const EVP_MAC_CTX* keyed, VerifierThreadState& state, absl::string_view data,
                  unsigned char* mac) {
  if (state.mac == nullptr) {
    state.mac = EVP_MAC_CTX_dup(keyed);
  } else if (EVP_MAC_init(state.mac, nullptr, 0, nullptr) != 1) {
    return 0;
  }
  size_t len = 0;
  const bool ok = state.mac != nullptr &&
                  EVP_MAC_update(state.mac, reinterpret_cast<const unsigned char*>(data.data()),
                                 data.size()) == 1 &&
                  EVP_MAC_final(state.mac, mac, &len, EVP_MAX_MD_SIZE) == 1;
  return ok ? len : 0;
}

bool RsaSha256Verify(EVP_PKEY* key, absl::string_view data, absl::string_view signature) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

absl::Time FromNumericDate(double seconds) { return absl::UnixEpoch() + absl::Seconds(seconds); }

}  // namespace

std::string Base64Url(absl::string_view bytes) { return absl::WebSafeBase64Escape(bytes); }

absl::StatusOr<std::unique_ptr<const JwtVerifier>> JwtVerifier::Create(const JwtKeys& keys) {
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        "jwt: configure an HS256 secret or an RS256 public key (or neither and no verifier)");
  }
  std::unique_ptr<JwtVerifier> v(new JwtVerifier());
  static std::atomic<uint64_t> next_serial{1};
  v->serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
  v->hs256_secret_ = keys.hs256_secret;
  if (!v->hs256_secret_.empty()) {
    EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* keyed = hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr;
    EVP_MAC_free(hmac);  // the context holds its own reference
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_END};
    if (keyed == nullptr ||
        EVP_MAC_init(keyed, reinterpret_cast<const unsigned char*>(v->hs256_secret_.data()),
                     v->hs256_secret_.size(), params) != 1) {
      EVP_MAC_CTX_free(keyed);
      return absl::InternalError("jwt: OpenSSL has no HMAC-SHA256");
    }
    v->hs256_keyed_ = keyed;
  }
  if (!keys.rs256_public_key_pem.empty()) {
    PkeyPtr key = ReadRsaKey(keys.rs256_public_key_pem, /*private_key=*/false);
    if (key == nullptr) {
      return absl::InvalidArgumentError(
          "jwt-rs256-public-key: not a PEM RSA public key (expected '-----BEGIN PUBLIC KEY-----', "
          "e.g. from 'openssl rsa -in key.pem -pubout')");
    }
    v->rs256_public_key_ = key.release();
  }
  return std::unique_ptr<const JwtVerifier>(std::move(v));
}

JwtVerifier::~JwtVerifier() {
  EVP_MAC_CTX_free(hs256_keyed_);
  EVP_PKEY_free(rs256_public_key_);
}

absl::StatusOr<bool> JwtVerifier::CheckHeader(absl::string_view segment) const {
  thread_local std::string header_json;
  StackDocument<1024> dom;
  const rapidjson::Document& header = dom.doc;
  if (absl::Status st = ReadSegment(segment, "token.header", &header_json, &dom.doc); !st.ok()) {
    return st;
  }
  const rapidjson::Value* alg_value = Member(header, "alg");
  if (alg_value == nullptr || !alg_value->IsString()) {
    return Unauthenticated("token.header.alg", "required");
  }
  const absl::string_view alg(alg_value->GetString(), alg_value->GetStringLength());
  if (absl::EqualsIgnoreCase(alg, "none")) {
    return Unauthenticated("token.header.alg", "'none' is not accepted: tokens must be signed");
  }
  if (alg != "HS256" && alg != "RS256") {
    return Unauthenticated("token.header.alg", absl::StrCat("unsupported algorithm '", alg,
                                                            "'; expected HS256 or RS256"));
  }
  if (alg == "HS256" && !accepts_hs256()) {
    return Unauthenticated("token.header.alg",
                           "HS256 is not accepted by this server (no HS256 secret configured)");
  }
  if (alg == "RS256" && !accepts_rs256()) {
    return Unauthenticated("token.header.alg",
                           "RS256 is not accepted by this server (no RS256 public key configured)");
  }
  if (Member(header, "crit") != nullptr) {
    return Unauthenticated("token.header.crit", "not supported");
  }
  return alg == "HS256";
}

absl::StatusOr<Claims> JwtVerifier::Verify(absl::string_view token, absl::Time now) const {
  if (token.empty()) return Unauthenticated("token", "required");
  if (token.size() > kMaxTokenBytes) {
    return Unauthenticated("token", absl::StrCat("longer than ", kMaxTokenBytes, " bytes"));
  }
  // Three base64url parts joined by '.'.
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == absl::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == absl::string_view::npos || token.find('.', dot2 + 1) != absl::string_view::npos) {
    return Unauthenticated("token", "malformed: expected three base64url parts joined by '.'");
  }
  const absl::string_view parts[3] = {
      token.substr(0, dot1), token.substr(dot1 + 1, dot2 - dot1 - 1), token.substr(dot2 + 1)};
  // The decoded segments go into this thread's scratch strings, which keep their capacity from
  // one token to the next (allocations per handshake otherwise).
  thread_local std::string payload_json, signature;
  // A header this thread accepted for this verifier last time is not decoded and read again.
  // The signature and claims are checked for every token.
  VerifierThreadState& state = ThreadStateFor(serial_);
  bool hs256 = false;
  if (!parts[0].empty() && parts[0] == state.header) {
    hs256 = state.header_hs256;
  } else {
    absl::StatusOr<bool> checked = CheckHeader(parts[0]);
    if (!checked.ok()) return checked.status();
    hs256 = *checked;
    if (parts[0].size() <= kMaxRememberedHeaderBytes) {
      state.header.assign(parts[0].data(), parts[0].size());
      state.header_hs256 = hs256;
    }
  }
  if (parts[2].empty() || !DecodeSegment(parts[2], &signature)) {
    return Unauthenticated("token.signature", "malformed: not base64url");
  }
  const absl::string_view signed_part = token.substr(0, parts[0].size() + 1 + parts[1].size());
  bool valid = false;
  if (hs256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    const size_t mac_size = HmacSha256(hs256_keyed_, state, signed_part, mac);
    valid = mac_size > 0 && signature.size() == mac_size &&
            CRYPTO_memcmp(signature.data(), mac, mac_size) == 0;
  } else {
    valid = RsaSha256Verify(rs256_public_key_, signed_part, signature);
  }
  if (!valid) return Unauthenticated("token.signature", "does not verify");

  // Only a token that verifies gets its claims read.
  StackDocument<4096> dom;
  const rapidjson::Document& payload = dom.doc;
  if (absl::Status st = ReadSegment(parts[1], "token.payload", &payload_json, &dom.doc); !st.ok()) {
    return st;
  }
  Claims claims;
  const rapidjson::Value* sub = Member(payload, "sub");
  if (sub == nullptr) return Unauthenticated("token.sub", "required");
  if (!sub->IsString() || sub->GetStringLength() == 0) {
    return Unauthenticated("token.sub", "must be a non-empty string");
  }
  if (sub->GetStringLength() > kMaxUserBytes) {
    return Unauthenticated("token.sub", absl::StrCat("longer than ", kMaxUserBytes, " bytes"));
  }
  claims.user = String(*sub);
  const rapidjson::Value* exp = Member(payload, "exp");
  if (exp == nullptr) return Unauthenticated("token.exp", "required");
  if (!exp->IsNumber() || !std::isfinite(exp->GetDouble())) {
    return Unauthenticated("token.exp", "must be a number (seconds since the Unix epoch)");
  }
  claims.expires_at = FromNumericDate(exp->GetDouble());
  if (now >= claims.expires_at) {
    return Unauthenticated("token.exp", absl::StrCat("expired at ", Rfc3339(claims.expires_at)));
  }
  if (const rapidjson::Value* nbf = Member(payload, "nbf"); nbf != nullptr) {
    if (!nbf->IsNumber()) {
      return Unauthenticated("token.nbf", "must be a number (seconds since the Unix epoch)");
    }
    const absl::Time not_before = FromNumericDate(nbf->GetDouble());
    if (now < not_before) {
      return Unauthenticated("token.nbf", absl::StrCat("not valid before ", Rfc3339(not_before)));
    }
  }
  for (auto [name, out] :
       {std::pair<const char*, std::vector<std::string>*>{"channels", &claims.channels},
        {"publish", &claims.publish}}) {
    const rapidjson::Value* patterns = Member(payload, name);
    if (patterns == nullptr) continue;
    if (!patterns->IsArray()) {
      return Unauthenticated(absl::StrCat("token.", name), "must be an array of strings");
    }
    const auto list = patterns->GetArray();
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
      if (!list[i].IsString() || list[i].GetStringLength() == 0) {
        return Unauthenticated(absl::StrCat("token.", name, "[", i, "]"),
                               "must be a non-empty string");
      }
      out->push_back(String(list[i]));
    }
  }
  if (const rapidjson::Value* info = Member(payload, "info"); info != nullptr) {
    if (!info->IsObject()) return Unauthenticated("token.info", "must be a JSON object");
    pb::Value value;  // bounded in depth: kMaxJwtJsonDepth
    if (absl::Status st = json::ToValue(*info, &value); !st.ok()) {
      return Unauthenticated("token.info", st.message());
    }
    claims.info = std::make_shared<const pb::Struct>(std::move(*value.mutable_struct_value()));
  }
  return claims;
}

absl::StatusOr<std::string> SignJwt(absl::string_view alg, absl::string_view key,
                                    absl::string_view claims_json) {
  // Any JSON object (the operator's own): a verifier refuses one nested too deep, and says so.
  rapidjson::Document check;
  check.Parse(claims_json.data(), claims_json.size());
  if (check.HasParseError() || !check.IsObject()) {
    return absl::InvalidArgumentError("claims: not a JSON object");
  }
  if (key.empty()) return absl::InvalidArgumentError("key: required");
  const std::string signing_input =
      absl::StrCat(Base64Url(absl::StrCat(R"({"alg":")", alg, R"(","typ":"JWT"})")), ".",
                   Base64Url(claims_json));
  std::string signature;
  if (alg == "HS256") {
    signature = HmacSha256(key, signing_input);
  } else if (alg == "RS256") {
    PkeyPtr pkey = ReadRsaKey(key, /*private_key=*/true);
    if (pkey == nullptr) {
      return absl::InvalidArgumentError("key: not a PEM RSA private key");
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (ctx == nullptr ||
        EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      return absl::InternalError("RS256 signing failed");
    }
    signature.resize(len);
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      return absl::InternalError("RS256 signing failed");
    }
    signature.resize(len);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("alg: unsupported algorithm '", alg, "'; expected HS256 or RS256"));
  }
  return absl::StrCat(signing_input, ".", Base64Url(signature));
}

std::string ClaimsJson(absl::string_view sub, absl::Time expires_at,
                       const std::vector<std::string>& channels) {
  pb::Struct claims;
  auto& f = *claims.mutable_fields();
  f["sub"].set_string_value(std::string(sub));
  f["exp"].set_number_value(static_cast<double>(absl::ToUnixSeconds(expires_at)));
  f["iat"].set_number_value(static_cast<double>(absl::ToUnixSeconds(absl::Now())));
  auto* list = f["channels"].mutable_list_value();
  for (const std::string& ch : channels) list->add_values()->set_string_value(ch);
  std::string json;
  (void)pb::util::MessageToJsonString(claims, &json);
  return json;
}

namespace {

bool MatchesAny(const std::vector<std::string>& patterns, absl::string_view channel) {
  for (const std::string& pattern : patterns) {
    absl::string_view p = pattern;
    if (absl::ConsumeSuffix(&p, "*")) {
      if (absl::StartsWith(channel, p)) return true;
    } else if (p == channel) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool ChannelAllowed(const Claims& claims, absl::string_view channel) {
  return channel == absl::StrCat("customer:", claims.user) || MatchesAny(claims.channels, channel);
}

bool PublishAllowed(const Claims& claims, absl::string_view channel) {
  return MatchesAny(claims.publish, channel);
}

}  // namespace herald::auth
