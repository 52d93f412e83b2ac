// herald::auth: JWT verification and channel patterns, no sockets.
#include "server/auth/jwt.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/rsa_keys.h"

namespace herald::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kSecret[] = "unit-test-secret";

const testing::RsaKeyPair& Keys() {
  static const testing::RsaKeyPair* keys = new testing::RsaKeyPair(testing::GenerateRsaKeyPair());
  return *keys;
}

std::unique_ptr<const JwtVerifier> Verifier(JwtKeys keys) {
  auto v = JwtVerifier::Create(keys);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *std::move(v) : nullptr;
}

std::string ClaimsFor(absl::string_view sub = "u1", absl::Duration ttl = absl::Hours(1),
                      std::vector<std::string> channels = {"store:42", "order:*"}) {
  return ClaimsJson(sub, absl::Now() + ttl, channels);
}

std::string Hs256(absl::string_view claims, absl::string_view secret = kSecret) {
  auto t = SignJwt("HS256", secret, claims);
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

// A token with an arbitrary header and signature bytes.
std::string Raw(absl::string_view header, absl::string_view claims, absl::string_view sig) {
  return absl::StrCat(Base64Url(header), ".", Base64Url(claims), ".", Base64Url(sig));
}

absl::Status Check(const JwtVerifier& v, absl::string_view token) {
  return v.Verify(token, absl::Now()).status();
}

TEST(JwtTest, ValidHs256TokenGivesItsClaims) {
  auto v = Verifier({kSecret, ""});
  auto claims = v->Verify(Hs256(ClaimsFor("u-7")), absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->user, "u-7");
  EXPECT_THAT(claims->channels, ::testing::ElementsAre("store:42", "order:*"));
  EXPECT_GT(claims->expires_at, absl::Now() + absl::Minutes(59));
}

TEST(JwtTest, ValidRs256TokenGivesItsClaims) {
  ASSERT_FALSE(Keys().public_pem.empty());
  auto v = Verifier({"", Keys().public_pem});
  auto token = SignJwt("RS256", Keys().private_pem, ClaimsFor("u-rsa"));
  ASSERT_TRUE(token.ok()) << token.status();
  auto claims = v->Verify(*token, absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->user, "u-rsa");
}

TEST(JwtTest, ExpiredTokenIsRefused) {
  auto v = Verifier({kSecret, ""});
  absl::Status st = Check(*v, Hs256(ClaimsFor("u1", -absl::Seconds(5))));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(st.message()), StartsWith("token.exp: expired at "));
  // Expiry is checked against the time given, to the second.
  std::string token = Hs256(ClaimsJson("u1", absl::FromUnixSeconds(2000000000), {}));
  EXPECT_TRUE(v->Verify(token, absl::FromUnixSeconds(1999999999)).ok());
  EXPECT_FALSE(v->Verify(token, absl::FromUnixSeconds(2000000000)).ok());
}

TEST(JwtTest, WrongSignatureIsRefused) {
  auto v = Verifier({kSecret, ""});
  EXPECT_EQ(Check(*v, Hs256(ClaimsFor(), "another-secret")).message(),
            "token.signature: does not verify");
  // A valid signature over different claims.
  std::string good = Hs256(ClaimsFor("u1"));
  std::string forged = Hs256(ClaimsFor("admin"));
  std::string spliced = good.substr(0, good.find('.')) + forged.substr(forged.find('.'));
  spliced = spliced.substr(0, spliced.rfind('.')) + good.substr(good.rfind('.'));
  EXPECT_EQ(Check(*v, spliced).message(), "token.signature: does not verify");
  // RS256 signed with another key.
  auto other = testing::GenerateRsaKeyPair();
  auto rs = Verifier({"", Keys().public_pem});
  auto token = SignJwt("RS256", other.private_pem, ClaimsFor());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(Check(*rs, *token).message(), "token.signature: does not verify");
}

