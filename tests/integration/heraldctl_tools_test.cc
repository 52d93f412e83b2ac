// heraldctl token and heraldctl simulate against the real binaries.
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/jwt.h"
#include "tests/support/herald_process.h"
#include "tests/support/rsa_keys.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;

TEST(HeraldctlTokenTest, MintsATokenHeraldAccepts) {
  CommandResult r = RunCommand({HeraldctlBinary(), "token", "--sub", "u-42", "--channels",
                                "store:42, order:*", "--ttl", "120", "--secret", "s3cret"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string token(absl::StripTrailingAsciiWhitespace(r.out));
  auto verifier = auth::JwtVerifier::Create({"s3cret", ""});
  ASSERT_TRUE(verifier.ok());
  auto claims = (*verifier)->Verify(token, absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->user, "u-42");
  EXPECT_THAT(claims->channels, ::testing::ElementsAre("store:42", "order:*"));
  EXPECT_NEAR(absl::ToDoubleSeconds(claims->expires_at - absl::Now()), 120, 3);

  HeraldProcess herald({"--jwt-hs256-secret", "s3cret"});
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url("?token=" + token)));
  EXPECT_TRUE(c.Subscribe("order:o-1"));
}

TEST(HeraldctlTokenTest, MintsRs256WithAPrivateKey) {
  const RsaKeyPair keys = GenerateRsaKeyPair();
  const std::string key_file = ::testing::TempDir() + "/heraldctl-rs256.pem";
  std::ofstream(key_file) << keys.private_pem;
  CommandResult r = RunCommand({HeraldctlBinary(), "token", "--sub", "u-rs", "--channels", "orders",
                                "--private-key", key_file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto verifier = auth::JwtVerifier::Create({"", keys.public_pem});
  ASSERT_TRUE(verifier.ok());
  auto claims =
      (*verifier)->Verify(std::string(absl::StripTrailingAsciiWhitespace(r.out)), absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->user, "u-rs");
}

TEST(HeraldctlTokenTest, NeedsExactlyOneKey) {
  CommandResult none = RunCommand(
      {"/usr/bin/env", "-u", "HERALD_JWT_HS256_SECRET", HeraldctlBinary(), "token", "--sub", "u1"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("token needs --secret S (HS256) or --private-key FILE"));
  CommandResult missing_sub = RunCommand({HeraldctlBinary(), "token", "--secret", "x"});
  EXPECT_EQ(missing_sub.exit_code, 2);
  CommandResult empty =
      RunCommand({HeraldctlBinary(), "token", "--sub", "u1", "--private-key", "/dev/null"});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("--private-key: cannot read /dev/null (or it is empty)"));
  const std::string garbage = ::testing::TempDir() + "/heraldctl-not-a-key.pem";
  std::ofstream(garbage) << "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n";
  CommandResult bad_key =
      RunCommand({HeraldctlBinary(), "token", "--sub", "u1", "--private-key", garbage});
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_THAT(bad_key.err, HasSubstr("heraldctl: --private-key: not a PEM RSA private key"));
}

TEST(HeraldctlSimulateTest, PublishesOrderLifecyclesInVersionOrder) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  WsClient board;
  ASSERT_TRUE(board.Connect(herald.ws_url()));
  ASSERT_TRUE(board.Subscribe("store:42"));
  CommandResult r = RunCommand({HeraldctlBinary(), "--server", herald.grpc_address(), "simulate",
                                "--stores", "42", "--rate", "20", "--step", "0.05", "--duration",
                                "2", "--seed", "7", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("simulating orders for store 42 at 20/s for 2 s"));
  EXPECT_THAT(r.out, HasSubstr("order versions (0 stale)"));

  // Every publication is an order of store 42; each order's versions arrive 1, 2, 3, ...
  // with statuses along the lifecycle.
  const std::vector<std::string> lifecycle = {"ORDER_STATUS_CREATED",   "ORDER_STATUS_ACCEPTED",
                                              "ORDER_STATUS_PREPARING", "ORDER_STATUS_READY",
                                              "ORDER_STATUS_SHIPPED",   "ORDER_STATUS_DELIVERED"};
  std::map<std::string, std::vector<std::string>> statuses;
  std::set<std::string> stopped;  // cancelled because the simulation ended
  // The simulator closes the orders still open when it stops: once its last publication is
  // here, no order of the run is left open (a board would show it forever).
  auto open_orders = [&board] {
    std::map<std::string, std::string> last;
    for (const v1::ServerFrame& f : board.Publications()) {
      const auto& fields = f.pub().data().struct_value().fields();
      last[fields.at("id").string_value()] = fields.at("status").string_value();
    }
    size_t open = 0;
    for (const auto& [id, status] : last) {
      if (status != "ORDER_STATUS_DELIVERED" && status != "ORDER_STATUS_CANCELLED") ++open;
    }
    return open;
  };
  EXPECT_TRUE(WaitFor([&] { return open_orders() == 0; })) << open_orders() << " orders left open";
  EXPECT_THAT(r.out, HasSubstr("orders still open"));
  std::vector<v1::ServerFrame> pubs = board.Publications();
  ASSERT_GT(pubs.size(), 20u);
  size_t delivered = 0;
  for (const v1::ServerFrame& f : pubs) {
    const auto& fields = f.pub().data().struct_value().fields();
    EXPECT_EQ(fields.at("storeId").string_value(), "42");
    const std::string& id = fields.at("id").string_value();
    uint64_t version = 0;
    ASSERT_TRUE(absl::SimpleAtoi(fields.at("version").string_value(), &version));
    auto& seen = statuses[id];
    EXPECT_EQ(version, seen.size() + 1) << id;
    seen.push_back(fields.at("status").string_value());
    if (auto attrs = fields.find("attributes"); attrs != fields.end()) {
      const auto& a = attrs->second.struct_value().fields();
      if (auto reason = a.find("cancel_reason");
          reason != a.end() && reason->second.string_value() == "simulation stopped") {
        stopped.insert(id);
      }
    }
    EXPECT_GT(fields.at("total").struct_value().fields().count("minorUnits"), 0u);
  }
  for (const auto& [id, seen] : statuses) {
    for (size_t i = 0; i < seen.size(); ++i) {
      if (seen[i] == "ORDER_STATUS_CANCELLED") {
        EXPECT_EQ(i + 1, seen.size()) << id << ": cancelled is final";
        if (stopped.count(id) == 0) EXPECT_LE(i, 2u) << id << ": only cancelled before preparing";
        break;
      }
      EXPECT_EQ(seen[i], lifecycle[i]) << id;
    }
    if (seen.back() == "ORDER_STATUS_DELIVERED") ++delivered;
  }
  EXPECT_GT(delivered, 0u);
}

}  // namespace
}  // namespace herald::testing
