#include "server/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include <CLI/CLI.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "server/closest_name.h"
#include "server/config_file.h"
#include "server/engine/redis/redis_options.h"
#include "server/static_dir.h"
#include "server/version.h"

extern char** environ;

namespace herald {
namespace {

// HERALD_* variables that are not settings of the server: the examples, the tests and the
// benchmarks read them, and they are often exported in the shell that starts herald.
constexpr absl::string_view kOtherVariables[] = {
    // client/examples
    "HERALD_URL",
    "HERALD_GRPC",
    "HERALD_PROTO_DIR",
    "HERALD_STEP_DELAY_MS",
    "HERALD_CA",
    "HERALD_LAST_EVENT_ID",
    // tests (ctest sets them for the herald.js and browser tests, which start herald)
    "HERALD_BIN",
    "HERALD_ARTIFACTS",
    // bench/run.sh
    "HERALD_PUBLISH",
};
constexpr absl::string_view kConfigVariable = "HERALD_CONFIG";
constexpr absl::string_view kVariablePrefix = "HERALD_";

// The first HERALD_* variable of the environment that herald does not know, as one error line.
absl::Status CheckEnvironment(const CLI::App& app) {
  std::map<std::string, std::string> variable_by_key;  // max-frame-bytes -> HERALD_MAX_FRAME_BYTES
  std::set<std::string, std::less<>> known(std::begin(kOtherVariables), std::end(kOtherVariables));
  known.emplace(kConfigVariable);
  std::vector<std::string> keys;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_envname().empty() || opt->get_lnames().empty()) continue;
    variable_by_key[opt->get_lnames()[0]] = opt->get_envname();
    keys.push_back(opt->get_lnames()[0]);
    known.insert(opt->get_envname());
  }
  for (char** e = environ; *e != nullptr; ++e) {
    const absl::string_view entry = *e;
    const absl::string_view name = entry.substr(0, entry.find('='));
    if (!absl::StartsWith(name, kVariablePrefix) || known.count(name) > 0) continue;
    const std::string closest = ClosestName(absl::StripPrefix(name, kVariablePrefix), keys);
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown environment variable '", name, "'",
        closest.empty() ? " (herald --help lists the valid variables)"
                        : absl::StrCat("; did you mean '", variable_by_key[closest], "'?")));
  }
  return absl::OkStatus();
}

// A TOML value CLI11 reads back as `s`. CLI11 does not unescape, so no escapes: single quotes
// when `s` holds a double quote.
std::string Quote(const std::string& s) {
  const char q = s.find('"') == std::string::npos ? '"' : '\'';
  return absl::StrCat(std::string(1, q), s, std::string(1, q));
}

// `d` in the fewest significant digits (at least six) that read back as `d`: "10", "0.25".
std::string Decimal(double d) {
  std::string text;
  for (int digits = 6; digits <= 17; ++digits) {
    text = absl::StrFormat("%.*g", digits, d);
    if (std::strtod(text.c_str(), nullptr) == d) break;
  }
  return text;
}
template <typename Int>
std::string Number(Int n) {
  static_assert(std::is_integral_v<Int>, "Decimal() prints doubles");
  return absl::StrCat(n);
}
std::string Secret(const std::string& s) { return Quote(s.empty() ? "" : "****"); }

// A URL with the password of its "user:password@" part masked.
std::string RedactUrl(const std::string& url) {
  const size_t at = url.rfind('@');
  const size_t scheme = url.find("://");
  if (at == std::string::npos || scheme == std::string::npos) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return absl::StrCat(url.substr(0, colon + 1), "****", url.substr(at));
}

// A TOML array of strings: ["a", "b"], or [] (which StrictConfigFile reads back as none).
std::string QuoteList(const std::vector<std::string>& values) {
  if (values.empty()) return "[]";
  std::vector<std::string> quoted;
  for (const std::string& v : values) quoted.push_back(Quote(v));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// The routes of the webhook flags (see proxy::ParseRoute); an error names the flag.
absl::Status ParseProxyRoutes(const std::string& connect, const std::vector<std::string>& subscribe,
                              const std::string& message, const std::vector<std::string>& rpc,
                              const std::vector<std::string>& webhooks,
                              const std::string& webhook_events,
                              std::vector<proxy::Route>* routes) {
  using core::ProxyEvent;
  auto add = [&](const char* flag, ProxyEvent event, const std::string& spec) -> absl::Status {
    absl::StatusOr<proxy::Route> route = proxy::ParseRoute(event, spec);
    if (!route.ok())
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", route.status().message()));
    routes->push_back(*std::move(route));
    return absl::OkStatus();
  };
  if (!connect.empty()) {
    if (absl::Status st = add("--proxy-connect-url", ProxyEvent::kConnect, connect); !st.ok())
      return st;
  }
  for (const std::string& spec : subscribe) {
    if (absl::Status st = add("--proxy-subscribe-url", ProxyEvent::kSubscribe, spec); !st.ok())
      return st;
  }
  if (!message.empty()) {
    if (absl::Status st = add("--proxy-message-url", ProxyEvent::kMessage, message); !st.ok())
      return st;
  }
  for (const std::string& spec : rpc) {
    if (absl::Status st = add("--proxy-rpc-url", ProxyEvent::kRpc, spec); !st.ok()) return st;
  }
  std::vector<ProxyEvent> events;
  for (absl::string_view e : absl::StrSplit(webhook_events, ',', absl::SkipWhitespace())) {
    e = absl::StripAsciiWhitespace(e);
    if (e == "disconnect") {
      events.push_back(ProxyEvent::kDisconnect);
    } else if (e == "join") {
      events.push_back(ProxyEvent::kJoin);
    } else if (e == "leave") {
      events.push_back(ProxyEvent::kLeave);
    } else if (e == "online") {
      events.push_back(ProxyEvent::kOnline);
    } else if (e == "offline") {
      events.push_back(ProxyEvent::kOffline);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--webhook-events: unknown event '", e,
                       "'; expected disconnect, join, leave, online or offline"));
    }
  }
  for (const std::string& spec : webhooks) {
    // Checked as a join route, which may have a prefix; only join and leave are per channel, the
    // others take the URLs without one.
    absl::StatusOr<proxy::Route> checked = proxy::ParseRoute(ProxyEvent::kJoin, spec);
    if (!checked.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--webhook-url: ", checked.status().message()));
    }
    for (ProxyEvent event : events) {
      const bool per_channel = event == ProxyEvent::kJoin || event == ProxyEvent::kLeave;
      if (!per_channel && !checked->prefix.empty()) continue;
      routes->push_back({event, checked->prefix, checked->url});
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SplitHostPort(const std::string& field, const std::string& value, std::string* host,
                           std::string* port) {
  size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": expected HOST:PORT, got '", value, "'"));
  }
  *host = value.substr(0, colon);
  *port = value.substr(colon + 1);
  if (host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  int n = 0;
  if (!absl::SimpleAtoi(*port, &n) || n < 0 || n > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": port must be a number within 0..65535, got '", *port, "'"));
  }
  return absl::OkStatus();
}

