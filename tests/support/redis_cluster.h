#ifndef HERALD_TESTS_SUPPORT_REDIS_CLUSTER_H_
#define HERALD_TESTS_SUPPORT_REDIS_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/redis_server.h"

namespace herald::testing {

// A Redis Cluster of three masters (no replicas) on free loopback ports: three `redis-server
// --cluster-enabled yes` (RedisServer, without persistence), joined by `redis-cli --cluster
// create`, ready once every node says cluster_state:ok. Stopped and removed with the object.
// Not thread-safe.
class RedisClusterServers {
 public:
  RedisClusterServers();
  ~RedisClusterServers();
  RedisClusterServers(const RedisClusterServers&) = delete;
  RedisClusterServers& operator=(const RedisClusterServers&) = delete;

  // Whether the cluster formed (cluster_state:ok everywhere) within 30 s; why not, in error().
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3".
  std::string url() const;
  const std::vector<uint16_t>& ports() const { return ports_; }
  // `redis-cli -p <port> <args>`: its output (trailing newline removed).
  static std::string Cli(uint16_t port, const std::string& args);
  // The port of the master that serves `key`'s slot (CLUSTER KEYSLOT, CLUSTER SLOTS).
  uint16_t OwnerOf(const std::string& key) const;
  int KeySlot(const std::string& key) const;
  // Three channels, `stem` and a number, whose keys under `prefix` land on three different
  // masters: the slot of "<prefix>:{<channel>}:p", which is also that of the channel's shard
  // channel. Fewer if the first 1000 names do not cover every master.
  std::vector<std::string> ChannelsOnEveryMaster(const std::string& prefix,
                                                 const std::string& stem) const;

 private:
  std::vector<std::unique_ptr<RedisServer>> servers_;
  std::vector<uint16_t> ports_;
  bool ok_ = false;
  std::string error_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_REDIS_CLUSTER_H_
