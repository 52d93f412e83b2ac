// Fuzzes herald's configuration parser: ParseServerConfig reading a config file (the strict
// StrictConfigFile reader, then CLI11's TOML reader and every option's conversion and check).
//
// Input: the config file's text. Inputs naming /dev/, /proc/ or /sys/ are skipped: a file-valued
// key (jwt-rs256-public-key) pointing there could make the parser read forever, which is the
// operator's choice rather than a parser bug.
// Invariants: no crash, uncaught exception, leak or UB; herald either runs with settings inside
// their documented ranges or exits 2 (after one line on stderr).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/config.h"
#include "tests/fuzz/fuzz_check.h"

extern char** environ;

namespace herald::fuzz {
namespace {

std::string ConfigPath() {
  const char* dir = std::getenv("TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/herald-config-fuzz-", getpid(), ".toml");
}

void Run(absl::string_view input) {
  for (absl::string_view special : {"/dev/", "/proc/", "/sys/"}) {
    if (absl::StrContains(input, special)) return;
  }
  static const std::string path = ConfigPath();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(input.data(), static_cast<std::streamsize>(input.size()));
  }
  std::vector<std::string> args = {"herald", "--config", path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // herald prints its error line (or --help) on stderr/stdout: keep the fuzzer's output readable.
  std::ostringstream sink;
  std::streambuf* const err = std::cerr.rdbuf(sink.rdbuf());
  std::streambuf* const out = std::cout.rdbuf(sink.rdbuf());
  ParsedConfig parsed = ParseServerConfig(static_cast<int>(args.size()), argv.data());
  std::cerr.rdbuf(err);
  std::cout.rdbuf(out);

  if (!parsed.run) {
    Check(parsed.exit_code == 2 || parsed.exit_code == 0,
          absl::StrCat("exit code ", parsed.exit_code, ": ", sink.str()));
    Check(parsed.exit_code == 0 || !sink.str().empty(), "exit 2 without an error line");
    return;
  }
  const core::Limits& l = parsed.config.limits;
  Check(l.max_json_depth >= 8 && l.max_json_depth <= 48, "max-json-depth out of range");
  Check(l.max_frame_bytes >= 256, "max-frame-bytes out of range");
  Check(l.soft_send_buffer_bytes <= l.max_send_buffer_bytes, "soft send buffer above the max");
  Check(parsed.config.threads >= 0 && parsed.config.threads <= 256, "threads out of range");
  Check(parsed.config.drain_timeout_s >= 0 && parsed.config.drain_timeout_s <= 3600,
        "drain-timeout out of range");
  for (const auto& rule : l.history_by_prefix) {
    Check(rule.second.ttl > absl::ZeroDuration(), "history-prefix with a TTL <= 0");
  }
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // ParseServerConfig refuses unknown HERALD_* variables and reads HERALD_CONFIG: run every input
  // with none, as a clean environment would.
  std::vector<std::string> names;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry = *e;
    if (absl::StartsWith(entry, "HERALD_")) names.emplace_back(entry.substr(0, entry.find('=')));
  }
  for (const std::string& name : names) unsetenv(name.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::fuzz::Run(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
