#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/background_process.h"

namespace herald::testing {
namespace {

// Sends one inline command and returns the first line of the reply.
std::string Send(uint16_t port, const std::string& command) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string line = command + "\r\n";
    char buf[256] = {};
    if (write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      const ssize_t n = read(fd, buf, sizeof(buf) - 1);
      if (n > 0) reply.assign(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

// One blocking PING; true on +PONG.
bool Ping(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const char ping[] = "PING\r\n";
    char buf[16] = {};
    ok = write(fd, ping, sizeof(ping) - 1) == sizeof(ping) - 1 && read(fd, buf, 7) > 0 &&
         std::strncmp(buf, "+PONG", 5) == 0;
  }
  close(fd);
  return ok;
}

}  // namespace

RedisServer::RedisServer() : RedisServer(Tls{}) {}

RedisServer::RedisServer(Tls tls) : RedisServer(std::move(tls), {}) {}

RedisServer::RedisServer(Tls tls, std::vector<std::string> extra_args)
    : tls_(std::move(tls)),
      extra_args_(std::move(extra_args)),
      cluster_(std::find(extra_args_.begin(), extra_args_.end(), "--cluster-enabled") !=
               extra_args_.end()) {
  char tmpl[] = "/tmp/herald-redis-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return;
  dir_ = tmpl;
  // A port found free may be taken by another process before redis-server binds it: then the
  // server exits at once and is started again on other ports.
  for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
    port_ = static_cast<uint16_t>(FreePort());
    if (!tls_.cert_file.empty()) tls_port_ = static_cast<uint16_t>(FreePort());
    if (cluster_) cluster_port_ = static_cast<uint16_t>(FreePort());
    Start();
  }
}

RedisServer::~RedisServer() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool RedisServer::Start() {
  if (pid_ > 0 || port_ == 0) return pid_ > 0;
  const char* env = std::getenv("REDIS_SERVER");
  const std::string binary = env != nullptr ? env : "redis-server";
  const std::string port = std::to_string(port_);
  const std::string log = dir_ + "/redis.log";
  std::vector<std::string> args = {binary, "--port",       port, "--bind", "127.0.0.1", "--save",
                                   "",     "--appendonly", "no", "--dir",  dir_,        "--logfile",
                                   log,    "--daemonize",  "no"};
  if (tls_port_ != 0) {
    for (const std::string& a :
         {std::string("--tls-port"), std::to_string(tls_port_), std::string("--tls-cert-file"),
          tls_.cert_file, std::string("--tls-key-file"), tls_.key_file,
          std::string("--tls-ca-cert-file"), tls_.ca_file, std::string("--tls-auth-clients"),
          std::string("optional")}) {
      args.push_back(a);
    }
  }
  if (cluster_port_ != 0) {
    args.push_back("--cluster-port");
    args.push_back(std::to_string(cluster_port_));
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  const size_t log_start = Log().size();  // a restart appends to the same log
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s: %s (install redis-server: scripts/deps.sh)\n", argv[0],
                 std::strerror(errno));
    _exit(127);
  }
  if (pid < 0) return false;
  pid_ = pid;
  // Ready once its own log (in its own directory) says so and it answers: a PING alone might
  // be answered by another test's server that took the port.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (Log().find("Ready to accept connections", log_start) != std::string::npos && Ping(port_)) {
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited (a port in use)
      pid_ = -1;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::fprintf(stderr, "redis-server on port %u did not start:\n%s\n", port_, Log().c_str());
  Stop();
  return false;
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
}

std::string RedisServer::Command(const std::string& inline_command) const {
  return Send(port_, inline_command);
}

std::string RedisServer::Log() const {
  std::ifstream in(dir_ + "/redis.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace herald::testing
