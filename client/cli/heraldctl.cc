#include "client/cli/heraldctl.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/simulate.h"
#include "herald/v1/broker.grpc.pb.h"
#include "server/auth/jwt.h"
#include "server/version.h"

namespace herald::cli {
namespace {

namespace pb = google::protobuf;

// herald's default --grpc-listen address.
constexpr char kDefaultServer[] = "127.0.0.1:50051";

// `server` with the port of herald's default gRPC address: "10.0.0.5:8080" -> "10.0.0.5:50051".
std::string GrpcGuess(const std::string& server) {
  const size_t colon = server.rfind(':');
  if (colon == std::string::npos) return kDefaultServer;
  return server.substr(0, colon) + ":50051";
}

struct Globals {
  std::string server = kDefaultServer;
  std::string api_key;
  double timeout_s = 5;
  // TLS to the gRPC port: --tls, or implied by --ca/--cert/--key.
  bool tls = false;
  std::string ca_file, cert_file, key_file;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
};

// Builds g->credentials from the TLS flags; false (with a message in `error`) when a file
// cannot be read.
bool LoadCredentials(Globals* g, std::string* error) {
  if (!g->tls && g->ca_file.empty() && g->cert_file.empty() && g->key_file.empty()) return true;
  if (g->cert_file.empty() != g->key_file.empty()) {
    *error = "--cert and --key go together";
    return false;
  }
  grpc::SslCredentialsOptions options;  // no --ca: the system's trusted roots
  for (auto [flag, path, pem] : {std::tuple{"--ca", &g->ca_file, &options.pem_root_certs},
                                 std::tuple{"--cert", &g->cert_file, &options.pem_cert_chain},
                                 std::tuple{"--key", &g->key_file, &options.pem_private_key}}) {
    std::ifstream in(*path);
    std::stringstream text;
    if (!path->empty() && (!in || !(text << in.rdbuf()))) {
      *error = absl::StrCat(flag, ": cannot read '", *path, "'");
      return false;
    }
    *pem = text.str();
  }
  g->credentials = grpc::SslCredentials(options);
  return true;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// One line of JSON (protobuf JSON mapping: camelCase names), as every --json output prints;
// `zeros` also prints fields that hold their zero value.
std::string ToJsonLine(const pb::Message& m, bool zeros = false) {
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = zeros;
  std::string out;
  (void)pb::util::MessageToJsonString(m, &out, options);
  return out + "\n";
}

// Calls one unary method with deadline and API key, mapping failures to exit codes.
class Caller {
 public:
  Caller(const Globals& g, std::ostream& err)
      : globals_(g),
        err_(err),
        channel_(grpc::CreateChannel(g.server, g.credentials)),
        stub_(v1::Broker::NewStub(channel_)) {}

  // Streams WatchEvents to `print` until `count` events, `duration_s` seconds (0: unbounded),
  // or the server ends the stream.
  template <typename Print>
  int Watch(const v1::WatchEventsRequest& req, uint64_t count, double duration_s, Print print) {
    grpc::ClientContext ctx;
    if (duration_s > 0) {
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(duration_s)));
    }
    if (!globals_.api_key.empty()) {
      ctx.AddMetadata("authorization", "Bearer " + globals_.api_key);
    }
    std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub_->WatchEvents(&ctx, req);
    // Herald sends the stream's headers once it is attached: from then on an end that is not
    // ours is the server's (a drain, a restart), not a server we could not reach.
    reader->WaitForInitialMetadata();
    const bool attached = channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    v1::Event event;
    uint64_t seen = 0;
    bool done = false;
    while (reader->Read(&event)) {
      print(event);
      if (count != 0 && ++seen >= count) {
        done = true;
        ctx.TryCancel();
        break;
      }
    }
    grpc::Status st = reader->Finish();
    if (st.ok() || done ||
        (duration_s > 0 && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
      return kExitOk;
    }
    if (attached && (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     st.error_code() == grpc::StatusCode::CANCELLED)) {
      err_ << "heraldctl: Herald at " << globals_.server << " ended the stream ("
           << st.error_message()
           << "): it is draining or stopped; watch another node, or this one once it is back\n";
      return kExitServerError;
    }
    return Report(st);
  }

  template <typename Req, typename Resp>
  int Call(grpc::Status (v1::Broker::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
           const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(globals_.timeout_s)));
    if (!globals_.api_key.empty()) {
      ctx.AddMetadata("authorization", "Bearer " + globals_.api_key);
    }
    grpc::Status st = ((*stub_).*method)(&ctx, req, resp);
    if (st.ok()) return kExitOk;
    return Report(st);
  }