// Each thread keeps a copy of the last verifier's HMAC context: verifiers with other secrets, used
// in turn on one thread and from several threads at once, each check with their own secret only.
TEST(JwtTest, VerifiersWithOtherSecretsNeverShareAKey) {
  const std::string for_a = Hs256(ClaimsFor(), "secret-a");
  const std::string for_b = Hs256(ClaimsFor(), "secret-b");
  for (int round = 0; round < 3; ++round) {
    auto a = Verifier({"secret-a", ""});
    auto b = Verifier({"secret-b", ""});
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(Check(*a, for_a).ok());
      EXPECT_EQ(Check(*a, for_b).message(), "token.signature: does not verify");
      EXPECT_TRUE(Check(*b, for_b).ok());
      EXPECT_EQ(Check(*b, for_a).message(), "token.signature: does not verify");
    }
    // Destroyed and made again (perhaps at the same address) with the other secret.
    a.reset();
    a = Verifier({"secret-b", ""});
    EXPECT_EQ(Check(*a, for_a).message(), "token.signature: does not verify");
    EXPECT_TRUE(Check(*a, for_b).ok());
  }
  auto a = Verifier({"secret-a", ""});
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!Check(*a, for_a).ok() || Check(*a, for_b).ok()) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(JwtTest, AlgNoneIsRefused) {
  auto v = Verifier({kSecret, Keys().public_pem});
  for (const char* alg : {"none", "None", "NONE"}) {
    std::string token = absl::StrCat(Base64Url(absl::StrCat(R"({"alg":")", alg, R"("})")), ".",
                                     Base64Url(ClaimsFor()), ".");
    absl::Status st = Check(*v, token);
    EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << alg;
    EXPECT_THAT(std::string(st.message()), HasSubstr("token.header.alg: 'none' is not accepted"))
        << alg;
    // Also with some signature attached.
    EXPECT_THAT(std::string(Check(*v, token + "c2ln").message()),
                HasSubstr("'none' is not accepted"));
  }
}

TEST(JwtTest, HsRsConfusionIsRefused) {
  // The classic attack: an HS256 token whose HMAC key is the server's RSA public key.
  std::string token = Hs256(ClaimsFor("attacker"), Keys().public_pem);
  auto rs_only = Verifier({"", Keys().public_pem});
  EXPECT_EQ(Check(*rs_only, token).message(),
            "token.header.alg: HS256 is not accepted by this server (no HS256 secret configured)");
  // With both keys configured, an HS256 token is checked with the HS256 secret only.
  auto both = Verifier({kSecret, Keys().public_pem});
  EXPECT_EQ(Check(*both, token).message(), "token.signature: does not verify");
  // And the reverse: an RS256 token on an HS256-only server.
  auto rs = SignJwt("RS256", Keys().private_pem, ClaimsFor());
  ASSERT_TRUE(rs.ok());
  auto hs_only = Verifier({kSecret, ""});
  EXPECT_THAT(std::string(Check(*hs_only, *rs).message()), HasSubstr("RS256 is not accepted"));
  // Other algorithms are not accepted at all.
  EXPECT_THAT(std::string(Check(*both, Raw(R"({"alg":"HS512"})", ClaimsFor(), "x")).message()),
              HasSubstr("unsupported algorithm 'HS512'"));
  EXPECT_THAT(std::string(Check(*both, Raw(R"({"alg":"ES256"})", ClaimsFor(), "x")).message()),
              HasSubstr("unsupported algorithm 'ES256'"));
}

