#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_OPTIONS_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace herald::engine {

// Where the Redis engine connects and its tunables, with their documented defaults (one struct,
// like core::Limits). Plain value type.
struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  // AUTH: with a password only (Redis < 6 style, or the `default` user), or ACL user + password.
  std::string username;
  std::string password;
  int db = 0;
  // Redis Cluster (a redis+cluster:// URL): the nodes to learn the slot map from ("host:port"),
  // host and port being the first. Commands go to the master of their slot, pub/sub is sharded
  // (SSUBSCRIBE/SPUBLISH, Redis 7 or later); `db` must be 0.
  bool cluster = false;
  std::vector<std::string> cluster_nodes;
  // TLS (a rediss:// URL): the server's certificate must verify against `tls_ca_file` (empty:
  // the system's CA store) and name `host`; `tls_cert_file` / `tls_key_file` (PEM) are the
  // client certificate for servers that ask for one (tls-auth-clients).
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Every key and pub/sub channel starts with "<prefix>:". Deployments sharing one Redis need
  // distinct prefixes (pub/sub is not scoped by database number).
  std::string prefix = "herald";
  // A connection attempt that takes longer is abandoned (and retried with backoff).
  absl::Duration connect_timeout = absl::Seconds(2);
  // A command without a reply for this long closes its connection (Redis hung, or a half-open
  // TCP connection): its callers get UNAVAILABLE instead of waiting forever.
  absl::Duration command_timeout = absl::Seconds(5);
  // Reconnect backoff: doubles from min to max after each failed attempt (with jitter).
  absl::Duration reconnect_min = absl::Milliseconds(50);
  absl::Duration reconnect_max = absl::Seconds(2);
  // A channel's epoch, offset and latest-per-key hash live this long after its last publish
  // (at least its history TTL): a channel idle for longer starts a new epoch.
  absl::Duration meta_ttl = absl::Hours(24);
  // An idempotency key's "running" marker expires after this, so a node that died mid-publish
  // does not hold the key for the whole window.
  absl::Duration running_ttl = absl::Seconds(30);
  // A repeat that finds the key's first publish still running (on any node) looks again every
  // `repeat_poll`, for at most `repeat_wait`, then fails with UNAVAILABLE.
  absl::Duration repeat_poll = absl::Milliseconds(10);
  absl::Duration repeat_wait = absl::Seconds(5);
  // OrderStore::Sweep runs its cleanup script at most this often (Hub ticks every 50 ms).
  absl::Duration sweep_interval = absl::Seconds(1);
  // This node's name (the Hub's, --node): unique among the live nodes of the cluster; its task
  // holders are "<node>/<connection id>": timeouts of leases of this node that another node's
  // sweep found reach this node through it (RedisTaskStore).
  std::string node = "n1";
  // Each node refreshes its heartbeat this often (--node-heartbeat-ms); a node whose heartbeat
  // lapses is gone. See RedisControlBus::DeadNodeBound.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // TaskStore::Sweep runs its script at most this often: how late past its deadline a lease is
  // redelivered, at most (plus the Hub's tick).
  absl::Duration task_sweep_interval = absl::Milliseconds(100);
};

// Fills host, port, username, password and db from "redis://[[user]:password@]host[:port][/db]"
// (keeping the other fields of `base`); "rediss://…" also sets `tls`. A Redis Cluster:
// "redis+cluster://[[user]:password@]host:port[,host:port…]" (or "rediss+cluster://") sets
// `cluster` and `cluster_nodes`.
absl::StatusOr<RedisOptions> ParseRedisUrl(absl::string_view url, RedisOptions base = {});

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_OPTIONS_H_
