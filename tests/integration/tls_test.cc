// TLS on both ports: wss:// and https:// on the WebSocket port, gRPC over TLS (and mTLS) with
// heraldctl, modern protocol versions only, and certificate reload on SIGHUP.
#include <openssl/ssl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/raw_ws.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Throwaway certificates made with the openssl CLI in a fresh directory.
class Certs {
 public:
  Certs() : dir_(absl::StrCat(::testing::TempDir(), "/herald-tls-", getpid(), "-", ++count_)) {
    RunCommand({"/usr/bin/mkdir", "-p", dir_});
  }
  ~Certs() { RunCommand({"/usr/bin/rm", "-rf", dir_}); }
  std::string path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  // A self-signed server certificate for 127.0.0.1 (its own CA) in NAME.pem / NAME.key.
  void MakeServer(const std::string& name, const std::string& cn) {
    CommandResult r =
        RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout",
                    path(name + ".key"), "-out", path(name + ".pem")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // A client certificate NAME.pem / NAME.key signed by CA.pem / CA.key.
  void MakeClient(const std::string& name, const std::string& ca) {
    CommandResult r = RunCommand({"/usr/bin/openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=" + name,
                                  "-keyout", path(name + ".key"), "-out", path(name + ".csr")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = RunCommand({"/usr/bin/openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA",
                    path(ca + ".pem"), "-CAkey", path(ca + ".key"), "-CAcreateserial", "-days", "2",
                    "-out", path(name + ".pem")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void Copy(const std::string& from, const std::string& to) {
    ASSERT_EQ(RunCommand({"/usr/bin/cp", path(from), path(to)}).exit_code, 0);
  }

 private:
  static inline int count_ = 0;
  const std::string dir_;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_.MakeServer("a", "herald-a");
    certs_.Copy("a.pem", "server.pem");
    certs_.Copy("a.key", "server.key");
  }
  std::unique_ptr<HeraldProcess> Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--tls-cert", certs_.path("server.pem"), "--tls-key",
                                     certs_.path("server.key")};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<HeraldProcess>(args);
  }
  CommandResult Ctl(const HeraldProcess& herald, std::vector<std::string> args) {
    std::vector<std::string> argv = {HeraldctlBinary(), "--server", herald.grpc_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  CommandResult Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl",     "-sS", "-m", "10", "--cacert",
                                     certs_.path("a.pem")};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  // Reads frames until one's payload contains `text`.
  static bool ReadUntil(RawWsClient& ws, const std::string& text) {
    while (std::optional<RawWsClient::Frame> f = ws.Read()) {
      if (absl::StrContains(f->payload, text)) return true;
    }
    return false;
  }

  Certs certs_;
};

TEST_F(TlsTest, WssSubscribeAndPublishOverTlsEverywhere) {
  auto herald = Start();
  ASSERT_TRUE(herald->ok());
  RawWsClient ws;
  ASSERT_TRUE(ws.ConnectTls(herald->ws_address(), certs_.path("a.pem")));
  EXPECT_THAT(ws.PeerCertificate(), HasSubstr("CN=herald-a"));
  ASSERT_TRUE(ReadUntil(ws, "welcome"));
  ASSERT_TRUE(ws.SendText(R"({"id":1,"subscribe":{"channel":"news"}})"));
  ASSERT_TRUE(ReadUntil(ws, "subscribed"));

  // gRPC over TLS, verified against the server's certificate.
  CommandResult pub = Ctl(*herald, {"--ca", certs_.path("a.pem"), "publish", "news", R"({"n":1})"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_TRUE(ReadUntil(ws, R"("n":1)"));
  // A large publication crosses several TLS records and the 64 KB write chunk.
  const std::string big(100000, 'x');
  pub = Ctl(*herald, {"--tls", "--ca", certs_.path("a.pem"), "publish", "news",
                      absl::StrCat(R"({"big":")", big, R"("})")});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_TRUE(ReadUntil(ws, big));

  // https:// for the HTTP API, /healthz and /metrics.
  const std::string base = absl::StrCat("https://", herald->ws_address());
  CommandResult r = Curl({base + "/healthz"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("status":"ok")"));
  r = Curl({"-X", "POST", "-H", "Content-Type: application/json", "-d",
            R"({"channel":"news","data":{"n":2}})", base + "/api/v1/Publish"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadUntil(ws, R"("n":2)"));
  r = Curl({base + "/metrics"});
  EXPECT_THAT(r.out, HasSubstr("herald_"));
  // No event stream on a TLS port (docs/api.md, "TLS"): a 501 that says where to get one.
  r = Curl({"-w", "\n%{http_code}", base + "/api/v1/events"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("code":"UNIMPLEMENTED")"));
  EXPECT_THAT(r.out, HasSubstr("TLS-terminating proxy"));
  EXPECT_THAT(r.out, ::testing::EndsWith("\n501"));
}

// A wss:// peer that stops reading is gone within --close-timeout-ms of its close, as on ws://:
// with its socket full, the TLS shutdown after the close handshake's timeout (its close_notify
// cannot be written) does not hold the connection another 5 s.
TEST_F(TlsTest, APeerThatDoesNotReadIsGoneWithinTheCloseTimeout) {
  auto herald = Start({"--close-timeout-ms", "1000", "--max-send-buffer-bytes", "67108864"});
  ASSERT_TRUE(herald->ok());
  const std::string ca = certs_.path("a.pem");
  RawWsClient ws;
  ASSERT_TRUE(ws.ConnectTls(herald->ws_address(), ca));
  std::optional<RawWsClient::Frame> welcome = ws.Read();
  ASSERT_TRUE(welcome.has_value());
  const std::string marker = R"("connectionId":")";
  const size_t at = welcome->payload.find(marker);
  ASSERT_NE(at, std::string::npos) << welcome->payload;
  const size_t begin = at + marker.size();
  const std::string id = welcome->payload.substr(begin, welcome->payload.find('"', begin) - begin);
  ASSERT_TRUE(ws.SendText(R"({"id":1,"subscribe":{"channel":"news"}})"));
  ASSERT_TRUE(ReadUntil(ws, "subscribed"));
  // From here on it reads nothing: 16 publications of 900 KB fill both sockets' buffers.
  const std::string body_file = certs_.path("big.json");
  {
    std::ofstream f(body_file);
    f << R"({"channel":"news","data":{"b":")" << std::string(900000, 'x') << R"("}})";
  }
  std::vector<std::string> post = {
      "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + body_file};
  for (int i = 0; i < 16; ++i)
    post.push_back(absl::StrCat("https://", herald->ws_address(), "/api/v1/Publish"));
  CommandResult published = Curl(post);
  ASSERT_EQ(published.exit_code, 0) << published.err;
  size_t accepted = 0;
  for (size_t at = published.out.find("\"offset\""); at != std::string::npos;
       at = published.out.find("\"offset\"", at + 1)) {
    ++accepted;
  }
  ASSERT_EQ(accepted, 16u) << published.out;
  ASSERT_EQ(Ctl(*herald, {"--ca", ca, "kick", id}).exit_code, 0);
  const absl::Time kicked = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] {
        return Ctl(*herald, {"--ca", ca, "conn", id}).exit_code == 1;
      },
      absl::Seconds(15)));
  EXPECT_LE(absl::Now() - kicked, absl::Milliseconds(1800));
}

TEST_F(TlsTest, PlainClientsAreRefusedQuickly) {
  auto herald = Start();
  ASSERT_TRUE(herald->ok());
  const absl::Time start = absl::Now();
  WsClient ws;
  EXPECT_FALSE(ws.Connect(herald->ws_url()));
  CommandResult http = RunCommand({"/usr/bin/curl", "-sS", "-m", "10",
                                   absl::StrCat("http://", herald->ws_address(), "/healthz")});
  EXPECT_NE(http.exit_code, 0);
  // gRPC without TLS does not reach it either.
  CommandResult ctl = Ctl(*herald, {"--timeout", "3", "stats"});
  EXPECT_NE(ctl.exit_code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(8)) << "a plaintext client hung";
  // The server is fine afterwards.
  RawWsClient tls;
  EXPECT_TRUE(tls.ConnectTls(herald->ws_address(), certs_.path("a.pem")));
}

TEST_F(TlsTest, OnlyTls12AndNewer) {
  auto herald = Start();
  ASSERT_TRUE(herald->ok());
  RawWsClient old;
  EXPECT_FALSE(old.ConnectTls(herald->ws_address(), certs_.path("a.pem"), TLS1_1_VERSION));
  RawWsClient tls12;
  EXPECT_TRUE(tls12.ConnectTls(herald->ws_address(), certs_.path("a.pem"), TLS1_2_VERSION));
  // A weak (non-forward-secret) cipher is refused too.
  CommandResult weak = Curl({"--tls-max", "1.2", "--ciphers", "AES128-SHA",
                             absl::StrCat("https://", herald->ws_address(), "/healthz")});
  EXPECT_NE(weak.exit_code, 0);
}

TEST_F(TlsTest, SighupSwapsTheCertificateAndKeepsOpenConnections) {
  auto herald = Start();
  ASSERT_TRUE(herald->ok());
  RawWsClient before;
  ASSERT_TRUE(before.ConnectTls(herald->ws_address(), certs_.path("a.pem")));
  ASSERT_TRUE(ReadUntil(before, "welcome"));
  ASSERT_TRUE(before.SendText(R"({"id":1,"subscribe":{"channel":"news"}})"));
  ASSERT_TRUE(ReadUntil(before, "subscribed"));

  certs_.MakeServer("b", "herald-b");
  certs_.Copy("b.pem", "server.pem");
  certs_.Copy("b.key", "server.key");
  ASSERT_EQ(kill(herald->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(herald->Stderr(), "CN=herald-b"); }))
      << herald->Stderr();
  RawWsClient after;
  ASSERT_TRUE(after.ConnectTls(herald->ws_address(), certs_.path("b.pem")));
  EXPECT_THAT(after.PeerCertificate(), HasSubstr("CN=herald-b"));
  // gRPC re-reads the files itself (every RpcServer::kTlsRefreshSeconds).
  EXPECT_TRUE(WaitFor(
      [&] {
        return Ctl(*herald, {"--ca", certs_.path("b.pem"), "--timeout", "2", "stats"}).exit_code ==
               0;
      },
      absl::Seconds(20)));

  // A broken file is logged and the certificate in use stays.
  std::ofstream(certs_.path("server.pem")) << "not a certificate\n";
  ASSERT_EQ(kill(herald->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(herald->Stderr(), "not reloaded"); }));
  RawWsClient still;
  ASSERT_TRUE(still.ConnectTls(herald->ws_address(), certs_.path("b.pem")));
  EXPECT_THAT(still.PeerCertificate(), HasSubstr("CN=herald-b"));

  // The connection opened before both reloads still receives.
  CommandResult r = RunCommand(
      {"/usr/bin/curl", "-sS", "-m", "10", "--cacert", certs_.path("b.pem"), "-X", "POST", "-H",
       "Content-Type: application/json", "-d", R"({"channel":"news","data":{"n":3}})",
       absl::StrCat("https://", herald->ws_address(), "/api/v1/Publish")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadUntil(before, R"("n":3)"));
}

TEST_F(TlsTest, GrpcClientCertificatesWithClientCa) {
  certs_.MakeServer("ca", "herald-test-ca");
  certs_.MakeClient("backend", "ca");
  auto herald = Start({"--tls-client-ca", certs_.path("ca.pem")});
  ASSERT_TRUE(herald->ok());
  CommandResult without = Ctl(*herald, {"--ca", certs_.path("a.pem"), "--timeout", "3", "stats"});
  EXPECT_NE(without.exit_code, 0);
  CommandResult with =
      Ctl(*herald, {"--ca", certs_.path("a.pem"), "--cert", certs_.path("backend.pem"), "--key",
                    certs_.path("backend.key"), "stats"});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  EXPECT_THAT(with.out, HasSubstr("connections"));
}

TEST_F(TlsTest, BadTlsConfigurationExitsWithOneLine) {
  CommandResult only_cert = RunCommand({HeraldBinary(), "--tls-cert", certs_.path("a.pem")});
  EXPECT_EQ(only_cert.exit_code, 2);
  EXPECT_THAT(only_cert.err, HasSubstr("--tls-cert and --tls-key go together"));
  CommandResult missing =
      RunCommand({HeraldBinary(), "--ws-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                  "--tls-cert", certs_.path("nope.pem"), "--tls-key", certs_.path("a.key")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--tls-cert: cannot load"));
  certs_.MakeServer("other", "other");
  CommandResult mismatch =
      RunCommand({HeraldBinary(), "--ws-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                  "--tls-cert", certs_.path("a.pem"), "--tls-key", certs_.path("other.key")});
  EXPECT_EQ(mismatch.exit_code, 2);
  EXPECT_THAT(mismatch.err, HasSubstr("--tls-key"));
  EXPECT_THAT(mismatch.err, HasSubstr("mismatch"));
  EXPECT_THAT(mismatch.err, Not(HasSubstr("listening")));
  CommandResult bad_ca =
      RunCommand({HeraldBinary(), "--ws-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                  "--tls-cert", certs_.path("a.pem"), "--tls-key", certs_.path("a.key"),
                  "--tls-client-ca", certs_.path("a.key")});
  EXPECT_EQ(bad_ca.exit_code, 2);
  EXPECT_THAT(bad_ca.err, HasSubstr("--tls-client-ca: cannot load"));
}

}  // namespace
}  // namespace herald::testing
