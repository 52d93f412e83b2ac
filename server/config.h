#ifndef HERALD_SERVER_CONFIG_H_
#define HERALD_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/auth/jwt.h"
#include "server/core/limits.h"
#include "server/proxy/route.h"

namespace herald {

// Everything `herald` is configured with (README "Configuration"). Plain value type.
struct ServerConfig {
  std::string ws_host = "127.0.0.1";
  std::string ws_port = "8080";
  std::string grpc_listen = "127.0.0.1:50051";
  std::string api_key;
  int threads = 0;   // 0 = one per core
  std::string node;  // empty = random
  std::string log_level = "info";
  double drain_timeout_s = 10;
  // Where the node's shared state lives: "memory" (this process only: one node) or "redis"
  // (every node on that Redis acts as one broker; docs/scaling.md).
  std::string engine = "memory";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string redis_prefix = "herald";
  // rediss:// (TLS): the CA the Redis server's certificate must verify against (empty: the
  // system's store) and, when the server asks for one, this client certificate and key (PEM).
  std::string redis_tls_ca;
  std::string redis_tls_cert;
  std::string redis_tls_key;
  // With --engine redis, each node refreshes its heartbeat this often; a node that stops is gone
  // from the cluster (surveys, presence) at most 3 intervals later (docs/scaling.md).
  int node_heartbeat_ms = 1000;
  // Keys for client tokens (JWT); both empty = development mode, anonymous clients.
  auth::JwtKeys jwt;
  // Directory served at `/` over HTTP (demo pages, herald.js); empty = none. ParseServerConfig
  // defaults it to the source tree's client/js.
  std::string static_dir;
  // TLS (README "TLS"): PEM files; with a certificate and key, the WebSocket/HTTP port and the
  // gRPC port speak only TLS. A client CA makes gRPC require and verify client certificates.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Webhooks (docs/api.md "Webhooks"): where each event goes (--proxy-*-url, --webhook-url) and
  // the key every request is signed with. No routes: no proxy.
  std::vector<proxy::Route> proxy_routes;
  std::string proxy_secret;
  core::Limits limits;
};

// Splits "host:port" / "[v6]:port" and checks the port; the error names `field`.
absl::Status SplitHostPort(const std::string& field, const std::string& value, std::string* host,
                           std::string* port);

// Outcome of reading the command line: a config to run, or an exit code (0 after --help or
// --print-config; 2 after printing one clear error line to stderr).
struct ParsedConfig {
  bool run = false;
  int exit_code = 0;
  ServerConfig config;
};
// Reads flags, then the --config file (or HERALD_CONFIG; TOML subset: `key = value` per line,
// keys named like the long flags), then HERALD_* environment variables. Strict: an unknown key,
// variable or flag is an error naming the closest valid one. --print-config prints the effective
// settings with their sources, secrets masked, to stdout.
ParsedConfig ParseServerConfig(int argc, char** argv);

}  // namespace herald

#endif  // HERALD_SERVER_CONFIG_H_
