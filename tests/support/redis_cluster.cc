#include "tests/support/redis_cluster.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald::testing {
namespace {

std::string Run(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

RedisClusterServers::RedisClusterServers() {
  for (int i = 0; i < 3; ++i) {
    // The cluster config file goes to the server's own directory (--dir); RedisServer gives
    // the cluster bus a free port of its own.
    auto server = std::make_unique<RedisServer>(
        RedisServer::Tls{},
        std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                 "--cluster-node-timeout", "5000"});
    if (!server->ok()) {
      error_ = absl::StrCat("redis-server ", i, " did not start: ", server->Log());
      return;
    }
    ports_.push_back(server->port());
    servers_.push_back(std::move(server));
  }
  std::string create = "redis-cli --cluster create";
  for (uint16_t port : ports_) absl::StrAppend(&create, " 127.0.0.1:", port);
  absl::StrAppend(&create, " --cluster-replicas 0 --cluster-yes 2>&1");
  const std::string created = Run(create);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    bool all = true;
    for (uint16_t port : ports_) {
      all = all && Cli(port, "CLUSTER INFO").find("cluster_state:ok") != std::string::npos;
    }
    // Every node must also know every slot's master (the gossip has settled).
    for (uint16_t port : ports_) {
      all = all && Cli(port, "CLUSTER INFO").find("cluster_slots_ok:16384") != std::string::npos;
    }
    if (all) {
      ok_ = true;
      return;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  error_ = absl::StrCat("the cluster did not reach cluster_state:ok:\n", created);
}

RedisClusterServers::~RedisClusterServers() {
  for (auto& s : servers_) s->Stop();
}

std::string RedisClusterServers::url() const {
  std::string out = "redis+cluster://";
  for (size_t i = 0; i < ports_.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", "127.0.0.1:", ports_[i]);
  }
  return out;
}

std::string RedisClusterServers::Cli(uint16_t port, const std::string& args) {
  return Run(absl::StrCat("redis-cli -h 127.0.0.1 -p ", port, " ", args, " 2>&1"));
}

int RedisClusterServers::KeySlot(const std::string& key) const {
  int slot = -1;
  if (!absl::SimpleAtoi(Cli(ports_[0], absl::StrCat("CLUSTER KEYSLOT '", key, "'")), &slot)) {
    return -1;
  }
  return slot;
}

uint16_t RedisClusterServers::OwnerOf(const std::string& key) const {
  const int slot = KeySlot(key);
  // CLUSTER SLOTS, one value a line: start, end, ip, port, id, (replicas...) per range.
  std::vector<std::string> lines = absl::StrSplit(Cli(ports_[0], "CLUSTER SLOTS"), '\n');
  for (size_t i = 0; i + 3 < lines.size(); ++i) {
    int first = 0, last = 0, port = 0;
    if (absl::SimpleAtoi(lines[i], &first) && absl::SimpleAtoi(lines[i + 1], &last) &&
        lines[i + 2].find('.') != std::string::npos && absl::SimpleAtoi(lines[i + 3], &port) &&
        first <= slot && slot <= last) {
      return static_cast<uint16_t>(port);
    }
  }
  return 0;
}

std::vector<std::string> RedisClusterServers::ChannelsOnEveryMaster(const std::string& prefix,
                                                                    const std::string& stem) const {
  std::vector<std::string> out;
  std::set<uint16_t> masters;
  for (int i = 0; out.size() < 3 && i < 1000; ++i) {
    const std::string channel = absl::StrCat(stem, i);
    const uint16_t owner = OwnerOf(absl::StrCat(prefix, ":{", channel, "}:p"));
    if (owner != 0 && masters.insert(owner).second) out.push_back(channel);
  }
  return out;
}

}  // namespace herald::testing
