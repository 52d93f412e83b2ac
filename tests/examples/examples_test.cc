// The client examples (client/examples/{php,python,node}) run against a real herald: what they
// print, and what WebSocket subscribers receive.
#include <unistd.h>

#include <future>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/background_process.h"
#include "tests/support/herald_process.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kApiKey[] = "examples-key";
const std::string kSource = HERALD_SOURCE_DIR;

// Runs `argv` with `env` ("NAME=value") added to the environment.
CommandResult RunWithEnv(const std::vector<std::string>& env,
                         const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"/usr/bin/env"};
  full.insert(full.end(), env.begin(), env.end());
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, absl::Seconds(60));
}

std::string Field(const v1::ServerFrame& pub, const std::string& name) {
  const auto& fields = pub.pub().data().struct_value().fields();
  auto it = fields.find(name);
  return it == fields.end() ? "" : it->second.string_value();
}

// "status@version" of every order publication the client received.
std::vector<std::string> OrderSteps(const WsClient& c) {
  std::vector<std::string> steps;
  for (const v1::ServerFrame& f : c.Publications()) {
    if (!Field(f, "status").empty()) {
      steps.push_back(absl::StrCat(Field(f, "status"), "@", Field(f, "version")));
    }
  }
  return steps;
}

// A marker published after an example's last call: once a client has it, it has everything the
// example published before (one channel's publications arrive in order).
void WaitForMarker(const HeraldProcess& herald, WsClient& client, const std::string& channel) {
  auto stub = herald.Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  v1::PublishRequest req;
  req.set_channel(channel);
  req.mutable_data()->set_string_value("marker");
  v1::PublishResponse resp;
  ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
  client.WaitFrame(
      [](const v1::ServerFrame& f) {
        return f.has_pub() && f.pub().data().string_value() == "marker";
      },
      "marker on " + channel);
}

v1::StatsResponse Stats(v1::Broker::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  v1::StatsResponse resp;
  EXPECT_TRUE(stub.Stats(&ctx, v1::StatsRequest(), &resp).ok());
  return resp;
}

class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(herald_.ok()); }
  std::string HttpUrl() const { return absl::StrCat("http://", herald_.ws_address()); }

  HeraldProcess herald_{{"--api-key", kApiKey}};
};