 private:
  int Report(const grpc::Status& st) {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE &&
        absl::StrContains(st.error_message(), "http1.x")) {
      // gRPC's words for a peer that answered HTTP/1.x: most likely herald's WebSocket port.
      err_ << "heraldctl: " << globals_.server
           << " answers HTTP/1.x, not gRPC: this looks like herald's WebSocket/HTTP port "
              "(--ws-listen). heraldctl uses the gRPC control API, which listens on herald's "
              "--grpc-listen address (default "
           << kDefaultServer << "); try --server " << GrpcGuess(globals_.server) << ".\n";
      return kExitUnreachable;
    }
    // gRPC uses UNAVAILABLE both for a server it cannot reach and for a server's own answer
    // (Redis unreachable, a node that did not answer, a drain): connected means answered.
    const bool answered = channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    if (!answered && (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                      st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
      err_ << "heraldctl: cannot reach Herald at " << globals_.server << " (" << st.error_message()
           << "). Is herald running? Point heraldctl at its gRPC address (herald's "
              "--grpc-listen, default "
           << kDefaultServer << ") with --server HOST:PORT or HERALDCTL_SERVER.\n";
      return kExitUnreachable;
    }
    if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      err_ << "heraldctl: UNAUTHENTICATED: " << st.error_message()
           << " (pass --api-key or set HERALD_API_KEY to the server's key)\n";
      return kExitServerError;
    }
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      err_ << "heraldctl: Herald at " << globals_.server << " did not answer within --timeout "
           << globals_.timeout_s << " s (DEADLINE_EXCEEDED)\n";
      return kExitServerError;
    }
    // gRPC's codes are absl's, number for number.
    err_ << "heraldctl: "
         << absl::StatusCodeToString(static_cast<absl::StatusCode>(st.error_code())) << ": "
         << st.error_message() << "\n";
    return kExitServerError;
  }

  const Globals& globals_;
  std::ostream& err_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Broker::Stub> stub_;
};

std::string Age(int64_t since_ms) {
  int64_t s = (absl::ToUnixMillis(absl::Now()) - since_ms) / 1000;
  if (s < 0) s = 0;
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s / 3600, "h");
}

void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

void PrintConnection(std::ostream& out, const v1::Connection& c) {
  std::vector<std::vector<std::string>> rows = {
      {"id", c.id()},
      {"node", c.node()},
      {"user", c.user().empty() ? "(anonymous)" : c.user()},
      {"remote", c.remote_address()},
      {"origin", c.origin()},
      {"user agent", c.user_agent()},
      {"connected",
       absl::StrCat(absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(c.connected_at_ms()),
                                     absl::UTCTimeZone()),
                    " (", Age(c.connected_at_ms()), " ago)")},
      {"channels", absl::StrJoin(c.channels(), ", ")},
      {"frames in/out", absl::StrCat(c.frames_in(), " / ", c.frames_out())},
      {"bytes in/out", absl::StrCat(c.bytes_in(), " / ", c.bytes_out())},
      {"send buffer", absl::StrCat(c.send_buffer_bytes(), " bytes")},
  };
  for (auto& row : rows) row[0] += ":";
  PrintTable(out, rows);
}

bool ParseStatus(const std::string& text, v1::OrderStatus* status) {
  std::string name = absl::AsciiStrToUpper(text);
  if (name.rfind("ORDER_STATUS_", 0) != 0) name = "ORDER_STATUS_" + name;
  return v1::OrderStatus_Parse(name, status) && *status != v1::ORDER_STATUS_UNSPECIFIED;
}

std::string StatusNames() {
  std::vector<std::string> names;
  for (int i = v1::OrderStatus_MIN + 1; i <= v1::OrderStatus_MAX; ++i) {
    names.push_back(
        absl::AsciiStrToLower(v1::OrderStatus_Name(static_cast<v1::OrderStatus>(i)).substr(13)));
  }
  return absl::StrJoin(names, ", ");
}

// Reads a JSON value or object from `text` into a google.protobuf.Value.
bool ParseJsonValue(const std::string& text, pb::Value* value, std::string* error) {
  auto st = pb::util::JsonStringToMessage(text, value);
  if (!st.ok()) {
    *error = std::string(st.message());
    return false;
  }
  return true;
}

bool ReadFile(const std::string& path, std::string* content) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    *content = ss.str();
    return true;
  }
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *content = ss.str();
  return true;
}

std::atomic<bool> g_interrupted{false};

extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

const char* StatusWord(v1::OrderStatus status) {
  switch (status) {
    case v1::ORDER_STATUS_CREATED:
      return "created";
    case v1::ORDER_STATUS_ACCEPTED:
      return "accepted";
    case v1::ORDER_STATUS_PREPARING:
      return "preparing";
    case v1::ORDER_STATUS_READY:
      return "ready";
    case v1::ORDER_STATUS_SHIPPED:
      return "shipped";
    case v1::ORDER_STATUS_DELIVERED:
      return "delivered";
    case v1::ORDER_STATUS_CANCELLED:
      return "cancelled";
    default:
      return "?";
  }
}

