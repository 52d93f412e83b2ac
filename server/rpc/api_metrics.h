#ifndef HERALD_SERVER_RPC_API_METRICS_H_
#define HERALD_SERVER_RPC_API_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/rpc/methods.h"

namespace herald::rpc {

// Counts control API calls by method, transport and canonical code, and times them by method
// (from the handler's start to its completion: a publish waiting for an ack is timed until the
// wait ends). BrokerService and HttpApi wrap each call's completion with Track(); calls refused
// before a method is known (an unknown method or path) are not counted. Lock-free (relaxed
// atomics); thread-safe.
class ApiMetrics {
 public:
  enum class Transport { kGrpc = 0, kHttp = 1 };

  // Upper bounds of the latency histogram's buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  ApiMetrics();
  ApiMetrics(const ApiMetrics&) = delete;
  ApiMetrics& operator=(const ApiMetrics&) = delete;

  // `done`, wrapped to count and time the call of `method` when it finishes. The clock starts now.
  UnaryDone Track(const UnaryMethod& method, Transport transport, UnaryDone done);
  // Counts one finished call.
  void Record(const UnaryMethod& method, Transport transport, absl::StatusCode code,
              std::chrono::steady_clock::duration elapsed);

  // Appends herald_api_requests_total{method,transport,code} (pairs seen so far) and the
  // herald_api_request_duration_seconds{method} histogram (methods called so far) in the
  // Prometheus text format.
  void AppendTo(std::string* out) const;

 private:
  static constexpr int kCodes = 17;  // absl::StatusCode 0..16
  static constexpr int kTransports = 2;
  struct PerMethod {
    std::array<std::array<std::atomic<uint64_t>, kCodes>, kTransports> calls{};
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};  // not cumulative
    std::atomic<uint64_t> nanos{0};
  };
  // Indexed like UnaryMethods().
  std::unique_ptr<PerMethod[]> methods_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_API_METRICS_H_