TEST_F(ExamplesTest, PhpOrderServiceMovesAnOrderThroughItsLifecycle) {
  ASSERT_STRNE(HERALD_PHP, "") << "php not found: run scripts/deps.sh";
  WsClient dashboard, tracking;
  ASSERT_TRUE(dashboard.Connect(herald_.ws_url()));
  ASSERT_TRUE(dashboard.Subscribe("store:42"));
  ASSERT_TRUE(tracking.Connect(herald_.ws_url()));
  ASSERT_TRUE(tracking.Subscribe("order:o-1001"));

  CommandResult r =
      RunWithEnv({"HERALD_URL=" + HttpUrl(), absl::StrCat("HERALD_API_KEY=", kApiKey)},
                 {HERALD_PHP, kSource + "/client/examples/php/order_service.php", "o-1001", "42"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "o-1001 v1 created   applied, queued to 2 connection(s)\n"
            "o-1001 v2 accepted  applied, queued to 2 connection(s)\n"
            "o-1001 v3 preparing applied, queued to 2 connection(s)\n"
            "o-1001 v4 ready     applied, queued to 2 connection(s)\n"
            "o-1001 v5 delivered applied, queued to 2 connection(s)\n"
            "o-1001 v3 replayed: stale, not delivered (latest version 5)\n");

  for (WsClient* c : {&dashboard, &tracking}) {
    WaitForMarker(herald_, *c, c == &dashboard ? "store:42" : "order:o-1001");
    // Every step once, in order; the replayed version 3 never arrived.
    EXPECT_THAT(OrderSteps(*c), ElementsAre("ORDER_STATUS_CREATED@1", "ORDER_STATUS_ACCEPTED@2",
                                            "ORDER_STATUS_PREPARING@3", "ORDER_STATUS_READY@4",
                                            "ORDER_STATUS_DELIVERED@5"));
  }
  v1::ServerFrame first = dashboard.Publications()[0];
  EXPECT_EQ(first.pub()
                .data()
                .struct_value()
                .fields()
                .at("total")
                .struct_value()
                .fields()
                .at("minorUnits")
                .string_value(),
            "2450");
}

TEST_F(ExamplesTest, PhpTwoLinePublishFromAnyPage) {
  ASSERT_STRNE(HERALD_PHP, "") << "php not found: run scripts/deps.sh";
  WsClient reader;
  ASSERT_TRUE(reader.Connect(herald_.ws_url()));
  ASSERT_TRUE(reader.Subscribe("news"));
  CommandResult r =
      RunWithEnv({"HERALD_URL=" + HttpUrl(), absl::StrCat("HERALD_API_KEY=", kApiKey)},
                 {HERALD_PHP, kSource + "/client/examples/php/publish.php"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("channel":"news")"));
  EXPECT_THAT(r.out, HasSubstr(R"("queued":1)"));
  v1::ServerFrame pub =
      reader.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
  EXPECT_EQ(Field(pub, "text"), "Kitchen closes at 22:00");

  // With a wrong key the snippet prints Herald's JSON error instead.
  r = RunWithEnv({"HERALD_URL=" + HttpUrl(), "HERALD_API_KEY=wrong"},
                 {HERALD_PHP, kSource + "/client/examples/php/publish.php"});
  EXPECT_THAT(r.out, HasSubstr(R"("code":"UNAUTHENTICATED")"));
  EXPECT_EQ(reader.Publications().size(), 1u);
}

// client/examples/php/webhooks.php under `php -S`: the backend of every webhook, with the
// signature checked, as the migration guide shows it.
TEST(ExamplesWebhooksTest, PhpBackendAnswersConnectSubscribeRpcAndHearsDisconnect) {
  ASSERT_STRNE(HERALD_PHP, "") << "php not found: run scripts/deps.sh";
  const std::string secret = "examples-webhook-secret";
  BackgroundProcess php({"/usr/bin/env", "HERALD_PROXY_SECRET=" + secret, HERALD_PHP, "-S",
                         "127.0.0.1:0", kSource + "/client/examples/php/webhooks.php"});
  const int port = WaitForPrintedPort(php, "Development Server (http://127.0.0.1:");
  ASSERT_GT(port, 0) << php.Output();
  const std::string base = absl::StrCat("http://127.0.0.1:", port);
  HeraldProcess herald({"--proxy-secret", secret, "--proxy-connect-url", base + "/connect",
                        "--proxy-subscribe-url", "order:=" + base + "/subscribe", "--proxy-rpc-url",
                        base + "/rpc", "--webhook-url", base + "/events", "--webhook-events",
                        "disconnect,online,offline"});
  ASSERT_TRUE(herald.ok());

  std::string alice_id;
  {
    WsClient alice;
    ASSERT_TRUE(alice.Connect(herald.ws_url(), {{"Cookie", "lang=en; PHPSESSID=sess-alice"}}));
    alice_id = alice.connection_id();
    alice.Send(R"({"id":1,"connect":{}})");
    v1::ServerFrame connected = alice.WaitReply(1);
    ASSERT_TRUE(connected.has_connected()) << connected.DebugString() << php.Output();
    EXPECT_EQ(connected.connected().user(), "alice");
    EXPECT_EQ(connected.connected().data().struct_value().fields().at("greeting").string_value(),
              "Hello, alice");
    EXPECT_EQ(alice
                  .WaitFrame([](const v1::ServerFrame& f) { return f.has_subscribed(); },
                             "customer:alice")
                  .subscribed()
                  .channel(),
              "customer:alice");
    EXPECT_TRUE(alice.Subscribe("order:o-1", 2));
    alice.Send(R"({"id":3,"subscribe":{"channel":"order:o-2"}})");
    v1::ServerFrame denied = alice.WaitReply(3);
    EXPECT_EQ(denied.error().code(), "PERMISSION_DENIED");
    EXPECT_EQ(denied.error().message(), "order o-2 is not yours");
    alice.Send(R"({"id":4,"rpc":{"method":"order.cancel","data":{"orderId":"o-1"}}})");
    v1::ServerFrame cancelled = alice.WaitReply(4);
    ASSERT_TRUE(cancelled.has_rpc_result()) << cancelled.DebugString();
    EXPECT_TRUE(cancelled.rpc_result().data().struct_value().fields().at("cancelled").bool_value());
    alice.Send(R"({"id":5,"rpc":{"method":"order.cancel","data":{"orderId":"o-2"}}})");
    EXPECT_EQ(alice.WaitReply(5).error().code(), "NOT_FOUND");
  }
  // Ratchet's onClose: the backend hears of it, and that alice, whose only tab it was, is offline.
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(php.Output(), "webhooks: disconnect alice " + alice_id);
  })) << php.Output();
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(php.Output(), "webhooks: alice is offline");
  })) << php.Output();
  EXPECT_THAT(php.Output(), HasSubstr("webhooks: alice is online"));

  WsClient stranger;  // no session cookie
  ASSERT_TRUE(stranger.Connect(herald.ws_url()));
  stranger.Send(R"({"id":1,"connect":{}})");
  EXPECT_EQ(stranger.WaitReply(1).error().message(), "log in first");
  ASSERT_TRUE(stranger.WaitClosed());
  EXPECT_EQ(stranger.close_code(), 4003);

  // Signed with another secret: the script refuses it, and the client is told the backend failed.
  HeraldProcess forged(
      {"--proxy-secret", "not-the-secret", "--proxy-connect-url", base + "/connect"});
  ASSERT_TRUE(forged.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(forged.ws_url(), {{"Cookie", "PHPSESSID=sess-alice"}}));
  c.Send(R"({"id":1,"connect":{}})");
  EXPECT_EQ(c.WaitReply(1).error().message(), "connect: backend answered HTTP 401");
  EXPECT_THAT(php.Output(), HasSubstr("refused a request with a bad signature"));
}