ParsedConfig ParseServerConfig(int argc, char** argv) {
  ParsedConfig out;
  ServerConfig& c = out.config;
  core::Limits& l = c.limits;
  std::string ws_listen = c.ws_host + ":" + c.ws_port;
  std::string origins;
  std::string rs256_key_file;
  std::vector<std::string> static_searched;
  c.static_dir = FindStaticDir(&static_searched);

  CLI::App app{
      "herald: real-time broker. Browsers connect over WebSocket (ws://HOST:PORT/ws); "
      "backends drive it over gRPC (service herald.v1.Broker)."};
  // HERALD_CONFIG is the default file, set by hand: CLI11 reads the config file before it looks
  // at environment variables, so an envname() on this option would never be read.
  CLI::Option* config_opt = app.set_config(
      "--config", "",
      "Config file (TOML: key = value, keys named like the flags; env HERALD_CONFIG)");
  const char* config_env = std::getenv(std::string(kConfigVariable).c_str());
  const std::string config_from_env = config_env != nullptr ? config_env : "";
  if (!config_from_env.empty()) config_opt->default_str(config_from_env);
  auto config_file = std::make_shared<StrictConfigFile>(&app, config_opt);
  app.config_formatter(config_file);
  app.set_version_flag("--version", absl::StrCat("herald ", Version()));
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "Print the effective configuration, each value with its source, and exit")
      ->configurable(false);
  app.add_option("--ws-listen", ws_listen, "WebSocket/HTTP listen address HOST:PORT (port 0: any)")
      ->envname("HERALD_WS_LISTEN")
      ->capture_default_str();
  app.add_option("--grpc-listen", c.grpc_listen, "gRPC listen address HOST:PORT (port 0: any)")
      ->envname("HERALD_GRPC_LISTEN")
      ->capture_default_str();
  app.add_option("--api-key", c.api_key,
                 "API key that gRPC and HTTP API callers must send as 'authorization: Bearer KEY' "
                 "(empty: none)")
      ->envname("HERALD_API_KEY");
  app.add_option("--jwt-hs256-secret", c.jwt.hs256_secret,
                 "Secret for HS256 client tokens (JWT); with a key set, clients must authenticate")
      ->envname("HERALD_JWT_HS256_SECRET");
  app.add_option("--jwt-rs256-public-key", rs256_key_file,
                 "PEM file with the RSA public key for RS256 client tokens (JWT)")
      ->envname("HERALD_JWT_RS256_PUBLIC_KEY");
  app.add_option("--auth-timeout-ms", l.auth_timeout_ms,
                 "With a JWT key: time a client has to send `connect` when it gave no ?token=")
      ->envname("HERALD_AUTH_TIMEOUT_MS")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();
  CLI::Option* static_dir_opt =
      app.add_option("--static-dir", c.static_dir,
                     "Directory served at / over HTTP: demo pages and herald.js (empty: none). "
                     "Default: the first that holds herald.js of " +
                         absl::StrJoin(static_searched, ", "))
          ->envname("HERALD_STATIC_DIR")
          ->capture_default_str();
  app.add_option("--tls-cert", c.tls_cert,
                 "PEM certificate chain: the WebSocket/HTTP port serves wss:// and https:// only, "
                 "gRPC TLS only (needs --tls-key; reloaded on SIGHUP)")
      ->envname("HERALD_TLS_CERT");
  app.add_option("--tls-key", c.tls_key, "PEM private key of --tls-cert")
      ->envname("HERALD_TLS_KEY");
  app.add_option("--tls-client-ca", c.tls_client_ca,
                 "PEM CA certificates: gRPC clients must present a certificate they signed (mTLS)")
      ->envname("HERALD_TLS_CLIENT_CA");
  app.add_option("--allowed-origins", origins,
                 "Comma-separated Origins allowed to open WebSockets (empty: any)")
      ->envname("HERALD_ALLOWED_ORIGINS");
  std::string presence_prefixes;
  app.add_option("--presence-prefixes", presence_prefixes,
                 "Comma-separated channel prefixes whose subscribers are tracked for Presence and "
                 "PresenceStats, e.g. chat:,room: (empty: none)")
      ->envname("HERALD_PRESENCE_PREFIXES");
  std::string join_leave_prefixes;
  app.add_option(
         "--join-leave-prefixes", join_leave_prefixes,
         "Comma-separated channel prefixes whose subscribers get memberJoined/memberLeft "
         "frames when a subscription goes live (their own included) or ends, e.g. room: (empty: "
         "none)")
      ->envname("HERALD_JOIN_LEAVE_PREFIXES");
  std::string client_publish_prefixes;
  app.add_option("--client-publish-prefixes", client_publish_prefixes,
                 "Comma-separated channel prefixes clients may publish to when they may subscribe "
                 "to the channel, beside the token's publish claim (empty: none)")
      ->envname("HERALD_CLIENT_PUBLISH_PREFIXES");
  app.add_option("--threads", c.threads, "I/O threads (0: one per core)")
      ->envname("HERALD_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--node", c.node, "Node name used in connection ids (empty: random)")
      ->envname("HERALD_NODE");
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error or off")
      ->envname("HERALD_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--drain-timeout", c.drain_timeout_s,
                 "Seconds to wait for clients and in-flight calls on SIGTERM")
      ->envname("HERALD_DRAIN_TIMEOUT")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--engine", c.engine,
                 "Where channels, orders and idempotency keys live: memory (this process: one "
                 "node) or redis (all nodes on one Redis act as one broker)")
      ->envname("HERALD_ENGINE")
      ->check(CLI::IsMember({"memory", "redis"}))
      ->capture_default_str();
  app.add_option("--redis-url", c.redis_url,
                 "Redis of --engine redis: redis://[[user]:password@]host[:port][/db], "
                 "rediss://… for TLS, or a Redis Cluster: redis+cluster://host:port[,host:port…]")
      ->envname("HERALD_REDIS_URL")
      ->capture_default_str();
  app.add_option("--redis-tls-ca", c.redis_tls_ca,
                 "PEM CA certificates a rediss:// server's certificate must verify against "
                 "(empty: the system's CA store)")
      ->envname("HERALD_REDIS_TLS_CA");
  app.add_option("--redis-tls-cert", c.redis_tls_cert,
                 "PEM client certificate for a rediss:// server that asks for one "
                 "(with --redis-tls-key)")
      ->envname("HERALD_REDIS_TLS_CERT");
  app.add_option("--redis-tls-key", c.redis_tls_key, "PEM private key of --redis-tls-cert")
      ->envname("HERALD_REDIS_TLS_KEY");
  app.add_option("--redis-prefix", c.redis_prefix,
                 "Prefix of every Redis key and pub/sub channel (distinct per deployment)")
      ->envname("HERALD_REDIS_PREFIX")
      ->capture_default_str();
  app.add_option("--node-heartbeat-ms", c.node_heartbeat_ms,
                 "With --engine redis, how often each node refreshes its heartbeat; a node that "
                 "stops is dropped from the cluster 3 intervals later")
      ->envname("HERALD_NODE_HEARTBEAT_MS")
      ->check(CLI::Range(50, 60000))
      ->capture_default_str();
  app.add_option("--max-frame-bytes", l.max_frame_bytes, "Largest client frame (close 1009 above)")
      ->envname("HERALD_MAX_FRAME_BYTES")
      ->check(CLI::Range(size_t{256}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--max-json-depth", l.max_json_depth,
                 "Deepest nesting of arrays/objects in a client frame or API body "
                 "(INVALID_ARGUMENT above, before parsing)")
      ->envname("HERALD_MAX_JSON_DEPTH")
      ->check(CLI::Range(size_t{8}, size_t{48}))
      ->capture_default_str();
  app.add_option("--close-timeout-ms", l.close_timeout_ms,
                 "A connection Herald closes is reset if still open after this long "
                 "(peer not reading, or not answering the close frame)")
      ->envname("HERALD_CLOSE_TIMEOUT_MS")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();
  app.add_option("--control-timeout-ms", l.control_timeout_ms,
                 "How long a control call (ListConnections, Disconnect, SendToUser, ...) waits for "
                 "the other nodes' answers before answering with those that did")
      ->envname("HERALD_CONTROL_TIMEOUT_MS")
      ->check(CLI::Range(50u, 60000u))
      ->capture_default_str();
  app.add_option("--max-subscriptions", l.max_subscriptions_per_connection,
                 "Channels per connection")
      ->envname("HERALD_MAX_SUBSCRIPTIONS")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-channel-length", l.max_channel_length, "Longest channel name in bytes")
      ->envname("HERALD_MAX_CHANNEL_LENGTH")
      ->check(CLI::Range(size_t{16}, size_t{4096}))
      ->capture_default_str();
  app.add_option("--max-send-buffer-bytes", l.max_send_buffer_bytes,
                 "Bytes queued per connection before it is closed as a slow consumer (4008)")
      ->envname("HERALD_MAX_SEND_BUFFER_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 34))
      ->capture_default_str();
  app.add_option("--max-connections", l.max_connections, "Concurrent WebSocket connections")
      ->envname("HERALD_MAX_CONNECTIONS")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->capture_default_str();
  app.add_option(
         "--max-connections-per-ip", l.max_connections_per_ip,
         "Concurrent WebSocket connections from one client IP (HTTP 429 above; 0: no limit)")
      ->envname("HERALD_MAX_CONNECTIONS_PER_IP")
      ->check(CLI::Range(size_t{0}, size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-connections-per-user", l.max_connections_per_user,
                 "Concurrent connections of one authenticated user (HTTP 429 at the handshake, "
                 "close 4030 after connect; 0: no limit)")
      ->envname("HERALD_MAX_CONNECTIONS_PER_USER")
      ->check(CLI::Range(size_t{0}, size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-frame-rate", l.max_frame_rate,
                 "Client frames per second per connection (token bucket; RESOURCE_EXHAUSTED "
                 "error above; 0: no limit)")
      ->envname("HERALD_MAX_FRAME_RATE")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--frame-burst", l.frame_burst,
                 "Client frames one connection may send at once before --max-frame-rate applies")
      ->envname("HERALD_FRAME_BURST")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--max-rate-refusals", l.max_rate_refusals,
                 "Frames refused over --max-frame-rate (without a pause that refills the burst) "
                 "before the connection is closed with 4029")
      ->envname("HERALD_MAX_RATE_REFUSALS")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--api-rate", l.api_rate,
                 "HTTP/JSON API requests per second per API key, or per client IP without a key "
                 "(HTTP 429 above; 0: no limit)")
      ->envname("HERALD_API_RATE")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--api-burst", l.api_burst,
                 "HTTP/JSON API requests accepted at once before --api-rate applies")
      ->envname("HERALD_API_BURST")
      ->check(CLI::Range(1.0, 1e7))
      ->capture_default_str();
  app.add_option("--max-publication-bytes", l.max_publication_bytes,
                 "Largest publication data accepted from the control API")
      ->envname("HERALD_MAX_PUBLICATION_BYTES")
      ->check(CLI::Range(size_t{64}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--max-http-body-bytes", l.max_http_body_bytes,
                 "Largest HTTP request body on the plain port, any path (413 above)")
      ->envname("HERALD_MAX_HTTP_BODY_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--max-http-head-bytes", l.max_http_head_bytes,
                 "Largest HTTP request head, request line and headers (431 above)")
      ->envname("HERALD_MAX_HTTP_HEAD_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{65536}))
      ->capture_default_str();
  app.add_option("--http-idle-timeout-ms", l.http_idle_timeout_ms,
                 "Close a keep-alive HTTP API connection idle (or mid-request) this long")
      ->envname("HERALD_HTTP_IDLE_TIMEOUT_MS")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  app.add_option("--sse-replay-events", l.sse_replay_events,
                 "Events kept to resume GET /api/v1/events with Last-Event-ID")
      ->envname("HERALD_SSE_REPLAY_EVENTS")
      ->check(CLI::Range(size_t{0}, size_t{1000000}))
      ->capture_default_str();
  app.add_option("--sse-replay-bytes", l.sse_replay_bytes,
                 "Memory the events kept for GET /api/v1/events resumption may hold")
      ->envname("HERALD_SSE_REPLAY_BYTES")
      ->check(CLI::Range(size_t{64 * 1024}, size_t{1} << 32))
      ->capture_default_str();
  app.add_option("--sse-heartbeat-ms", l.sse_heartbeat_ms,
                 "Interval of comment heartbeats on GET /api/v1/events streams")
      ->envname("HERALD_SSE_HEARTBEAT_MS")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  app.add_option("--ping-interval-ms", l.ping_interval_ms,
                 "Client ping interval advertised in welcome; Herald pings a connection silent "
                 "this long")
      ->envname("HERALD_PING_INTERVAL_MS")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  CLI::Option* idle_opt =
      app.add_option("--idle-timeout-ms", l.idle_timeout_ms,
                     "Close a connection nothing arrived from for longer than this with 4010 "
                     "(0: never; default 2 x --ping-interval-ms + 10000)")
          ->envname("HERALD_IDLE_TIMEOUT_MS")
          ->check(CLI::Range(0u, 86400000u))
          ->capture_default_str();

  size_t history_size = l.history.size;
  double history_ttl_s = absl::ToDoubleSeconds(l.history.ttl);
  std::vector<std::string> history_prefixes;
  double idempotency_s = absl::ToDoubleSeconds(l.idempotency_window);
  double order_retention_s = absl::ToDoubleSeconds(l.order_retention);
  double grace_s = absl::ToDoubleSeconds(l.disconnect_grace);
  double ack_deadline_s = absl::ToDoubleSeconds(l.task_ack_deadline);
  double task_ttl_s = absl::ToDoubleSeconds(l.task_ttl);
  app.add_option("--history-size", history_size, "Publications kept per channel for recovery")
      ->envname("HERALD_HISTORY_SIZE")
      ->check(CLI::Range(size_t{0}, size_t{1000000}))
      ->capture_default_str();
  app.add_option("--history-ttl", history_ttl_s, "Seconds a publication is kept for recovery")
      ->envname("HERALD_HISTORY_TTL")
      ->check(CLI::Range(1.0, 30.0 * 86400))
      ->capture_default_str();
  app.add_option("--history-prefix", history_prefixes,
                 "Per-prefix history PREFIX=SIZE:TTL_SECONDS, e.g. 'store:=1000:3600' "
                 "(repeatable; longest matching prefix wins)")
      ->envname("HERALD_HISTORY_PREFIX")
      ->delimiter(',');
  app.add_option("--idempotency-window", idempotency_s,
                 "Seconds a Publish idempotency key is remembered")
      ->envname("HERALD_IDEMPOTENCY_WINDOW")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--order-retention", order_retention_s,
                 "Seconds a delivered/cancelled/rejected order stays in snapshots")
      ->envname("HERALD_ORDER_RETENTION")
      ->check(CLI::Range(0.0, 30.0 * 86400))
      ->capture_default_str();
  app.add_option("--disconnect-grace", grace_s,
                 "Seconds a user's DISCONNECT event waits for a reconnect before it is emitted")
      ->envname("HERALD_DISCONNECT_GRACE")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--max-queue-depth", l.max_queue_depth, "Tasks waiting per queue")
      ->envname("HERALD_MAX_QUEUE_DEPTH")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  app.add_option("--max-tasks-per-worker", l.max_tasks_per_worker,
                 "Tasks one worker connection holds at once")
      ->envname("HERALD_MAX_TASKS_PER_WORKER")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  app.add_option("--task-ack-deadline", ack_deadline_s, "Default seconds to ack a task")
      ->envname("HERALD_TASK_ACK_DEADLINE")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--task-ttl", task_ttl_s, "Default seconds before an unacked task expires")
      ->envname("HERALD_TASK_TTL")
      ->check(CLI::Range(0.1, 30.0 * 86400))
      ->capture_default_str();
  app.add_option("--watcher-buffer", l.watcher_buffer, "Events buffered per WatchEvents stream")
      ->envname("HERALD_WATCHER_BUFFER")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  CLI::Option* soft_opt =
      app.add_option("--soft-send-buffer-bytes", l.soft_send_buffer_bytes,
                     "Queued bytes past which order updates to a connection are conflated")
          ->envname("HERALD_SOFT_SEND_BUFFER_BYTES")
          ->check(CLI::Range(size_t{1024}, size_t{1} << 34))
          ->capture_default_str();

  // Webhooks: proxies to HTTP backends and notifications (docs/api.md "Webhooks").
  std::string proxy_connect_url;
  std::vector<std::string> proxy_subscribe_urls;
  std::string proxy_message_url;
  std::vector<std::string> proxy_rpc_urls;
  std::vector<std::string> webhook_urls;
  std::string webhook_events = "disconnect,join,leave,online,offline";
  std::string proxy_headers = absl::StrJoin(l.proxy_headers, ",");
  app.add_option("--proxy-connect-url", proxy_connect_url,
                 "Backend URL that accepts or refuses each connection's `connect` frame (and names "
                 "its user); clients must then connect (empty: none)")
      ->envname("HERALD_PROXY_CONNECT_URL");
  app.add_option("--proxy-subscribe-url", proxy_subscribe_urls,
                 "Backend URL that allows or refuses client subscribes: [PREFIX=]URL, per channel "
                 "prefix (repeatable; longest prefix wins; 'PREFIX=' alone: not proxied)")
      ->envname("HERALD_PROXY_SUBSCRIBE_URL")
      ->delimiter(',');
  app.add_option("--proxy-message-url", proxy_message_url,
                 "Backend URL that client `message` frames are posted to; `sent` once it answers "
                 "2xx (empty: none)")
      ->envname("HERALD_PROXY_MESSAGE_URL");
  app.add_option("--proxy-rpc-url", proxy_rpc_urls,
                 "Backend URL that client `rpc` frames are posted to: [PREFIX=]URL, per method "
                 "prefix (repeatable; longest prefix wins)")
      ->envname("HERALD_PROXY_RPC_URL")
      ->delimiter(',');
  app.add_option("--webhook-url", webhook_urls,
                 "Backend URL notified of --webhook-events, retried on failure: [PREFIX=]URL "
                 "(repeatable; a PREFIX limits join/leave to those channels)")
      ->envname("HERALD_WEBHOOK_URL")
      ->delimiter(',');
  app.add_option("--webhook-events", webhook_events,
                 "Comma-separated notifications sent to --webhook-url: disconnect, join, leave "
                 "(join/leave: channels of --presence-prefixes), online, offline (a user's first "
                 "connection opened / last one closed, after --disconnect-grace)")
      ->envname("HERALD_WEBHOOK_EVENTS")
      ->capture_default_str();
  app.add_option("--proxy-secret", c.proxy_secret,
                 "Key of the HMAC-SHA256 signature (X-Herald-Signature) of every request to a "
                 "backend; required with any proxy or webhook URL")
      ->envname("HERALD_PROXY_SECRET");
  app.add_option("--proxy-timeout-ms", l.proxy_timeout_ms,
                 "How long a backend has to answer a request (DEADLINE_EXCEEDED to the client "
                 "above; a notification is retried)")
      ->envname("HERALD_PROXY_TIMEOUT_MS")
      ->check(CLI::Range(10u, 600000u))
      ->capture_default_str();
  app.add_option("--proxy-max-reply-bytes", l.proxy_max_reply_bytes,
                 "Largest reply body read from a backend (INTERNAL to the client above)")
      ->envname("HERALD_PROXY_MAX_REPLY_BYTES")
      ->check(CLI::Range(size_t{256}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--proxy-max-pending", l.proxy_max_pending,
                 "Connect, subscribe, message and rpc requests waiting for backends at once "
                 "(UNAVAILABLE to the client above)")
      ->envname("HERALD_PROXY_MAX_PENDING")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  app.add_option("--proxy-headers", proxy_headers,
                 "Comma-separated WebSocket handshake headers sent to --proxy-connect-url")
      ->envname("HERALD_PROXY_HEADERS")
      ->capture_default_str();
  app.add_option("--webhook-queue-size", l.webhook_queue_size,
                 "Notifications queued (waiting, in flight, or waiting for a retry); more are "
                 "dropped and counted")
      ->envname("HERALD_WEBHOOK_QUEUE_SIZE")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  app.add_option("--webhook-attempts", l.webhook_attempts,
                 "Attempts per notification (1: no retry) before it is dropped and counted")
      ->envname("HERALD_WEBHOOK_ATTEMPTS")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  app.add_option("--webhook-backoff-ms", l.webhook_backoff_ms,
                 "Wait before the first retry of a notification, doubled for each next one "
                 "(at most 30 s)")
      ->envname("HERALD_WEBHOOK_BACKOFF_MS")
      ->check(CLI::Range(1u, 600000u))
      ->capture_default_str();
  app.add_option("--webhook-concurrency", l.webhook_concurrency,
                 "Notifications in flight at once (they are not ordered)")
      ->envname("HERALD_WEBHOOK_CONCURRENCY")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    std::cerr << "herald: " << e.what() << std::endl;  // names the file, line and key
    out.exit_code = 2;
    return out;
  } catch (const CLI::ExtrasError& e) {
    // The first unknown --flag, with the flag it most likely misspells.
    std::vector<std::string> flags;
    for (const CLI::Option* opt : app.get_options()) {
      if (!opt->get_lnames().empty()) flags.push_back(opt->get_lnames()[0]);
    }
    std::string message = e.what();
    for (const std::string& arg : app.remaining()) {
      if (!absl::StartsWith(arg, "--")) continue;
      const std::string flag = arg.substr(0, arg.find('='));
      const std::string closest = ClosestName(flag.substr(2), flags);
      message =
          absl::StrCat("unknown flag '", flag, "'",
                       closest.empty() ? "" : absl::StrCat("; did you mean '--", closest, "'?"));
      break;
    }
    std::cerr << "herald: " << message << " (see herald --help)" << std::endl;
    out.exit_code = 2;
    return out;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      out.exit_code = app.exit(e);  // --help
    } else {
      std::cerr << "herald: " << e.what() << " (see herald --help)" << std::endl;
      out.exit_code = 2;
    }
    return out;
  }
  if (absl::Status st = CheckEnvironment(app); !st.ok()) {
    std::cerr << "herald: " << st.message() << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (!config_from_env.empty() && config_opt->count() == 0) {
    // CLI11 skips a missing default config file; a file named by HERALD_CONFIG must exist.
    std::cerr << "herald: HERALD_CONFIG: cannot read config file '" << config_from_env << "'"
              << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (absl::Status st = SplitHostPort("--ws-listen", ws_listen, &c.ws_host, &c.ws_port); !st.ok()) {
    std::cerr << "herald: " << st.message() << std::endl;
    out.exit_code = 2;
    return out;
  }
  std::string ignored_host, ignored_port;
  if (absl::Status st = SplitHostPort("--grpc-listen", c.grpc_listen, &ignored_host, &ignored_port);
      !st.ok()) {
    std::cerr << "herald: " << st.message() << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (absl::StatusOr<engine::RedisOptions> redis = engine::ParseRedisUrl(c.redis_url);
      !redis.ok()) {
    std::cerr << "herald: --redis-url: " << redis.status().message() << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (c.redis_tls_cert.empty() != c.redis_tls_key.empty()) {
    std::cerr << "herald: --redis-tls-cert and --redis-tls-key go together" << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (c.redis_prefix.empty()) {
    std::cerr << "herald: --redis-prefix must not be empty" << std::endl;
    out.exit_code = 2;
    return out;
  }
  l.history = {history_size, absl::Seconds(history_ttl_s)};
  l.idempotency_window = absl::Seconds(idempotency_s);
  l.order_retention = absl::Seconds(order_retention_s);
  l.disconnect_grace = absl::Seconds(grace_s);
  l.task_ack_deadline = absl::Seconds(ack_deadline_s);
  l.task_ttl = absl::Seconds(task_ttl_s);
  for (std::vector<std::string>* list :
       {&proxy_subscribe_urls, &proxy_rpc_urls, &webhook_urls, &history_prefixes}) {
    // `key = ""` or `key = []` in a file (StrictConfigFile reads [] as one empty value): none.
    list->erase(std::remove(list->begin(), list->end(), ""), list->end());
  }
  for (const std::string& rule : history_prefixes) {
    // PREFIX=SIZE:TTL
    std::vector<std::string> kv = absl::StrSplit(rule, absl::MaxSplits('=', 1));
    std::vector<std::string> st =
        kv.size() == 2 ? absl::StrSplit(kv[1], ':') : std::vector<std::string>();
    size_t size = 0;
    double ttl = 0;
    if (kv.size() != 2 || kv[0].empty() || st.size() != 2 || !absl::SimpleAtoi(st[0], &size) ||
        !absl::SimpleAtod(st[1], &ttl) || ttl <= 0) {
      std::cerr << "herald: --history-prefix: expected PREFIX=SIZE:TTL_SECONDS, got '" << rule
                << "'" << std::endl;
      out.exit_code = 2;
      return out;
    }
    l.history_by_prefix.push_back({kv[0], core::HistoryPolicy{size, absl::Seconds(ttl)}});
  }
  if (l.soft_send_buffer_bytes > l.max_send_buffer_bytes && soft_opt->count() == 0) {
    l.soft_send_buffer_bytes = l.max_send_buffer_bytes / 2;  // the default follows a small max
  }
  if (l.soft_send_buffer_bytes > l.max_send_buffer_bytes) {
    std::cerr << "herald: --soft-send-buffer-bytes must not exceed --max-send-buffer-bytes"
              << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (idle_opt->count() == 0) {
    l.idle_timeout_ms = 2 * l.ping_interval_ms + 10000;  // the default follows the ping interval
  }
  if (l.idle_timeout_ms != 0 && l.idle_timeout_ms <= l.ping_interval_ms) {
    std::cerr << "herald: --idle-timeout-ms (" << l.idle_timeout_ms
              << ") must exceed --ping-interval-ms (" << l.ping_interval_ms
              << "), or be 0: a live client needs time to answer the ping" << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (!rs256_key_file.empty()) {
    std::ifstream in(rs256_key_file);
    std::stringstream pem;
    if (in) pem << in.rdbuf();
    if (!in || pem.str().empty()) {
      std::cerr << "herald: --jwt-rs256-public-key: cannot read '" << rs256_key_file << "'"
                << std::endl;
      out.exit_code = 2;
      return out;
    }
    c.jwt.rs256_public_key_pem = pem.str();
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    std::cerr << "herald: --tls-cert and --tls-key go together (got only "
              << (c.tls_cert.empty() ? "--tls-key" : "--tls-cert") << ")" << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    std::cerr << "herald: --tls-client-ca needs --tls-cert and --tls-key" << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (!c.static_dir.empty()) {
    struct stat st;
    const bool is_dir = stat(c.static_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir) {
      std::cerr << "herald: --static-dir: '" << c.static_dir
                << "' is not a directory (pass --static-dir '' to serve no files)" << std::endl;
      out.exit_code = 2;
      return out;
    }
  }
  for (absl::string_view o : absl::StrSplit(origins, ',', absl::SkipWhitespace())) {
    l.allowed_origins.emplace_back(absl::StripAsciiWhitespace(o));
  }
  for (auto [list, out] : {std::pair<const std::string*, std::vector<std::string>*>{
                               &presence_prefixes, &l.presence_prefixes},
                           {&join_leave_prefixes, &l.join_leave_prefixes},
                           {&client_publish_prefixes, &l.client_publish_prefixes}}) {
    for (absl::string_view p : absl::StrSplit(*list, ',', absl::SkipWhitespace())) {
      out->emplace_back(absl::StripAsciiWhitespace(p));
    }
  }
  if (absl::Status st =
          ParseProxyRoutes(proxy_connect_url, proxy_subscribe_urls, proxy_message_url,
                           proxy_rpc_urls, webhook_urls, webhook_events, &c.proxy_routes);
      !st.ok()) {
    std::cerr << "herald: " << st.message() << std::endl;
    out.exit_code = 2;
    return out;
  }
  if (!c.proxy_routes.empty() && c.proxy_secret.empty()) {
    std::cerr << "herald: --proxy-secret is required with --proxy-*-url and --webhook-url: every "
                 "request to a backend is signed with it"
              << std::endl;
    out.exit_code = 2;
    return out;
  }
  l.proxy_headers.clear();
  for (absl::string_view h : absl::StrSplit(proxy_headers, ',', absl::SkipWhitespace())) {
    l.proxy_headers.emplace_back(absl::StripAsciiWhitespace(h));
  }
  if (c.static_dir.empty() && static_dir_opt->count() == 0 && !print_config) {
    // Nothing found where an installed or a freshly built herald keeps them: still serve the
    // API, and say where we looked (once the settings are known to be valid: an error is the
    // one line of a refused start).
    std::cerr << "herald: no demo pages found (looked for herald.js in "
              << absl::StrJoin(static_searched, ", ")
              << "): serving no static files; pass --static-dir DIR" << std::endl;
  }
  if (print_config) {
    // Effective values, after the defaults that follow other settings (soft send buffer).
    const std::map<std::string, std::string> values = {
        {"ws-listen", Quote(ws_listen)},
        {"grpc-listen", Quote(c.grpc_listen)},
        {"api-key", Secret(c.api_key)},
        {"jwt-hs256-secret", Secret(c.jwt.hs256_secret)},
        {"jwt-rs256-public-key", Quote(rs256_key_file)},  // a file name; the key is public
        {"auth-timeout-ms", Number(l.auth_timeout_ms)},
        {"static-dir", Quote(c.static_dir)},
        {"tls-cert", Quote(c.tls_cert)},
        {"tls-key", Quote(c.tls_key)},  // a file name: the key stays in the file
        {"tls-client-ca", Quote(c.tls_client_ca)},
        {"allowed-origins", Quote(absl::StrJoin(l.allowed_origins, ","))},
        {"presence-prefixes", Quote(absl::StrJoin(l.presence_prefixes, ","))},
        {"join-leave-prefixes", Quote(absl::StrJoin(l.join_leave_prefixes, ","))},
        {"client-publish-prefixes", Quote(absl::StrJoin(l.client_publish_prefixes, ","))},
        {"threads", Number(c.threads)},
        {"node", Quote(c.node)},
        {"log-level", Quote(c.log_level)},
        {"drain-timeout", Decimal(c.drain_timeout_s)},
        {"engine", Quote(c.engine)},
        {"redis-url", Quote(RedactUrl(c.redis_url))},
        {"redis-prefix", Quote(c.redis_prefix)},
        {"redis-tls-ca", Quote(c.redis_tls_ca)},
        {"redis-tls-cert", Quote(c.redis_tls_cert)},
        {"redis-tls-key", Quote(c.redis_tls_key)},  // a file name: the key stays in the file
        {"node-heartbeat-ms", Number(c.node_heartbeat_ms)},
        {"max-frame-bytes", Number(l.max_frame_bytes)},
        {"max-json-depth", Number(l.max_json_depth)},
        {"close-timeout-ms", Number(l.close_timeout_ms)},
        {"control-timeout-ms", Number(l.control_timeout_ms)},
        {"max-subscriptions", Number(l.max_subscriptions_per_connection)},
        {"max-channel-length", Number(l.max_channel_length)},
        {"max-send-buffer-bytes", Number(l.max_send_buffer_bytes)},
        {"max-connections", Number(l.max_connections)},
        {"max-connections-per-ip", Number(l.max_connections_per_ip)},
        {"max-connections-per-user", Number(l.max_connections_per_user)},
        {"max-frame-rate", Decimal(l.max_frame_rate)},
        {"frame-burst", Decimal(l.frame_burst)},
        {"max-rate-refusals", Number(l.max_rate_refusals)},
        {"api-rate", Decimal(l.api_rate)},
        {"api-burst", Decimal(l.api_burst)},
        {"max-publication-bytes", Number(l.max_publication_bytes)},
        {"max-http-body-bytes", Number(l.max_http_body_bytes)},
        {"max-http-head-bytes", Number(l.max_http_head_bytes)},
        {"http-idle-timeout-ms", Number(l.http_idle_timeout_ms)},
        {"sse-replay-events", Number(l.sse_replay_events)},
        {"sse-replay-bytes", Number(l.sse_replay_bytes)},
        {"sse-heartbeat-ms", Number(l.sse_heartbeat_ms)},
        {"ping-interval-ms", Number(l.ping_interval_ms)},
        {"idle-timeout-ms", Number(l.idle_timeout_ms)},
        {"history-size", Number(history_size)},
        {"history-ttl", Decimal(history_ttl_s)},
        {"history-prefix", QuoteList(history_prefixes)},
        {"idempotency-window", Decimal(idempotency_s)},
        {"order-retention", Decimal(order_retention_s)},
        {"disconnect-grace", Decimal(grace_s)},
        {"max-queue-depth", Number(l.max_queue_depth)},
        {"max-tasks-per-worker", Number(l.max_tasks_per_worker)},
        {"task-ack-deadline", Decimal(ack_deadline_s)},
        {"task-ttl", Decimal(task_ttl_s)},
        {"watcher-buffer", Number(l.watcher_buffer)},
        {"soft-send-buffer-bytes", Number(l.soft_send_buffer_bytes)},
        {"proxy-connect-url", Quote(proxy_connect_url)},
        {"proxy-subscribe-url", QuoteList(proxy_subscribe_urls)},
        {"proxy-message-url", Quote(proxy_message_url)},
        {"proxy-rpc-url", QuoteList(proxy_rpc_urls)},
        {"webhook-url", QuoteList(webhook_urls)},
        {"webhook-events", Quote(webhook_events)},
        {"proxy-secret", Secret(c.proxy_secret)},
        {"proxy-timeout-ms", Number(l.proxy_timeout_ms)},
        {"proxy-max-reply-bytes", Number(l.proxy_max_reply_bytes)},
        {"proxy-max-pending", Number(l.proxy_max_pending)},
        {"proxy-headers", Quote(absl::StrJoin(l.proxy_headers, ","))},
        {"webhook-queue-size", Number(l.webhook_queue_size)},
        {"webhook-attempts", Number(l.webhook_attempts)},
        {"webhook-backoff-ms", Number(l.webhook_backoff_ms)},
        {"webhook-concurrency", Number(l.webhook_concurrency)},
    };
    const std::set<const CLI::Option*> flags(app.parse_order().begin(), app.parse_order().end());
    std::string text;
    for (const std::string& key : StrictConfigFile::ConfigurableKeys(app)) {
      const CLI::Option* opt = app.get_option("--" + key);
      auto value = values.find(key);
      if (value == values.end()) {
        std::cerr << "herald: internal error: --print-config has no value for '" << key << "'"
                  << std::endl;
        out.exit_code = 70;
        return out;
      }
      // The precedence of CLI11: a flag, then the file, then the environment.
      const char* source = flags.count(opt) > 0                            ? "flag"
                           : config_file->options_in_file().count(opt) > 0 ? "file"
                           : opt->count() > 0                              ? "env"
                                                                           : "default";
      absl::StrAppend(&text, key, " = ", value->second, "  # ", source, "\n");
    }
    std::cout << text << std::flush;
    out.exit_code = 0;
    return out;
  }
  out.run = true;
  return out;
}

}  // namespace herald
