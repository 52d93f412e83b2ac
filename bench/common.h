// Small helpers shared by the benchmark tools: a log-bucket latency histogram, monotonic time,
// /proc readers for a server's CPU time and RSS, and a minimal JSON writer.
#ifndef HERALD_BENCH_COMMON_H_
#define HERALD_BENCH_COMMON_H_

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace herald::bench {

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// HDR-style histogram of nanosecond values: exact below 64, then 32 linear sub-buckets per power
// of two (relative error <= 1/32 ≈ 3%). Fixed size, no allocation on Record(). Not thread-safe:
// one per thread, merged at the end.
class Histogram {
 public:
  static constexpr int kSub = 32;
  static constexpr int kBuckets = 64 + 58 * kSub;

  void Record(uint64_t v) {
    ++counts_[Index(v)];
    ++total_;
    if (v > max_) max_ = v;
  }
  void Merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    if (o.max_ > max_) max_ = o.max_;
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }
  // The value at quantile q (0..1): the upper bound of the bucket holding it (capped at max).
  uint64_t Quantile(double q) const;
  // (value, cumulative fraction) for every non-empty bucket: a CDF for plotting.
  std::vector<std::pair<uint64_t, double>> Cdf() const;

  static int Index(uint64_t v) {
    if (v < 64) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int e = msb - 5;
    const int m = static_cast<int>((v >> e) & (kSub - 1));
    return 64 + (e - 1) * kSub + m;
  }
  static uint64_t UpperBound(int idx) {
    if (idx < 64) return static_cast<uint64_t>(idx);
    const int e = (idx - 64) / kSub + 1;
    const uint64_t m = static_cast<uint64_t>((idx - 64) % kSub);
    return ((kSub + m + 1) << e) - 1;
  }

 private:
  uint64_t counts_[kBuckets] = {};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

// utime+stime of the given processes, in seconds (from /proc/PID/stat). Missing pids count 0.
double ProcCpuSeconds(const std::vector<int>& pids);
// VmRSS of the given processes, in bytes (from /proc/PID/status).
uint64_t ProcRssBytes(const std::vector<int>& pids);
// This process's user+system CPU seconds.
double SelfCpuSeconds();
// "1,2,3" -> {1,2,3}.
std::vector<int> ParsePids(const std::string& csv);

// Appends `"key":value` pairs to a JSON object text. Keys are trusted identifiers.
class JsonObject {
 public:
  JsonObject& Num(const char* key, double v);
  JsonObject& Int(const char* key, uint64_t v);
  JsonObject& Str(const char* key, const std::string& v);
  JsonObject& Raw(const char* key, const std::string& json);
  std::string Done() const { return "{" + body_ + "}"; }

 private:
  void Key(const char* key);
  std::string body_;
};

// The latency summary object of a histogram, in microseconds.
std::string LatencyJson(const Histogram& h);

}  // namespace herald::bench

#endif  // HERALD_BENCH_COMMON_H_
