#ifndef HERALD_TESTS_SUPPORT_REDIS_SERVER_H_
#define HERALD_TESTS_SUPPORT_REDIS_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace herald::testing {

// Runs a real `redis-server` (Debian's package; $REDIS_SERVER overrides the path) on a free
// loopback port, without persistence (--save "" --appendonly no), in a temporary directory it
// removes at the end. The server dies with the test process (PR_SET_PDEATHSIG). Not thread-safe.
class RedisServer {
 public:
  // PEM files for a TLS port beside the plain one (rediss://, tls_url()).
  struct Tls {
    std::string cert_file, key_file, ca_file;
  };

  // Starts the server (on other free ports, up to five times, when one was taken before
  // redis-server bound it); ok() tells whether it was ready within 10 s. With `tls`, it also
  // listens for TLS on tls_port() (client certificates optional).
  RedisServer();
  explicit RedisServer(Tls tls);
  // With more redis-server arguments (e.g. --cluster-enabled yes: RedisClusterServers; then the
  // cluster bus gets a free port of its own, --cluster-port, as the default port + 10000 may be
  // taken or above 65535).
  RedisServer(Tls tls, std::vector<std::string> extra_args);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  uint16_t tls_port() const { return tls_port_; }
  std::string tls_url() const { return "rediss://localhost:" + std::to_string(tls_port_) + "/0"; }
  // Stops the server (SIGTERM, then SIGKILL) and waits for it; its data is gone (no persistence).
  void Stop();
  // Starts it again on the same port; true when its log says it is ready and it answers PING.
  bool Start();
  // Sends one inline command ("CLIENT KILL TYPE pubsub") on a new connection; its reply's first
  // line, or "" when there was none.
  std::string Command(const std::string& inline_command) const;
  // Everything the server logged (for failure messages).
  std::string Log() const;
  // Its temporary directory (removed with it).
  const std::string& dir() const { return dir_; }

 private:
  uint16_t port_ = 0;
  uint16_t tls_port_ = 0;
  Tls tls_;
  std::vector<std::string> extra_args_;
  bool cluster_ = false;
  uint16_t cluster_port_ = 0;
  pid_t pid_ = -1;
  std::string dir_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_REDIS_SERVER_H_