// A thread keeps the last header segment it accepted (tokens from one issuer share it): that
// must never decide for another verifier, another header, or a token whose other parts are bad.
TEST(JwtTest, ARememberedHeaderDecidesNothingElse) {
  const std::string hs = Hs256(ClaimsFor("u1"));
  auto rs = SignJwt("RS256", Keys().private_pem, ClaimsFor("u2"));
  ASSERT_TRUE(rs.ok());
  auto both = Verifier({kSecret, Keys().public_pem});
  auto rs_only = Verifier({"", Keys().public_pem});
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(Check(*both, hs).ok());
    // The same header bytes: the signature and the claims are still checked.
    EXPECT_EQ(Check(*both, Hs256(ClaimsFor("u1"), "other-secret")).message(),
              "token.signature: does not verify");
    EXPECT_THAT(std::string(Check(*both, Hs256(ClaimsFor("u1", -absl::Hours(1)))).message()),
                HasSubstr("token.exp: expired"));
    // Another verifier on this thread, which has no HS256 secret, reads the header itself.
    EXPECT_EQ(
        Check(*rs_only, hs).message(),
        "token.header.alg: HS256 is not accepted by this server (no HS256 secret configured)");
    // Alternating algorithms on one verifier: each header is read for what it says.
    EXPECT_TRUE(Check(*both, *rs).ok());
    EXPECT_TRUE(Check(*both, hs).ok());
    const std::string header = std::string(hs.substr(0, hs.find('.')));
    const std::string rs_signature = std::string(rs->substr(rs->rfind('.') + 1));
    // The HS256 header with an RS256 signature: checked as HMAC, which it is not.
    EXPECT_EQ(Check(*both, absl::StrCat(header, ".", Base64Url(ClaimsFor("u1")), ".", rs_signature))
                  .message(),
              "token.signature: does not verify");
    EXPECT_THAT(std::string(Check(*both, Raw(R"({"alg":"none"})", ClaimsFor(), "x")).message()),
                HasSubstr("'none' is not accepted"));
  }
}

TEST(JwtTest, MalformedTokensAreRefused) {
  auto v = Verifier({kSecret, ""});
  const std::string good = Hs256(ClaimsFor());
  struct Case {
    std::string token;
    std::string message_prefix;
  };
  const std::vector<Case> cases = {
      {"", "token: required"},
      {"abc", "token: malformed"},
      {"a.b", "token: malformed"},
      {good + ".extra", "token: malformed"},
      {"!!!." + good.substr(good.find('.') + 1), "token.header: malformed"},
      {Base64Url("not json") + ".e30.c2ln", "token.header: malformed"},
      {Base64Url("[1,2]") + ".e30.c2ln", "token.header: malformed"},
      {Base64Url(R"({"typ":"JWT"})") + ".e30.c2ln", "token.header.alg: required"},
      {Base64Url(R"({"alg":7})") + ".e30.c2ln", "token.header.alg: required"},
      {good.substr(0, good.rfind('.') + 1), "token.signature: malformed"},
      {good + "=", "token.signature: malformed"},
      // base64url only: no padding, whitespace or the other alphabet's '+' and '/'.
      {good.substr(0, good.size() - 4) + " " + good.substr(good.size() - 3),
       "token.signature: malformed"},
      {good.substr(0, good.size() - 4) + "+" + good.substr(good.size() - 3),
       "token.signature: malformed"},
      {good.substr(0, good.size() - 4) + "/" + good.substr(good.size() - 3),
       "token.signature: malformed"},
      {Base64Url(R"({"alg":"HS256"})") + "=." + good.substr(good.find('.') + 1),
       "token.header: malformed"},
      {std::string(kMaxTokenBytes + 1, 'a'), "token: longer than"},
  };
  for (const Case& c : cases) {
    absl::Status st = Check(*v, c.token);
    EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << c.token;
    EXPECT_THAT(std::string(st.message()), StartsWith(c.message_prefix)) << c.token;
  }
  EXPECT_FALSE(SignJwt("HS256", kSecret, "[]").ok());
  // A signed, empty claims object.
  auto raw = SignJwt("HS256", kSecret, "{}");
  ASSERT_TRUE(raw.ok());
  EXPECT_THAT(std::string(Check(*v, *raw).message()), StartsWith("token.sub: required"));
  // Header and claims nest at most 16 levels (the claims object is level 1), and the refusal
  // says so.
  const std::string deep_info = absl::StrCat(R"({"sub":"u1","exp":4102444800,"info":{"a":)",
                                             std::string(15, '['), std::string(15, ']'), "}}");
  auto deep = SignJwt("HS256", kSecret, deep_info);
  ASSERT_TRUE(deep.ok());
  EXPECT_EQ(std::string(Check(*v, *deep).message()),
            "token.payload: malformed: nested deeper than 16 levels at byte 55");
  const std::string fits = absl::StrCat(R"({"sub":"u1","exp":4102444800,"info":{"a":)",
                                        std::string(14, '['), std::string(14, ']'), "}}");
  auto ok = SignJwt("HS256", kSecret, fits);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(Check(*v, *ok).ok()) << Check(*v, *ok);
  // crit headers name extensions we do not implement.
  EXPECT_THAT(
      std::string(Check(*v, Raw(R"({"alg":"HS256","crit":["b64"]})", ClaimsFor(), "x")).message()),
      StartsWith("token.header.crit: not supported"));
}

