#include "bench/common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace herald::bench {

uint64_t Histogram::Quantile(double q) const {
  if (total_ == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t ub = UpperBound(i);
      return ub < max_ ? ub : max_;
    }
  }
  return max_;
}

std::vector<std::pair<uint64_t, double>> Histogram::Cdf() const {
  std::vector<std::pair<uint64_t, double>> out;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if (counts_[i] == 0) continue;
    seen += counts_[i];
    const uint64_t ub = UpperBound(i);
    out.emplace_back(ub < max_ ? ub : max_, static_cast<double>(seen) / total_);
  }
  return out;
}

double ProcCpuSeconds(const std::vector<int>& pids) {
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  for (int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    // Fields after the ")" that ends the command name: state is field 3; utime 14, stime 15.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && (rest >> field); ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    total += static_cast<double>(utime + stime) / tick;
  }
  return total;
}

uint64_t ProcRssBytes(const std::vector<int>& pids) {
  uint64_t total = 0;
  for (int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        total += std::stoull(line.substr(6)) * 1024;
        break;
      }
    }
  }
  return total;
}

double SelfCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::vector<int> ParsePids(const std::string& csv) {
  std::vector<int> out;
  std::istringstream in(csv);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(std::stoi(item));
  }
  return out;
}

void JsonObject::Key(const char* key) {
  if (!body_.empty()) body_ += ",";
  body_ += "\"";
  body_ += key;
  body_ += "\":";
}

JsonObject& JsonObject::Num(const char* key, double v) {
  Key(key);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  body_ += buf;
  return *this;
}

JsonObject& JsonObject::Int(const char* key, uint64_t v) {
  Key(key);
  body_ += std::to_string(v);
  return *this;
}

JsonObject& JsonObject::Str(const char* key, const std::string& v) {
  Key(key);
  body_ += "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') body_ += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) body_ += c;
  }
  body_ += "\"";
  return *this;
}

JsonObject& JsonObject::Raw(const char* key, const std::string& json) {
  Key(key);
  body_ += json;
  return *this;
}

std::string LatencyJson(const Histogram& h) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return JsonObject()
      .Int("samples", h.total())
      .Num("p50_us", us(h.Quantile(0.50)))
      .Num("p90_us", us(h.Quantile(0.90)))
      .Num("p99_us", us(h.Quantile(0.99)))
      .Num("p999_us", us(h.Quantile(0.999)))
      .Num("max_us", us(h.max()))
      .Done();
}

}  // namespace herald::bench
