#include "tests/support/herald_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace herald::testing {
namespace {

std::string TempPath(const std::string& stem) {
  static int counter = 0;
  const char* dir = std::getenv("TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", stem, "-", getpid(), "-", ++counter);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<int> WaitExit(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return std::nullopt;
    }
    if (r < 0) return std::nullopt;
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return std::nullopt;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// Spawns argv with stdout to a pipe (returned in *out_fd) and stderr to `err_path`.
pid_t Spawn(const std::vector<std::string>& argv, int* out_fd, const std::string& out_path,
            const std::string& err_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int pipe_fds[2] = {-1, -1};
  if (out_fd != nullptr) {
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out_fd != nullptr) {
    close(pipe_fds[1]);
    *out_fd = pipe_fds[0];
  }
  return rc == 0 ? pid : -1;
}

}  // namespace

// HERALD_BIN, when set, names the herald binary to test instead of this build's: CI runs the
// WebSocket integration tests against a ThreadSanitizer build of herald (scripts/test.sh).
std::string HeraldBinary() {
  const char* bin = std::getenv("HERALD_BIN");
  return bin != nullptr && *bin != '\0' ? bin : HERALD_BIN;
}
std::string HeraldctlBinary() { return HERALDCTL_BIN; }

bool OnRedisEngine() {
  const char* url = std::getenv("TEST_REDIS_URL");
  return url != nullptr && *url != '\0';
}

HeraldProcess::HeraldProcess(std::vector<std::string> args) {
  std::vector<std::string> argv = {HeraldBinary(),
                                   "--ws-listen",
                                   "127.0.0.1:0",
                                   "--grpc-listen",
                                   "127.0.0.1:0",
                                   "--threads",
                                   "2",
                                   "--drain-timeout",
                                   "5"};
  // A test's own --threads replaces the default.
  if (std::find(args.begin(), args.end(), "--threads") != args.end()) {
    argv.erase(argv.begin() + 5, argv.begin() + 7);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  // TEST_REDIS_URL runs the suite on the Redis engine: every herald gets its own key
  // prefix (unless the test chose an engine itself), so it starts as empty as a memory engine.
  const char* redis_url = std::getenv("TEST_REDIS_URL");
  if (redis_url != nullptr && *redis_url != '\0' &&
      std::find(args.begin(), args.end(), "--engine") == args.end()) {
    static int started = 0;
    argv.insert(argv.end(), {"--engine", "redis", "--redis-url", redis_url, "--redis-prefix",
                             absl::StrCat("test-", getpid(), "-", ++started, "-",
                                          absl::ToUnixNanos(absl::Now()))});
  }
  stderr_path_ = TempPath("herald-stderr");
  int fd = -1;
  pid_ = Spawn(argv, &fd, "", stderr_path_);
  if (pid_ <= 0) {
    ADD_FAILURE() << "cannot start " << argv[0];
    return;
  }
  std::string buffer;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((ws_address_.empty() || grpc_address_.empty()) && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char chunk[512];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) break;  // herald exited
    buffer.append(chunk, n);
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      absl::string_view rest = line;
      if (absl::ConsumePrefix(&rest, "ws listening on ")) ws_address_ = std::string(rest);
      rest = line;
      if (absl::ConsumePrefix(&rest, "grpc listening on ")) grpc_address_ = std::string(rest);
    }
  }
  close(fd);
  if (!ok()) ADD_FAILURE() << "herald did not start; stderr:\n" << Stderr();
}

HeraldProcess::~HeraldProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

std::shared_ptr<grpc::Channel> HeraldProcess::Channel() const {
  return grpc::CreateChannel(grpc_address_, grpc::InsecureChannelCredentials());
}

std::unique_ptr<v1::Broker::Stub> HeraldProcess::Stub() const {
  return v1::Broker::NewStub(Channel());
}

std::optional<int> HeraldProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, signal);
  std::optional<int> code = WaitExit(pid_, timeout);
  pid_ = -1;
  return code;
}

std::string HeraldProcess::Stderr() const { return ReadAll(stderr_path_); }

absl::Duration HeraldProcess::CpuTime() const {
  // /proc/PID/stat: "pid (comm) state ..."; utime and stime are fields 14 and 15, counted after
  // the ')' that ends comm (which may hold spaces).
  std::ifstream in(absl::StrCat("/proc/", pid_, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;
  long long utime = 0, stime = 0;
  fields >> utime >> stime;
  return absl::Seconds(static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK));
}

bool HeraldProcess::HoldsSocketTo(int peer_port) const {
  if (pid_ <= 0) return false;
  // The inodes of the sockets to that peer, from /proc/PID/net/tcp: "sl local rem st ... inode",
  // addresses as hex "0100007F:1F90" (IPv4 127.0.0.1, the tests' loopback).
  std::vector<std::string> inodes;
  std::ifstream table(absl::StrCat("/proc/", pid_, "/net/tcp"));
  const std::string remote = absl::StrCat(
      "0100007F:", absl::AsciiStrToUpper(absl::StrCat(absl::Hex(peer_port, absl::kZeroPad4))));
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string sl, local, rem, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> sl >> local >> rem >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    if (rem == remote && inode != "0") inodes.push_back(absl::StrCat("socket:[", inode, "]"));
  }
  std::error_code ec;
  for (std::filesystem::directory_iterator it(absl::StrCat("/proc/", pid_, "/fd"), ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(it->path(), link_ec).string();
    if (!link_ec && absl::c_linear_search(inodes, target)) return true;
  }
  return false;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult result;
  std::string out_path = TempPath("cmd-out"), err_path = TempPath("cmd-err");
  pid_t pid = Spawn(argv, nullptr, out_path, err_path);
  if (pid <= 0) {
    result.err = "cannot spawn " + argv[0];
    return result;
  }
  std::optional<int> code = WaitExit(pid, timeout);
  result.exit_code = code.value_or(-1);
  result.out = ReadAll(out_path);
  result.err = ReadAll(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return result;
}

}  // namespace herald::testing