TEST(JwtTest, MissingOrWrongClaimsAreRefused) {
  auto v = Verifier({kSecret, ""});
  const int64_t exp = absl::ToUnixSeconds(absl::Now() + absl::Hours(1));
  struct Case {
    std::string claims;
    std::string message;
  };
  const std::vector<Case> cases = {
      {absl::StrCat(R"({"exp":)", exp, "}"), "token.sub: required"},
      {absl::StrCat(R"({"sub":"","exp":)", exp, "}"), "token.sub: must be a non-empty string"},
      {absl::StrCat(R"({"sub":42,"exp":)", exp, "}"), "token.sub: must be a non-empty string"},
      {R"({"sub":"u1"})", "token.exp: required"},
      {R"({"sub":"u1","exp":"tomorrow"})", "token.exp: must be a number"},
      {absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"channels":"store:42"})"),
       "token.channels: must be an array of strings"},
      {absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"channels":["a",3]})"),
       "token.channels[1]: must be a non-empty string"},
      {absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"nbf":)", exp - 60, "}"),
       "token.nbf: not valid before"},
      {absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"info":{"n":{"a":1,"a":2}}})"),
       "token.info: Repeated map key: 'a' is already set."},
  };
  for (const Case& c : cases) {
    absl::Status st = Check(*v, Hs256(c.claims));
    EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << c.claims;
    EXPECT_THAT(std::string(st.message()), StartsWith(c.message)) << c.claims;
  }
  // nbf in the past is fine; channels may be absent.
  EXPECT_TRUE(Check(*v, Hs256(absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"nbf":1000})"))).ok());
}

TEST(JwtTest, CreateRefusesBadKeys) {
  EXPECT_FALSE(JwtVerifier::Create({}).ok());
  auto st = JwtVerifier::Create({"", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()),
              StartsWith("jwt-rs256-public-key: not a PEM RSA public key"));
  // A private key where the public key belongs is refused too.
  EXPECT_FALSE(JwtVerifier::Create({"", Keys().private_pem}).ok());
}

TEST(JwtTest, ChannelPatterns) {
  Claims c;
  c.user = "u9";
  c.channels = {"store:42", "order:*", "news"};
  EXPECT_TRUE(ChannelAllowed(c, "store:42"));
  EXPECT_FALSE(ChannelAllowed(c, "store:420"));
  EXPECT_FALSE(ChannelAllowed(c, "store:4"));
  EXPECT_TRUE(ChannelAllowed(c, "order:o-1"));
  EXPECT_TRUE(ChannelAllowed(c, "order:"));
  EXPECT_FALSE(ChannelAllowed(c, "orders"));
  EXPECT_TRUE(ChannelAllowed(c, "news"));
  EXPECT_FALSE(ChannelAllowed(c, "news:extra"));
  EXPECT_TRUE(ChannelAllowed(c, "customer:u9"));  // implicit
  EXPECT_FALSE(ChannelAllowed(c, "customer:u10"));
  EXPECT_FALSE(ChannelAllowed(c, "customer:u"));
  c.channels = {"*"};
  EXPECT_TRUE(ChannelAllowed(c, "anything:at:all"));
  c.channels = {};
  EXPECT_FALSE(ChannelAllowed(c, "orders"));
  EXPECT_TRUE(ChannelAllowed(c, "customer:u9"));
}

}  // namespace
}  // namespace herald::auth
