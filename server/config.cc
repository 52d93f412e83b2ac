#include "server/config.h"

#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace herald {

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
  c.static_dir = HERALD_DEFAULT_STATIC_DIR;

  CLI::App app{
      "herald: real-time broker. Browsers connect over WebSocket (ws://HOST:PORT/ws); "
      "backends drive it over gRPC (service herald.v1.Broker)."};
  app.set_config("--config", "", "Config file (TOML: key = value, keys named like the flags)")
      ->envname("HERALD_CONFIG");
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
  app.add_option("--static-dir", c.static_dir,
                 "Directory served at / over HTTP: demo pages and herald.js (empty: none)")
      ->envname("HERALD_STATIC_DIR")
      ->capture_default_str();
  app.add_option("--allowed-origins", origins,
                 "Comma-separated Origins allowed to open WebSockets (empty: any)")
      ->envname("HERALD_ALLOWED_ORIGINS");
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
  app.add_option("--max-publication-bytes", l.max_publication_bytes,
                 "Largest publication data accepted from the control API")
      ->envname("HERALD_MAX_PUBLICATION_BYTES")
      ->check(CLI::Range(size_t{64}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--max-http-body-bytes", l.max_http_body_bytes,
                 "Largest HTTP request body (HTTP/JSON API under /api/v1/; 413 above)")
      ->envname("HERALD_MAX_HTTP_BODY_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--ping-interval-ms", l.ping_interval_ms, "Client ping interval advertised")
      ->envname("HERALD_PING_INTERVAL_MS")
      ->check(CLI::Range(1000u, 3600000u))
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      out.exit_code = app.exit(e);  // --help
    } else {
      std::cerr << "herald: " << e.what() << " (see herald --help)" << std::endl;
      out.exit_code = 2;
    }
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
  l.history = {history_size, absl::Seconds(history_ttl_s)};
  l.idempotency_window = absl::Seconds(idempotency_s);
  l.order_retention = absl::Seconds(order_retention_s);
  l.disconnect_grace = absl::Seconds(grace_s);
  l.task_ack_deadline = absl::Seconds(ack_deadline_s);
  l.task_ttl = absl::Seconds(task_ttl_s);
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
  if (!c.static_dir.empty()) {
    struct stat st;
    const bool is_dir = stat(c.static_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir && c.static_dir == HERALD_DEFAULT_STATIC_DIR) {
      // The compiled-in source tree is gone (an installed binary): run without the demo pages.
      std::cerr << "herald: the default --static-dir '" << c.static_dir
                << "' does not exist: serving no static files" << std::endl;
      c.static_dir.clear();
    } else if (!is_dir) {
      std::cerr << "herald: --static-dir: '" << c.static_dir
                << "' is not a directory (pass --static-dir '' to serve no files)" << std::endl;
      out.exit_code = 2;
      return out;
    }
  }
  for (absl::string_view o : absl::StrSplit(origins, ',', absl::SkipWhitespace())) {
    l.allowed_origins.emplace_back(absl::StripAsciiWhitespace(o));
  }
  out.run = true;
  return out;
}

}  // namespace herald
