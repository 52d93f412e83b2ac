#include "server/rpc/api_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace herald::rpc {
namespace {

constexpr const char* kTransportNames[] = {"grpc", "http"};

// The position of `method` in UnaryMethods(), or -1 for a method from elsewhere.
int IndexOf(const UnaryMethod& method) {
  const std::vector<UnaryMethod>& all = UnaryMethods();
  const ptrdiff_t i = &method - all.data();
  return i >= 0 && i < static_cast<ptrdiff_t>(all.size()) ? static_cast<int>(i) : -1;
}

uint64_t Load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

}  // namespace

ApiMetrics::ApiMetrics() : methods_(new PerMethod[UnaryMethods().size()]) {}

UnaryDone ApiMetrics::Track(const UnaryMethod& method, Transport transport, UnaryDone done) {
  return [this, &method, transport, start = std::chrono::steady_clock::now(),
          done = std::move(done)](absl::Status status) {
    Record(method, transport, status.code(), std::chrono::steady_clock::now() - start);
    done(std::move(status));
  };
}

void ApiMetrics::Record(const UnaryMethod& method, Transport transport, absl::StatusCode code,
                        std::chrono::steady_clock::duration elapsed) {
  const int i = IndexOf(method);
  const int c = static_cast<int>(code);
  if (i < 0 || c < 0 || c >= kCodes) return;
  PerMethod& m = methods_[i];
  m.calls[static_cast<int>(transport)][c].fetch_add(1, std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(elapsed).count();
  size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  m.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  m.nanos.fetch_add(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()),
      std::memory_order_relaxed);
}

void ApiMetrics::AppendTo(std::string* out) const {
  const std::vector<UnaryMethod>& all = UnaryMethods();
  absl::StrAppend(out,
                  "# HELP herald_api_requests_total Control API calls (gRPC and HTTP/JSON) by "
                  "method, transport and canonical code.\n"
                  "# TYPE herald_api_requests_total counter\n");
  for (size_t i = 0; i < all.size(); ++i) {
    for (int t = 0; t < kTransports; ++t) {
      for (int c = 0; c < kCodes; ++c) {
        const uint64_t n = Load(methods_[i].calls[t][c]);
        if (n == 0) continue;
        absl::StrAppend(out, "herald_api_requests_total{method=\"", all[i].descriptor->name(),
                        "\",transport=\"", kTransportNames[t], "\",code=\"",
                        absl::StatusCodeToString(static_cast<absl::StatusCode>(c)), "\"} ", n,
                        "\n");
      }
    }
  }
  absl::StrAppend(out,
                  "# HELP herald_api_request_duration_seconds Control API call latency by "
                  "method, until the call's completion.\n"
                  "# TYPE herald_api_request_duration_seconds histogram\n");
  for (size_t i = 0; i < all.size(); ++i) {
    const PerMethod& m = methods_[i];
    // _count is the +Inf bucket, so one scrape is consistent even while calls finish.
    uint64_t cumulative = 0;
    std::string lines;
    for (size_t b = 0; b <= kBuckets.size(); ++b) {
      cumulative += Load(m.buckets[b]);
      const std::string le = b < kBuckets.size() ? absl::StrFormat("%g", kBuckets[b]) : "+Inf";
      absl::StrAppend(&lines, "herald_api_request_duration_seconds_bucket{method=\"",
                      all[i].descriptor->name(), "\",le=\"", le, "\"} ", cumulative, "\n");
    }
    if (cumulative == 0) continue;  // never called: left out
    absl::StrAppend(out, lines);
    absl::StrAppend(out, "herald_api_request_duration_seconds_sum{method=\"",
                    all[i].descriptor->name(), "\"} ",
                    absl::StrFormat("%.9f", static_cast<double>(Load(m.nanos)) / 1e9), "\n");
    absl::StrAppend(out, "herald_api_request_duration_seconds_count{method=\"",
                    all[i].descriptor->name(), "\"} ", cumulative, "\n");
  }
}

}  // namespace herald::rpc