// Runs the order simulator until `duration` passes (0: until SIGINT/SIGTERM), publishing each
// due version with PublishOrder.
int Simulate(Caller& caller, const SimulateOptions& options, double duration_s, bool quiet,
             std::ostream& out, std::ostream& err) {
  g_interrupted.store(false);
  auto old_int = std::signal(SIGINT, OnInterrupt);
  auto old_term = std::signal(SIGTERM, OnInterrupt);
  const absl::Time start = absl::Now();
  const absl::Time end =
      duration_s > 0 ? start + absl::Seconds(duration_s) : absl::InfiniteFuture();
  OrderSimulator sim(options, start);
  uint64_t published = 0, stale = 0;
  int rc = kExitOk;
  out << "simulating orders for store" << (options.stores.size() == 1 ? " " : "s ")
      << absl::StrJoin(options.stores, ", ") << " at " << options.rate << "/s"
      << (duration_s > 0 ? absl::StrCat(" for ", duration_s, " s") : " until Ctrl-C") << std::endl;
  while (!g_interrupted.load() && absl::Now() < end) {
    const absl::Time now = absl::Now();
    for (const v1::Order& order : sim.Due(now)) {
      v1::PublishOrderRequest req;
      *req.mutable_order() = order;
      v1::PublishOrderResponse resp;
      rc = caller.Call(&v1::Broker::Stub::PublishOrder, req, &resp);
      if (rc != kExitOk) break;
      ++published;
      if (resp.stale()) ++stale;
      if (!quiet) {
        out << absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()) << "  "
            << order.id() << " v" << order.version() << "  store " << order.store_id() << "  "
            << StatusWord(order.status()) << "  queued to " << resp.queued() << std::endl;
      }
    }
    if (rc != kExitOk) break;
    // Sleep until the next version is due, waking up often enough to notice Ctrl-C.
    const absl::Time wake = std::min({sim.next_due(), end, absl::Now() + absl::Milliseconds(100)});
    absl::SleepFor(wake - absl::Now());
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  // Orders still in flight would otherwise stay open on every board and in snapshots: close
  // them as cancelled ("simulation stopped"), unless the server is gone.
  size_t closed = 0;
  if (rc == kExitOk) {
    for (const v1::Order& order : sim.CancelOpen(absl::Now())) {
      v1::PublishOrderRequest req;
      *req.mutable_order() = order;
      v1::PublishOrderResponse resp;
      rc = caller.Call(&v1::Broker::Stub::PublishOrder, req, &resp);
      if (rc != kExitOk) break;
      ++published;
      ++closed;
    }
  }
  out << "published " << published << " order versions (" << stale << " stale); cancelled the "
      << closed << " orders still open" << std::endl;
  (void)err;
  return rc;
}

}  // namespace

