// heraldctl end to end: the real binary against a real herald, with real WebSocket clients.
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;

class HeraldctlTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(herald_.ok()); }

  CommandResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {HeraldctlBinary(), "--server", herald_.grpc_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  HeraldProcess herald_;
};

TEST_F(HeraldctlTest, ConnsShowsConnectionsAndFilters) {
  WsClient a, b;
  ASSERT_TRUE(a.Connect(herald_.ws_url()));
  ASSERT_TRUE(b.Connect(herald_.ws_url()));
  ASSERT_TRUE(a.Subscribe("store:42"));

  CommandResult r = Ctl({"conns"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::StartsWith("ID"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("^ID +NODE +USER "));
  // Each connection with the node it is on (the start of its id).
  const std::string node = a.connection_id().substr(0, a.connection_id().rfind('-'));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(absl::StrCat(a.connection_id(), " +", node, " ")));
  EXPECT_THAT(r.out, HasSubstr(a.connection_id()));
  EXPECT_THAT(r.out, HasSubstr(b.connection_id()));
  EXPECT_THAT(r.out, HasSubstr("store:42"));
  EXPECT_THAT(r.out, HasSubstr("2 of 2 connections"));

  r = Ctl({"conns", "--channel", "store:42", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << r.out;
  v1::Connection c;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &c).ok()) << lines[0];
  EXPECT_EQ(c.id(), a.connection_id());
  EXPECT_EQ(c.node(), node);
  EXPECT_THAT(c.remote_address(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_THAT(c.channels(), ::testing::ElementsAre("store:42"));

  r = Ctl({"conns", "--user", "nobody"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("0 of 0 connections"));
}

TEST_F(HeraldctlTest, ConnShowsOneConnection) {
  WsClient a;
  ASSERT_TRUE(a.Connect(herald_.ws_url(), {{"Origin", "https://shop.test"}}));
  CommandResult r = Ctl({"conn", a.connection_id()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(a.connection_id()));
  EXPECT_THAT(r.out, HasSubstr("https://shop.test"));
  r = Ctl({"conn", "no-such-id"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(HeraldctlTest, KickClosesTheConnection) {
  WsClient a, b;
  ASSERT_TRUE(a.Connect(herald_.ws_url()));
  ASSERT_TRUE(b.Connect(herald_.ws_url()));
  CommandResult r = Ctl({"kick", a.connection_id(), "--code", "4000", "--reason", "maintenance"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("disconnected 1 connection"));
  ASSERT_TRUE(a.WaitClosed());
  EXPECT_EQ(a.close_code(), 4000);
  EXPECT_EQ(a.close_reason(), "maintenance");
  EXPECT_TRUE(b.open());
  r = Ctl({"kick"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--user"));
  r = Ctl({"kick", "--user", "nobody"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("disconnected 0 connections"));
}

TEST_F(HeraldctlTest, PublishOrderFromFlagsAndFile) {
  WsClient store;
  ASSERT_TRUE(store.Connect(herald_.ws_url()));
  ASSERT_TRUE(store.Subscribe("store:42"));
  CommandResult r = Ctl({"publish-order", "--id", "o-7", "--version", "1", "--status", "created",
                         "--store", "42", "--customer", "c1", "--item", "p1:Pizza:2:1150"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("published to 4 channels, queued to 1 connections"));
  v1::ServerFrame pub =
      store.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "order from flags");
  const auto& fields = pub.pub().data().struct_value().fields();
  EXPECT_EQ(fields.at("status").string_value(), "ORDER_STATUS_CREATED");
  EXPECT_EQ(fields.at("total").struct_value().fields().at("minorUnits").string_value(), "2300");

  const std::string path = absl::StrCat(::testing::TempDir(), "/order.json");
  {
    std::ofstream f(path);
    f << R"({"id":"o-7","version":"2","status":"ORDER_STATUS_READY","storeId":"42"})";
  }
  r = Ctl({"publish-order", "--file", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  store.WaitFrame(
      [](const v1::ServerFrame& f) {
        return f.has_pub() && f.pub().data().struct_value().fields().at("status").string_value() ==
                                  "ORDER_STATUS_READY";
      },
      "order from file");
  r = Ctl({"publish-order", "--file", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("stale"));

  r = Ctl(
      {"publish-order", "--id", "o-8", "--version", "1", "--status", "teleported", "--store", "1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown status"));
  // A required field missing is bad usage, caught before any call.
  r = Ctl({"publish-order", "--id", "o-8", "--status", "created"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("publish-order needs --version, --store (as flags or in --file)"));
  // What only the server checks is its error: exit 1 with the code.
  r = Ctl(
      {"publish-order", "--id", "o 8", "--version", "1", "--status", "created", "--store", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("heraldctl: INVALID_ARGUMENT: order.id"));
}

TEST_F(HeraldctlTest, PublishAndStats) {
  WsClient a;
  ASSERT_TRUE(a.Connect(herald_.ws_url()));
  ASSERT_TRUE(a.Subscribe("news"));
  CommandResult r = Ctl({"publish", "news", R"({"headline":"hello"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("queued to 1 connections"));
  v1::ServerFrame pub =
      a.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
  EXPECT_EQ(pub.pub().data().struct_value().fields().at("headline").string_value(), "hello");
  r = Ctl({"publish", "news", "{not json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not valid JSON"));

  r = Ctl({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("connections: +1\n"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("publications: +1\n"));
  const std::string plain = r.out;
  r = Ctl({"stats", "--json"});
  // One line, like conns/history --json, so it pipes into jq and line-oriented tools.
  ASSERT_THAT(r.out, ::testing::EndsWith("}\n"));
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  v1::StatsResponse stats;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &stats).ok()) << r.out;
  EXPECT_EQ(stats.deliveries(), 1u);
  // Plain and JSON name every field alike (camelCase), zero values included.
  EXPECT_THAT(plain, ::testing::ContainsRegex("\nslowConsumerCloses: +0\n"));
  EXPECT_THAT(plain, ::testing::ContainsRegex("\nconnectionsTotal: +1\n"));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("_")));
  EXPECT_THAT(r.out, HasSubstr(R"("slowConsumerCloses":"0")"));
  EXPECT_THAT(r.out, HasSubstr(R"("connectionsTotal":"1")"));
}

TEST_F(HeraldctlTest, WatchPrintsEventsLive) {
  // The watcher runs as its own process and stops after 3 events.
  std::string out_path = absl::StrCat(::testing::TempDir(), "/watch.out");
  std::thread watcher([&] {
    CommandResult r =
        Ctl({"watch", "--type", "connect,subscribe,message", "--count", "3", "--duration", "20"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::ofstream(out_path) << r.out;
  });
  // Connect only once the watcher is attached (Stats counts watchers).
  ASSERT_TRUE(WaitFor([&] {
    CommandResult s = Ctl({"stats", "--json"});
    v1::StatsResponse stats;
    return google::protobuf::util::JsonStringToMessage(s.out, &stats).ok() && stats.watchers() == 1;
  }));
  WsClient a;
  ASSERT_TRUE(a.Connect(herald_.ws_url()));
  ASSERT_TRUE(a.Subscribe("store:5"));
  a.Send(R"({"id":2,"message":{"data":{"hello":"backend"}}})");
  watcher.join();
  std::ifstream in(out_path);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_THAT(lines[0], HasSubstr("connect conn=" + a.connection_id()));
  EXPECT_THAT(lines[1], HasSubstr("subscribe conn=" + a.connection_id()));
  EXPECT_THAT(lines[1], HasSubstr("channel=store:5"));
  EXPECT_THAT(lines[2], HasSubstr(R"(data={"hello":"backend"})"));
  CommandResult bad = Ctl({"watch", "--type", "teleport", "--count", "1"});
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(HeraldctlTest, DispatchTasksAndHistory) {
  WsClient worker;
  ASSERT_TRUE(worker.Connect(herald_.ws_url()));
  worker.Send(R"({"id":1,"join":{"queue":"couriers"}})");
  ASSERT_TRUE(worker.WaitReply(1).has_joined());
  CommandResult r = Ctl({"dispatch", "couriers", R"({"pickup":"store 42"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("assigned to " + worker.connection_id()));
  v1::ServerFrame task =
      worker.WaitFrame([](const v1::ServerFrame& f) { return f.has_task(); }, "task");
  r = Ctl({"tasks"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("couriers +1 +0 +1 +1 +0 +0 +0"));
  EXPECT_THAT(r.out, HasSubstr("held by " + worker.connection_id()));
  r = Ctl({"tasks", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;  // one JSON line
  v1::ListQueuesResponse queues;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &queues).ok()) << r.out;
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_EQ(queues.queues(0).queue(), "couriers");
  EXPECT_THAT(r.out, HasSubstr(R"("waiting":0)"));
  r = Ctl({"dispatch", "nobody-home", "1"});
  EXPECT_THAT(r.out, HasSubstr("waiting for a worker"));

  for (const char* text : {R"("one")", R"("two")"}) {
    ASSERT_EQ(Ctl({"publish", "news", text}).exit_code, 0);
  }
  r = Ctl({"history", "news", "--reverse"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::StartsWith("2  \"two\"\n1  \"one\"\n"));
  EXPECT_THAT(r.out, HasSubstr("latest offset 2"));
}

TEST(HeraldctlStandaloneTest, UnreachableServerAndHelp) {
  CommandResult r =
      RunCommand({HeraldctlBinary(), "--server", "127.0.0.1:1", "--timeout", "2", "stats"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot reach Herald at 127.0.0.1:1"));
  EXPECT_THAT(r.err, HasSubstr("--grpc-listen, default 127.0.0.1:50051"));
  r = RunCommand({HeraldctlBinary(), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"conns", "conn", "kick", "publish-order", "publish", "stats", "watch",
                          "tasks", "dispatch", "history"}) {
    EXPECT_THAT(r.out, HasSubstr(cmd));
  }
  // The help text once, not twice.
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(r.out, "Usage:"), 1u) << r.out;
  EXPECT_EQ(count(r.out, "Subcommands:"), 1u) << r.out;
  r = RunCommand({HeraldctlBinary(), "stats", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(count(r.out, "Usage:"), 1u) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--json"));
  r = RunCommand({HeraldctlBinary()});
  EXPECT_EQ(r.exit_code, 2);
  r = RunCommand({HeraldctlBinary(), "--server", "127.0.0.1:1", "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "heraldctl: unknown command 'frobnicate' (see heraldctl --help)\n");
}

// gRPC says UNAVAILABLE both for a server it cannot reach and for Herald's own answer (here: its
// Redis is unreachable). The second is the server's error (exit 1), with Herald's message, not
// "cannot reach Herald" (exit 3).
TEST(HeraldctlStandaloneTest, AnUnavailableAnswerIsTheServersErrorNotUnreachable) {
  // Nothing listens on port 1: herald waits 5 s for Redis, then starts without it.
  HeraldProcess herald({"--engine", "redis", "--redis-url", "redis://127.0.0.1:1/0"});
  ASSERT_TRUE(herald.ok());
  CommandResult r = RunCommand({HeraldctlBinary(), "--server", herald.grpc_address(), "--timeout",
                                "5", "publish", "news", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("heraldctl: UNAVAILABLE: "));
  EXPECT_THAT(r.err, HasSubstr("redis"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("cannot reach Herald")));
}

TEST(HeraldctlStandaloneTest, VersionMatchesHerald) {
  CommandResult ctl = RunCommand({HeraldctlBinary(), "--version"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  ASSERT_THAT(ctl.out, ::testing::EndsWith("\n"));
  EXPECT_THAT(ctl.out.substr(0, ctl.out.size() - 1),
              ::testing::MatchesRegex(R"(heraldctl [0-9]+\.[0-9]+\.[0-9]+( \(git [^ )]+\))?)"));
  CommandResult server = RunCommand({HeraldBinary(), "--version"});
  EXPECT_EQ(server.exit_code, 0) << server.err;
  EXPECT_EQ(ctl.out.substr(ctl.out.find(' ')), server.out.substr(server.out.find(' ')));
}

TEST(HeraldctlStandaloneTest, PointedAtTheWebSocketPortNamesTheGrpcPort) {
  // The README shows 8080 most; heraldctl must not answer "is herald running?" there.
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  CommandResult r =
      RunCommand({HeraldctlBinary(), "--server", herald.ws_address(), "--timeout", "5", "stats"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("this looks like herald's WebSocket/HTTP port"));
  EXPECT_THAT(r.err, HasSubstr("--grpc-listen address (default 127.0.0.1:50051)"));
  EXPECT_THAT(r.err, HasSubstr("try --server 127.0.0.1:50051"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("Is herald running")));
}

// A watch the server ends (its drain) is the server's answer (1), not an unreachable server (3).
TEST(HeraldctlStandaloneTest, AWatchEndedByADrainExitsOne) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  CommandResult r;
  std::thread watcher([&] {
    r = RunCommand({HeraldctlBinary(), "--server", herald.grpc_address(), "watch"});
  });
  ASSERT_TRUE(WaitFor([&] {
    CommandResult s =
        RunCommand({HeraldctlBinary(), "--server", herald.grpc_address(), "stats", "--json"});
    return absl::StrContains(s.out, R"("watchers":1)");
  }));
  std::optional<int> code = herald.Stop(SIGTERM);
  watcher.join();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("ended the stream"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("cannot reach")));
}

TEST(HeraldctlStandaloneTest, ApiKeyIsSent) {
  HeraldProcess herald({"--api-key", "k1"});
  ASSERT_TRUE(herald.ok());
  CommandResult r = RunCommand({HeraldctlBinary(), "--server", herald.grpc_address(), "stats"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("heraldctl: UNAUTHENTICATED: "));
  EXPECT_THAT(r.err, HasSubstr("--api-key"));
  r = RunCommand(
      {HeraldctlBinary(), "--server", herald.grpc_address(), "--api-key", "k1", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace herald::testing