TEST_F(ExamplesTest, PhpFollowsEventsOverServerSentEventsAndResumes) {
  ASSERT_STRNE(HERALD_PHP, "") << "php not found: run scripts/deps.sh";
  const std::vector<std::string> env = {"HERALD_URL=" + HttpUrl(),
                                        absl::StrCat("HERALD_API_KEY=", kApiKey)};
  const std::string script = kSource + "/client/examples/php/events.php";
  auto stub = herald_.Stub();
  std::future<CommandResult> follower = std::async(std::launch::async, [&] {
    return RunWithEnv(env, {HERALD_PHP, script, "--count", "3", "--seconds", "60"});
  });
  // Attached once Herald counts the event stream's watcher.
  ASSERT_TRUE(WaitFor([&] { return Stats(*stub).watchers() == 1; }, absl::Seconds(30)))
      << "the stream never attached";
  WsClient courier;
  ASSERT_TRUE(courier.Connect(herald_.ws_url()));
  ASSERT_TRUE(courier.Subscribe("store:42"));
  courier.Send(R"({"id":2,"message":{"data":{"text":"courier is here"}}})");
  ASSERT_TRUE(courier.WaitReply(2).has_sent());
  CommandResult r = follower.get();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = courier.connection_id();
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], absl::StrCat("1 connect ", id));
  EXPECT_EQ(lines[1], absl::StrCat("2 subscribe ", id, " channel=store:42"));
  EXPECT_EQ(lines[2], absl::StrCat("3 message ", id, R"( data={"text":"courier is here"})"));

  // Away meanwhile: another message and the disconnect. Resuming after event 3 gets exactly
  // those two.
  courier.Send(R"({"id":3,"message":{"data":"while away"}})");
  ASSERT_TRUE(courier.WaitReply(3).has_sent());
  courier.Close(4000, "shift over");
  ASSERT_TRUE(courier.WaitClosed());
  ASSERT_TRUE(WaitFor([&] { return Stats(*stub).connections() == 0; }, absl::Seconds(10)));
  std::vector<std::string> resume_env = env;
  resume_env.push_back("HERALD_LAST_EVENT_ID=3");
  r = RunWithEnv(resume_env, {HERALD_PHP, script, "--count", "2", "--seconds", "30"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, absl::StrCat("4 message ", id, " data=\"while away\"\n", "5 disconnect ", id,
                                " code=4000 reason=\"shift over\"\n"));

  // Without the key: Herald's error, exit 1.
  r = RunWithEnv({"HERALD_URL=" + HttpUrl(), "HERALD_API_KEY=wrong"},
                 {HERALD_PHP, script, "--count", "1", "--seconds", "5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("HTTP 401 authorization: wrong API key"));
}

TEST_F(ExamplesTest, PythonPublishesOrdersAndMessagesOverGrpc) {
  ASSERT_STRNE(HERALD_PYTHON, "") << "python3 with grpcio and grpc_tools: run scripts/deps.sh";
  WsClient dashboard, news;
  ASSERT_TRUE(dashboard.Connect(herald_.ws_url()));
  ASSERT_TRUE(dashboard.Subscribe("store:42"));
  ASSERT_TRUE(news.Connect(herald_.ws_url()));
  ASSERT_TRUE(news.Subscribe("news"));

  CommandResult r = RunWithEnv(
      {std::string("PYTHONPATH=") + HERALD_PYTHON_STUBS, "HERALD_GRPC=" + herald_.grpc_address(),
       absl::StrCat("HERALD_API_KEY=", kApiKey)},
      {HERALD_PYTHON, kSource + "/client/examples/python/publish_orders.py", "--order", "o-2001",
       "--store", "42"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "o-2001 v1 created   applied, queued to 1\n"
            "o-2001 v2 accepted  applied, queued to 1\n"
            "o-2001 v3 preparing applied, queued to 1\n"
            "o-2001 v4 ready     applied, queued to 1\n"
            "o-2001 v5 delivered applied, queued to 1\n"
            "o-2001 v2 replayed: stale (latest version 5)\n"
            "publish store:42 offset 6, queued to 1\n"
            "publish store:42 retried: duplicate, offset 6\n"
            "broadcast store:42,news, queued to 2\n");

  WaitForMarker(herald_, dashboard, "store:42");
  EXPECT_THAT(
      OrderSteps(dashboard),
      ElementsAre("ORDER_STATUS_CREATED@1", "ORDER_STATUS_ACCEPTED@2", "ORDER_STATUS_PREPARING@3",
                  "ORDER_STATUS_READY@4", "ORDER_STATUS_DELIVERED@5"));
  std::vector<v1::ServerFrame> pubs = dashboard.Publications();
  // 5 order versions, the notice (once: the retry was a duplicate), the broadcast, the marker
  ASSERT_EQ(pubs.size(), 8u);
  EXPECT_EQ(Field(pubs[5], "notice"), "kitchen closes at 22:00");
  EXPECT_EQ(Field(pubs[6], "notice"), "new menu");
  v1::ServerFrame broadcast =
      news.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "broadcast on news");
  EXPECT_EQ(Field(broadcast, "notice"), "new menu");
}

// The task id in a task frame: its delivery id "<task id>.<attempt>" up to the dot.
std::string TaskIdOf(const v1::ServerFrame& frame) {
  const std::string& delivery = frame.task().delivery_id();
  return delivery.substr(0, delivery.rfind('.'));
}

TEST_F(ExamplesTest, PythonDispatchesTasksToAWorkerThatJoinedTheQueue) {
  ASSERT_STRNE(HERALD_PYTHON, "") << "python3 with grpcio and grpc_tools: run scripts/deps.sh";
  WsClient courier;
  ASSERT_TRUE(courier.Connect(herald_.ws_url()));
  courier.Send(R"({"id":1,"join":{"queue":"couriers"}})");
  ASSERT_TRUE(courier.WaitReply(1).has_joined());

  CommandResult r = RunWithEnv(
      {std::string("PYTHONPATH=") + HERALD_PYTHON_STUBS, "HERALD_GRPC=" + herald_.grpc_address(),
       absl::StrCat("HERALD_API_KEY=", kApiKey)},
      {HERALD_PYTHON, kSource + "/client/examples/python/dispatch_tasks.py", "--queue", "couriers",
       "--tasks", "2", "--store", "42"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = courier.connection_id();
  // The worker got both tasks, in order, and acks each one; the script printed their ids.
  std::vector<std::string> task_ids;
  for (int i = 1; i <= 2; ++i) {
    v1::ServerFrame f = courier.WaitFrame(
        [&](const v1::ServerFrame& frame) {
          return frame.has_task() && absl::c_find(task_ids, TaskIdOf(frame)) == task_ids.end();
        },
        absl::StrCat("task ", i));
    task_ids.push_back(TaskIdOf(f));
    const std::string delivery = f.task().delivery_id();
    EXPECT_EQ(delivery, absl::StrCat(task_ids.back(), ".1"));
    EXPECT_EQ(f.task().queue(), "couriers");
    EXPECT_EQ(f.task().attempt(), 1u);
    EXPECT_EQ(f.task().ack_deadline_ms(), 30000u);
    const auto& data = f.task().data().struct_value().fields();
    ASSERT_EQ(data.count("order"), 1u) << f.DebugString();
    EXPECT_EQ(data.at("order").string_value(), absl::StrCat("o-300", i));
    EXPECT_EQ(data.at("pickup").string_value(), "store 42");
    courier.Send(
        absl::StrCat(R"({"id":)", 10 + i, R"(,"ack":{"deliveryId":")", delivery, R"("}})"));
    EXPECT_TRUE(courier.WaitReply(10 + i).has_acked());
  }
  ASSERT_EQ(task_ids.size(), 2u);
  EXPECT_EQ(r.out, absl::StrCat("task ", task_ids[0], " -> ", id, " (queue depth 0)\n",  //
                                "task ", task_ids[1], " -> ", id, " (queue depth 0)\n",  //
                                "queue couriers: 1 worker(s), 0 waiting, 2 in flight, "
                                "2 dispatched, 0 acked\n"));

  auto stub = herald_.Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  v1::ListQueuesResponse queues;
  ASSERT_TRUE(stub->ListQueues(&ctx, v1::ListQueuesRequest(), &queues).ok());
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_EQ(queues.queues(0).acked(), 2u);
  EXPECT_EQ(queues.queues(0).in_flight_size(), 0);
}

TEST_F(ExamplesTest, NodeListsConnectionsPageByPageAndShowsStats) {
  ASSERT_STRNE(HERALD_NODE, "") << "node not found: run scripts/deps.sh";
  WsClient a, b, c;
  for (WsClient* ws : {&a, &b, &c}) ASSERT_TRUE(ws->Connect(herald_.ws_url()));
  ASSERT_TRUE(b.Subscribe("store:42"));
  const std::vector<std::string> env = {"HERALD_GRPC=" + herald_.grpc_address(),
                                        absl::StrCat("HERALD_API_KEY=", kApiKey),
                                        "HERALD_PROTO_DIR=" + kSource + "/proto"};
  const std::string script = std::string(HERALD_NODE_DIR) + "/connections.js";

  CommandResult r = RunWithEnv(env, {HERALD_NODE, script, "--page-size", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_EQ(lines[0], "page 1: 2 of 3 connection(s)");
  EXPECT_THAT(lines[1], HasSubstr(absl::StrCat("  ", a.connection_id(), "  127.0.0.1:")));
  EXPECT_THAT(lines[2], HasSubstr(absl::StrCat("  ", b.connection_id(), "  127.0.0.1:")));
  EXPECT_THAT(lines[2], HasSubstr("channels=store:42"));
  EXPECT_EQ(lines[3], "page 2: 1 of 3 connection(s)");
  EXPECT_THAT(lines[4], HasSubstr(absl::StrCat("  ", c.connection_id(), "  127.0.0.1:")));
  EXPECT_THAT(lines[5], HasSubstr("connections=3 channels=1 subscriptions=1"));

  r = RunWithEnv(env, {HERALD_NODE, script, "--channel", "store:42"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("page 1: 1 of 1 connection(s)\n  " + b.connection_id()));

  // Without the key, the example reports the gRPC error and fails.
  r = RunWithEnv({"-u", "HERALD_API_KEY", "HERALD_GRPC=" + herald_.grpc_address(),
                  "HERALD_PROTO_DIR=" + kSource + "/proto"},
                 {HERALD_NODE, script});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("herald: UNAUTHENTICATED authorization: missing API key"));
}

// Each line of the watcher's output without its leading timestamp.
std::vector<std::string> EventLines(const std::string& out) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> time_rest =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    lines.emplace_back(time_rest.second);
  }
  return lines;
}

TEST_F(ExamplesTest, NodeWatchesEventsUntilItsCountOrTimeIsUp) {
  ASSERT_STRNE(HERALD_NODE, "") << "node not found: run scripts/deps.sh";
  const std::vector<std::string> env = {"HERALD_GRPC=" + herald_.grpc_address(),
                                        absl::StrCat("HERALD_API_KEY=", kApiKey),
                                        "HERALD_PROTO_DIR=" + kSource + "/proto"};
  const std::string script = std::string(HERALD_NODE_DIR) + "/watch_events.js";
  auto watch = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {HERALD_NODE, script});
    return std::async(std::launch::async, [env, args] { return RunWithEnv(env, args); });
  };
  auto stub = herald_.Stub();
  // The example has attached (or detached) once Herald counts that many watchers.
  auto attached = [&](uint32_t watchers) {
    return WaitFor([&] { return Stats(*stub).watchers() == watchers; }, absl::Seconds(30));
  };

  // Count bound: the first three events are this client's connect, subscribe and message.
  std::future<CommandResult> watcher = watch({"--count", "3", "--seconds", "60"});
  ASSERT_TRUE(attached(1)) << "the watcher never attached";
  WsClient courier;
  ASSERT_TRUE(courier.Connect(herald_.ws_url()));
  ASSERT_TRUE(courier.Subscribe("store:42"));
  courier.Send(R"({"id":2,"message":{"data":{"text":"courier is here"}}})");
  ASSERT_TRUE(courier.WaitReply(2).has_sent());
  CommandResult r = watcher.get();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = courier.connection_id();
  std::vector<std::string> lines = EventLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[0], ::testing::StartsWith(absl::StrCat("CONNECT ", id, " remote=127.0.0.1:")));
  EXPECT_EQ(lines[1], absl::StrCat("SUBSCRIBE ", id, " channel=store:42"));
  EXPECT_EQ(lines[2], absl::StrCat("MESSAGE ", id, R"( data={"text":"courier is here"})"));
  ASSERT_TRUE(attached(0)) << "the watcher did not detach";

  // Time bound, with a type filter: only the disconnect, then it stops by itself.
  watcher = watch({"--type", "disconnect", "--count", "10", "--seconds", "8"});
  ASSERT_TRUE(attached(1)) << "the watcher never attached";
  courier.Send(R"({"id":3,"message":{"data":"not watched"}})");
  ASSERT_TRUE(courier.WaitReply(3).has_sent());
  courier.Close(4000, "shift over");
  ASSERT_TRUE(courier.WaitClosed());
  r = watcher.get();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(EventLines(r.out),
              ElementsAre(::testing::AllOf(
                  ::testing::StartsWith(absl::StrCat("DISCONNECT ", id, " remote=127.0.0.1:")),
                  ::testing::EndsWith(R"( code=4000 reason="shift over")"))))
      << r.out;
}

// The backends over TLS: HERALD_CA names the CA to verify a herald started with --tls-cert.
TEST(ExamplesOverTlsTest, PythonNodeAndPhpReachATlsHerald) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/herald-examples-tls-", getpid());
  ASSERT_EQ(RunCommand({"/usr/bin/mkdir", "-p", dir}).exit_code, 0);
  CommandResult cert =
      RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout",
                  dir + "/key.pem", "-out", dir + "/cert.pem"});
  ASSERT_EQ(cert.exit_code, 0) << cert.err;
  HeraldProcess herald(
      {"--api-key", kApiKey, "--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem"});
  ASSERT_TRUE(herald.ok());
  const std::string ca = "HERALD_CA=" + dir + "/cert.pem";
  const std::string key = absl::StrCat("HERALD_API_KEY=", kApiKey);

  if (HERALD_PYTHON[0] != '\0') {
    CommandResult r = RunWithEnv(
        {std::string("PYTHONPATH=") + HERALD_PYTHON_STUBS, "HERALD_GRPC=" + herald.grpc_address(),
         key, ca},
        {HERALD_PYTHON, kSource + "/client/examples/python/publish_orders.py", "--order", "o-1"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("o-1 v1 created   applied"));
  }
  if (HERALD_NODE[0] != '\0') {
    CommandResult r = RunWithEnv(
        {"HERALD_GRPC=" + herald.grpc_address(), key, ca, "HERALD_PROTO_DIR=" + kSource + "/proto"},
        {HERALD_NODE, std::string(HERALD_NODE_DIR) + "/connections.js"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("page 1"));
  }
  if (HERALD_PHP[0] != '\0') {
    CommandResult r = RunWithEnv({"HERALD_URL=https://" + herald.ws_address(), key, ca},
                                 {HERALD_PHP, kSource + "/client/examples/php/publish.php"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(R"("channel":"news")"));
  }
  RunCommand({"/usr/bin/rm", "-rf", dir});
}

}  // namespace
}  // namespace herald::testing