int Run(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Globals g;
  g.server = EnvOr("HERALDCTL_SERVER", g.server);
  g.api_key = EnvOr("HERALD_API_KEY", "");

  CLI::App app{"heraldctl: operate a Herald broker over its gRPC control API."};
  app.require_subcommand(1);
  app.set_version_flag("--version", absl::StrCat("heraldctl ", Version()));
  app.add_option("-s,--server", g.server, "Herald gRPC address HOST:PORT (env HERALDCTL_SERVER)")
      ->capture_default_str();
  app.add_option("--api-key", g.api_key, "API key, if the server has one (env HERALD_API_KEY)");
  app.add_option("--timeout", g.timeout_s, "Seconds to wait for an answer")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_flag("--tls", g.tls, "Connect with TLS (a server started with --tls-cert)");
  app.add_option("--ca", g.ca_file,
                 "PEM CA certificates to verify the server with (implies --tls)");
  app.add_option("--cert", g.cert_file, "PEM client certificate, for --tls-client-ca (mTLS)");
  app.add_option("--key", g.key_file, "PEM private key of --cert");

  // conns
  struct {
    std::string user, channel, remote;
    uint32_t limit = 0;
    bool json = false;
  } conns;
  CLI::App* conns_cmd = app.add_subcommand("conns", "List connections (all pages)");
  conns_cmd->add_option("--user", conns.user, "Only this user's connections");
  conns_cmd->add_option("--channel", conns.channel, "Only subscribers of this channel");
  conns_cmd->add_option("--remote", conns.remote, "Only this remote address (ip or ip:port)");
  conns_cmd->add_option("--limit", conns.limit, "Show at most N connections (0: all)");
  conns_cmd->add_flag("--json", conns.json, "One JSON object per line");

  // conn
  std::string conn_id;
  bool conn_json = false;
  CLI::App* conn_cmd = app.add_subcommand("conn", "Show one connection");
  conn_cmd->add_option("id", conn_id, "Connection id")->required();
  conn_cmd->add_flag("--json", conn_json, "Print JSON");

  // kick
  std::string kick_id, kick_user, kick_reason;
  uint32_t kick_code = 1000;
  CLI::App* kick_cmd =
      app.add_subcommand("kick", "Disconnect a connection or every connection of a user");
  kick_cmd->add_option("id", kick_id, "Connection id");
  kick_cmd->add_option("--user", kick_user, "Disconnect all of this user's connections");
  kick_cmd->add_option("--code", kick_code, "WebSocket close code (1000 or 3000..4999)")
      ->capture_default_str();
  kick_cmd->add_option("--reason", kick_reason, "Close reason shown to the client");

  // publish-order
  struct {
    std::string file, id, status, store, customer, currency = "EUR";  // as `simulate`
    uint64_t version = 0;
    int64_t total = 0;
    std::vector<std::string> items;
    bool json = false;
  } po;
  CLI::App* po_cmd = app.add_subcommand(
      "publish-order", "Publish one order version (flags, or --file with the Order as JSON)");
  po_cmd->add_option("-f,--file", po.file, "Order JSON file (protobuf JSON mapping; - for stdin)");
  po_cmd->add_option("--id", po.id, "Order id");
  po_cmd->add_option("--version", po.version, "Order version (must increase)");
  po_cmd->add_option("--status", po.status, "Status: " + StatusNames());
  po_cmd->add_option("--store", po.store, "Store id");
  po_cmd->add_option("--customer", po.customer, "Customer id");
  po_cmd->add_option("--total", po.total, "Total in minor units (cents)");
  po_cmd->add_option("--currency", po.currency, "ISO 4217 currency")->capture_default_str();
  po_cmd->add_option("--item", po.items, "Item SKU:NAME:QTY:UNIT_PRICE (repeatable)");
  po_cmd->add_flag("--json", po.json, "Print the reply as JSON");

  // publish
  std::string pub_channel, pub_data;
  bool pub_json = false;
  CLI::App* pub_cmd = app.add_subcommand("publish", "Publish JSON data to a channel");
  pub_cmd->add_option("channel", pub_channel, "Channel name")->required();
  pub_cmd->add_option("data", pub_data, "JSON value, e.g. '{\"text\":\"hi\"}'")->required();
  pub_cmd->add_flag("--json", pub_json, "Print the reply as JSON");

  // watch
  struct {
    std::vector<std::string> types;
    std::string channel, user;
    uint64_t count = 0;
    double duration_s = 0;
    bool json = false;
  } watch;
  CLI::App* watch_cmd = app.add_subcommand(
      "watch", "Print events live: connect, disconnect, subscribe, message, ack, task outcomes");
  watch_cmd
      ->add_option("--type", watch.types,
                   "Only these types (connect, disconnect, subscribe, unsubscribe, message, "
                   "ack, task_assigned, task_acked, task_redelivered, task_expired)")
      ->delimiter(',');
  watch_cmd->add_option("--channel", watch.channel, "Only events of this channel");
  watch_cmd->add_option("--user", watch.user, "Only events of this user");
  watch_cmd->add_option("--count", watch.count, "Stop after N events (0: never)");
  watch_cmd->add_option("--duration", watch.duration_s, "Stop after S seconds (0: never)");
  watch_cmd->add_flag("--json", watch.json, "One JSON object per line");

  // tasks
  bool tasks_json = false;
  CLI::App* tasks_cmd = app.add_subcommand("tasks", "Show task queues: workers, depth, in flight");
  tasks_cmd->add_flag("--json", tasks_json, "Print JSON");

  // history
  std::string history_channel;
  uint64_t history_since = 0;
  uint32_t history_limit = 0;
  bool history_reverse = false, history_json = false;
  CLI::App* history_cmd = app.add_subcommand("history", "Show a channel's retained publications");
  history_cmd->add_option("channel", history_channel, "Channel")->required();
  history_cmd->add_option("--since", history_since, "Only offsets greater than this");
  history_cmd->add_option("--limit", history_limit, "At most N (0: 100)");
  history_cmd->add_flag("--reverse", history_reverse, "Newest first");
  history_cmd->add_flag("--json", history_json, "One JSON object per line");

  // dispatch
  std::string dispatch_queue, dispatch_data;
  uint32_t dispatch_deadline_ms = 0, dispatch_ttl_ms = 0;
  bool dispatch_json = false;
  CLI::App* dispatch_cmd =
      app.add_subcommand("dispatch", "Hand a task to exactly one worker of a queue (DispatchTask)");
  dispatch_cmd->add_option("queue", dispatch_queue, "Queue name")->required();
  dispatch_cmd->add_option("data", dispatch_data, "Task as JSON, e.g. '{\"orderId\":\"o-1\"}'")
      ->required();
  dispatch_cmd->add_option("--ack-deadline-ms", dispatch_deadline_ms,
                           "Time a worker has to ack (0: server default)");
  dispatch_cmd->add_option("--ttl-ms", dispatch_ttl_ms, "Time the task may wait (0: default)");
  dispatch_cmd->add_flag("--json", dispatch_json, "Print the reply as JSON");

  // token
  struct {
    std::string sub, channels, secret, private_key;
    int64_t ttl = 3600;
  } tok;
  CLI::App* tok_cmd = app.add_subcommand(
      "token",
      "Mint a client token (JWT) for development: HS256 with --secret, RS256 with "
      "--private-key");
  tok_cmd->add_option("--sub", tok.sub, "User id (becomes the connection's user)")->required();
  tok_cmd->add_option("--channels", tok.channels,
                      "Comma-separated channels or patterns the user may subscribe to "
                      "(e.g. 'store:42,order:*'); customer:<sub> is always allowed");
  tok_cmd->add_option("--ttl", tok.ttl, "Seconds until the token expires")
      ->check(CLI::Range(int64_t{1}, int64_t{10} * 365 * 86400))
      ->capture_default_str();
  auto* secret_opt = tok_cmd->add_option("--secret", tok.secret,
                                         "HS256 secret (default: $HERALD_JWT_HS256_SECRET)");
  auto* key_opt = tok_cmd->add_option("--private-key", tok.private_key,
                                      "PEM file with the RSA private key (RS256)");
  secret_opt->excludes(key_opt);

  // simulate
  SimulateOptions sim;
  std::string sim_stores = "42";
  double sim_duration = 0, sim_step = 4;
  bool sim_quiet = false;
  CLI::App* sim_cmd = app.add_subcommand(
      "simulate", "Publish a realistic stream of orders (created -> ... -> delivered/cancelled)");
  sim_cmd->add_option("--stores", sim_stores, "Comma-separated store ids")->capture_default_str();
  sim_cmd->add_option("--customers", sim.customers, "Number of distinct customers (c-1..c-N)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  sim_cmd->add_option("--rate", sim.rate, "New orders per second")
      ->check(CLI::Range(0.001, 10000.0))
      ->capture_default_str();
  sim_cmd->add_option("--step", sim_step, "Mean seconds an order stays in each status")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  sim_cmd->add_option("--cancel-ratio", sim.cancel_ratio, "Share of orders cancelled early")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sim_cmd->add_option("--duration", sim_duration, "Seconds to run (0: until Ctrl-C)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  sim_cmd->add_option("--seed", sim.seed, "Random seed (0: random)");
  sim_cmd->add_flag("-q,--quiet", sim_quiet, "Print only the summary");

  // stats
  bool stats_json = false;
  CLI::App* stats_cmd = app.add_subcommand("stats", "Show server counters");
  stats_cmd->add_flag("--json", stats_json, "Print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help (of heraldctl or of a command), --version: CLI11 prints the right text, once.
    if (e.get_exit_code() == 0) return app.exit(e, out, err);
    if (app.get_subcommands().empty()) {
      // CLI11 says only "A subcommand is required" for a word that names none: name the word.
      for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("-", 0) == 0) {
          // The global options that take a value (unless given as --option=value).
          static const std::set<std::string> kTakesValue = {
              "-s", "--server", "--api-key", "--timeout", "--ca", "--cert", "--key"};
          if (kTakesValue.count(arg) > 0) ++i;
          continue;
        }
        err << "heraldctl: unknown command '" << arg << "' (see heraldctl --help)\n";
        return kExitUsage;
      }
    }
    err << "heraldctl: " << e.what() << " (see heraldctl --help)\n";
    return kExitUsage;
  }

  if (tok_cmd->parsed()) {
    if (tok.secret.empty() && tok.private_key.empty()) {
      tok.secret = EnvOr("HERALD_JWT_HS256_SECRET", "");
    }
    if (tok.secret.empty() == tok.private_key.empty()) {
      err << "heraldctl: token needs --secret S (HS256) or --private-key FILE (RS256)\n";
      return kExitUsage;
    }
    std::string key = tok.secret;
    if (!tok.private_key.empty() && (!ReadFile(tok.private_key, &key) || key.empty())) {
      err << "heraldctl: --private-key: cannot read " << tok.private_key << " (or it is empty)\n";
      return kExitUsage;
    }
    std::vector<std::string> channels = absl::StrSplit(tok.channels, ',', absl::SkipWhitespace());
    for (std::string& c : channels) c = std::string(absl::StripAsciiWhitespace(c));
    absl::StatusOr<std::string> token =
        auth::SignJwt(tok.secret.empty() ? "RS256" : "HS256", key,
                      auth::ClaimsJson(tok.sub, absl::Now() + absl::Seconds(tok.ttl), channels));
    if (!token.ok()) {
      err << "heraldctl: " << (tok.secret.empty() ? "--private-key: " : "--secret: ")
          << absl::StripPrefix(token.status().message(), "key: ") << "\n";
      return kExitUsage;
    }
    out << *token << "\n";
    return kExitOk;
  }

  if (std::string error; !LoadCredentials(&g, &error)) {
    err << "heraldctl: " << error << "\n";
    return kExitUsage;
  }
  Caller caller(g, err);

  if (dispatch_cmd->parsed()) {
    v1::DispatchTaskRequest req;
    req.set_queue(dispatch_queue);
    req.set_ack_deadline_ms(dispatch_deadline_ms);
    req.set_ttl_ms(dispatch_ttl_ms);
    std::string error;
    if (!ParseJsonValue(dispatch_data, req.mutable_data(), &error)) {
      err << "heraldctl: data is not valid JSON: " << error << "\n";
      return kExitUsage;
    }
    v1::DispatchTaskResponse resp;
    if (int rc = caller.Call(&v1::Broker::Stub::DispatchTask, req, &resp); rc != kExitOk) {
      return rc;
    }
    if (dispatch_json) {
      out << ToJsonLine(resp);
    } else if (resp.assigned_connection_id().empty()) {
      out << "task " << resp.task_id() << " is waiting for a worker (queue depth "
          << resp.queue_depth() << ")\n";
    } else {
      out << "task " << resp.task_id() << " assigned to " << resp.assigned_connection_id() << "\n";
    }
    return kExitOk;
  }

  if (sim_cmd->parsed()) {
    sim.stores = absl::StrSplit(sim_stores, ',', absl::SkipWhitespace());
    if (sim.stores.empty()) {
      err << "heraldctl: --stores: give at least one store id\n";
      return kExitUsage;
    }
    sim.step = absl::Seconds(sim_step);
    return Simulate(caller, sim, sim_duration, sim_quiet, out, err);
  }

  if (conns_cmd->parsed()) {
    std::vector<std::vector<std::string>> rows = {
        {"ID", "NODE", "USER", "REMOTE", "AGE", "CHANNELS", "IN", "OUT", "BUFFER"}};
    v1::ListConnectionsRequest req;
    req.set_user(conns.user);
    req.set_channel(conns.channel);
    req.set_remote_address(conns.remote);
    req.set_page_size(500);
    uint32_t shown = 0, total = 0, missing = 0;
    do {
      v1::ListConnectionsResponse resp;
      if (int rc = caller.Call(&v1::Broker::Stub::ListConnections, req, &resp); rc != kExitOk) {
        return rc;
      }
      total = resp.total();
      missing = std::max(missing, resp.missing_nodes());
      for (const v1::Connection& c : resp.connections()) {
        if (conns.limit != 0 && shown >= conns.limit) break;
        ++shown;
        if (conns.json) {
          out << ToJsonLine(c);
        } else {
          rows.push_back({c.id(), c.node(), c.user().empty() ? "-" : c.user(), c.remote_address(),
                          Age(c.connected_at_ms()), absl::StrJoin(c.channels(), ","),
                          absl::StrCat(c.frames_in()), absl::StrCat(c.frames_out()),
                          absl::StrCat(c.send_buffer_bytes())});
        }
      }
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty() && (conns.limit == 0 || shown < conns.limit));
    if (!conns.json) {
      PrintTable(out, rows);
      out << shown << " of " << total << " connections\n";
    }
    if (missing > 0) {
      err << "heraldctl: " << missing << " node" << (missing == 1 ? "" : "s")
          << " did not answer in time: their connections are not listed\n";
    }
    return kExitOk;
  }

  if (conn_cmd->parsed()) {
    v1::GetConnectionRequest req;
    req.set_connection_id(conn_id);
    v1::Connection c;
    if (int rc = caller.Call(&v1::Broker::Stub::GetConnection, req, &c); rc != kExitOk) return rc;
    if (conn_json) {
      out << ToJsonLine(c);
    } else {
      PrintConnection(out, c);
    }
    return kExitOk;
  }

  if (kick_cmd->parsed()) {
    if (kick_id.empty() == kick_user.empty()) {
      err << "heraldctl: kick needs exactly one of a connection ID or --user USER\n";
      return kExitUsage;
    }
    v1::DisconnectRequest req;
    if (!kick_id.empty()) req.set_connection_id(kick_id);
    if (!kick_user.empty()) req.set_user(kick_user);
    req.set_code(kick_code);
    req.set_reason(kick_reason);
    v1::DisconnectResponse resp;
    if (int rc = caller.Call(&v1::Broker::Stub::Disconnect, req, &resp); rc != kExitOk) return rc;
    out << "disconnected " << resp.disconnected() << " connection"
        << (resp.disconnected() == 1 ? "" : "s") << "\n";
    return kExitOk;
  }

  if (po_cmd->parsed()) {
    v1::PublishOrderRequest req;
    v1::Order* order = req.mutable_order();
    if (!po.file.empty()) {
      std::string text;
      if (!ReadFile(po.file, &text)) {
        err << "heraldctl: cannot read " << po.file << "\n";
        return kExitUsage;
      }
      auto st = pb::util::JsonStringToMessage(text, order);
      if (!st.ok()) {
        err << "heraldctl: " << po.file << " is not a herald.v1.Order in JSON: " << st.message()
            << "\n";
        return kExitUsage;
      }
    }
    if (!po.id.empty()) order->set_id(po.id);
    if (po.version != 0) order->set_version(po.version);
    if (!po.store.empty()) order->set_store_id(po.store);
    if (!po.customer.empty()) order->set_customer_id(po.customer);
    if (!po.status.empty()) {
      v1::OrderStatus status;
      if (!ParseStatus(po.status, &status)) {
        err << "heraldctl: --status: unknown status '" << po.status << "'; use one of "
            << StatusNames() << "\n";
        return kExitUsage;
      }
      order->set_status(status);
    }
    for (const std::string& item : po.items) {
      std::vector<std::string> parts = absl::StrSplit(item, ':');
      uint32_t qty = 0;
      int64_t price = 0;
      if (parts.size() != 4 || !absl::SimpleAtoi(parts[2], &qty) ||
          !absl::SimpleAtoi(parts[3], &price)) {
        err << "heraldctl: --item: expected SKU:NAME:QTY:UNIT_PRICE, got '" << item << "'\n";
        return kExitUsage;
      }
      v1::OrderItem* it = order->add_items();
      it->set_sku(parts[0]);
      it->set_name(parts[1]);
      it->set_quantity(qty);
      it->mutable_unit_price()->set_minor_units(price);
      it->mutable_unit_price()->set_currency(po.currency);
    }
    if (po.total != 0 || !order->has_total()) {
      int64_t total = po.total;
      if (total == 0) {
        for (const auto& it : order->items())
          total += it.quantity() * it.unit_price().minor_units();
      }
      order->mutable_total()->set_minor_units(total);
      order->mutable_total()->set_currency(po.currency);
    }
    // What the server would refuse anyway is bad usage here (exit 2), as for other commands.
    std::vector<std::string> missing;
    if (order->id().empty()) missing.push_back("--id");
    if (order->version() == 0) missing.push_back("--version");
    if (order->status() == v1::ORDER_STATUS_UNSPECIFIED) missing.push_back("--status");
    if (order->store_id().empty()) missing.push_back("--store");
    if (!missing.empty()) {
      err << "heraldctl: publish-order needs " << absl::StrJoin(missing, ", ")
          << " (as flags or in --file)\n";
      return kExitUsage;
    }
    int64_t now = absl::ToUnixMillis(absl::Now());
    if (order->created_at_ms() == 0) order->set_created_at_ms(now);
    if (order->updated_at_ms() == 0) order->set_updated_at_ms(now);
    v1::PublishOrderResponse resp;
    if (int rc = caller.Call(&v1::Broker::Stub::PublishOrder, req, &resp); rc != kExitOk) {
      return rc;
    }
    if (po.json) {
      out << ToJsonLine(resp);
    } else if (resp.applied()) {
      out << "order " << order->id() << " v" << order->version() << " published to "
          << resp.deliveries_size() << " channels, queued to " << resp.queued() << " connections\n";
    } else {
      out << "order " << order->id() << " v" << order->version() << " is stale (latest version "
          << resp.latest_version() << "): not delivered\n";
    }
    return kExitOk;
  }

  if (pub_cmd->parsed()) {
    v1::PublishRequest req;
    req.set_channel(pub_channel);
    std::string error;
    if (!ParseJsonValue(pub_data, req.mutable_data(), &error)) {
      err << "heraldctl: data is not valid JSON: " << error << "\n";
      return kExitUsage;
    }
    v1::PublishResponse resp;
    if (int rc = caller.Call(&v1::Broker::Stub::Publish, req, &resp); rc != kExitOk) return rc;
    if (pub_json) {
      out << ToJsonLine(resp);
    } else {
      out << "published to " << resp.delivery().channel() << " at offset "
          << resp.delivery().offset() << ", queued to " << resp.delivery().queued()
          << " connections\n";
    }
    return kExitOk;
  }

  if (watch_cmd->parsed()) {
    v1::WatchEventsRequest req;
    for (const std::string& t : watch.types) {
      v1::EventType type;
      if (!v1::EventType_Parse("EVENT_TYPE_" + absl::AsciiStrToUpper(t), &type) ||
          type == v1::EVENT_TYPE_UNSPECIFIED) {
        err << "heraldctl: --type: unknown event type '" << t << "'\n";
        return kExitUsage;
      }
      req.add_types(type);
    }
    req.set_channel(watch.channel);
    req.set_user(watch.user);
    return caller.Watch(req, watch.count, watch.duration_s, [&](const v1::Event& e) {
      if (watch.json) {
        out << ToJsonLine(e);
      } else {
        std::string line = absl::StrCat(
            absl::FormatTime("%H:%M:%E3S", absl::FromUnixMillis(e.time_ms()), absl::UTCTimeZone()),
            " ", absl::AsciiStrToLower(v1::EventType_Name(e.type()).substr(11)));
        auto field = [&line](const char* name, const std::string& value) {
          if (!value.empty()) absl::StrAppend(&line, " ", name, "=", value);
        };
        field("conn", e.connection_id());
        field("user", e.user());
        field("channel", e.channel());
        field("remote", e.remote_address());
        if (e.offset() != 0) field("offset", absl::StrCat(e.offset()));
        field("queue", e.queue());
        field("task", e.task_id());
        field("delivery", e.delivery_id());
        if (e.attempt() != 0) field("attempt", absl::StrCat(e.attempt()));
        if (e.code() != 0) field("code", absl::StrCat(e.code()));
        field("reason", e.reason());
        if (e.has_data()) {
          std::string data;
          (void)pb::util::MessageToJsonString(e.data(), &data);
          field("data", data);
        }
        if (e.dropped_before() != 0) field("dropped_before", absl::StrCat(e.dropped_before()));
        out << line << "\n";
      }
      out.flush();
    });
  }

  if (tasks_cmd->parsed()) {
    v1::ListQueuesResponse resp;
    if (int rc = caller.Call(&v1::Broker::Stub::ListQueues, v1::ListQueuesRequest(), &resp);
        rc != kExitOk) {
      return rc;
    }
    if (tasks_json) {
      out << ToJsonLine(resp, /*zeros=*/true);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {{"QUEUE", "WORKERS", "WAITING", "IN-FLIGHT",
                                                   "DISPATCHED", "ACKED", "REDELIVERED",
                                                   "EXPIRED"}};
    for (const v1::QueueInfo& q : resp.queues()) {
      rows.push_back({q.queue(), absl::StrCat(q.workers()), absl::StrCat(q.waiting()),
                      absl::StrCat(q.in_flight_size()), absl::StrCat(q.dispatched()),
                      absl::StrCat(q.acked()), absl::StrCat(q.redelivered()),
                      absl::StrCat(q.expired())});
    }
    PrintTable(out, rows);
    for (const v1::QueueInfo& q : resp.queues()) {
      for (const v1::TaskInfo& t : q.in_flight()) {
        out << "  " << q.queue() << ": task " << t.task_id() << " (delivery " << t.delivery_id()
            << ", attempt " << t.attempt() << ") held by " << t.connection_id() << "\n";
      }
    }
    return kExitOk;
  }

  if (history_cmd->parsed()) {
    v1::HistoryRequest req;
    req.set_channel(history_channel);
    req.set_since_offset(history_since);
    req.set_limit(history_limit);
    req.set_reverse(history_reverse);
    v1::HistoryResponse resp;
    if (int rc = caller.Call(&v1::Broker::Stub::History, req, &resp); rc != kExitOk) return rc;
    for (const v1::HistoryEntry& p : resp.publications()) {
      if (history_json) {
        out << ToJsonLine(p);
      } else {
        std::string data;
        (void)pb::util::MessageToJsonString(p.data(), &data);
        out << p.offset() << "  " << data << "\n";
      }
    }
    if (!history_json) {
      out << resp.publications_size() << " publications; channel epoch " << resp.epoch()
          << ", latest offset " << resp.offset() << "\n";
    }
    return kExitOk;
  }

  if (stats_cmd->parsed()) {
    v1::StatsResponse s;
    if (int rc = caller.Call(&v1::Broker::Stub::Stats, v1::StatsRequest(), &s); rc != kExitOk) {
      return rc;
    }
    if (stats_json) {
      out << ToJsonLine(s, /*zeros=*/true);
      return kExitOk;
    }
    // Every field, in proto order, named as in `stats --json` (the JSON mapping's camelCase).
    std::vector<std::vector<std::string>> rows;
    const pb::Descriptor* d = s.GetDescriptor();
    const pb::Reflection* r = s.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      std::string value;
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_STRING:
          value = r->GetString(s, f);
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          value = absl::StrCat(r->GetInt64(s, f));
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT64:
          value = absl::StrCat(r->GetUInt64(s, f));
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT32:
          value = absl::StrCat(r->GetUInt32(s, f));
          break;
        default:
          continue;
      }
      rows.push_back({f->json_name() + ":", value});
    }
    PrintTable(out, rows);
    if (s.nodes_size() > 1) {
      // The totals above add up these nodes.
      std::vector<std::vector<std::string>> nodes = {{"NODE", "CONNECTIONS", "USERS",
                                                      "SUBSCRIPTIONS", "PUBLICATIONS", "DELIVERIES",
                                                      "UPTIME"}};
      for (const v1::StatsResponse& n : s.nodes()) {
        nodes.push_back({n.node(), absl::StrCat(n.connections()), absl::StrCat(n.users()),
                         absl::StrCat(n.subscriptions()), absl::StrCat(n.publications()),
                         absl::StrCat(n.deliveries()), absl::StrCat(n.uptime_ms() / 1000, "s")});
      }
      out << "\n";
      PrintTable(out, nodes);
    }
    return kExitOk;
  }
  return kExitUsage;
}

}  // namespace herald::cli
