#ifndef HERALD_SERVER_CORE_NODE_COUNTERS_H_
#define HERALD_SERVER_CORE_NODE_COUNTERS_H_

#include <atomic>
#include <cstdint>

namespace herald::core {

// Totals since the node started, for Stats and /metrics. Plain relaxed atomics, bumped by the
// node, the client protocol, the API executor and the transport; safe from any thread.
struct NodeCounters {
  static void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  static uint64_t Get(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }

  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> publications{0};
  std::atomic<uint64_t> deliveries{0};
  std::atomic<uint64_t> stale_orders{0};
  std::atomic<uint64_t> client_errors{0};
  std::atomic<uint64_t> slow_consumer_closes{0};
  std::atomic<uint64_t> messages_from_clients{0};
  std::atomic<uint64_t> conflated{0};
  // Refusals by limit (`herald_limit_refusals_total{reason=...}`).
  std::atomic<uint64_t> rate_limited_frames{0};
  std::atomic<uint64_t> rate_limit_closes{0};
  std::atomic<uint64_t> refused_per_ip{0};
  std::atomic<uint64_t> refused_per_user{0};
  std::atomic<uint64_t> refused_max_connections{0};
  std::atomic<uint64_t> api_rate_refusals{0};
  // Traffic of sessions that have closed, so Stats totals survive disconnects.
  std::atomic<uint64_t> closed_frames_in{0};
  std::atomic<uint64_t> closed_frames_out{0};
  std::atomic<uint64_t> closed_bytes_in{0};
  std::atomic<uint64_t> closed_bytes_out{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_NODE_COUNTERS_H_
