// /metrics of the real herald, parsed strictly: every family declared once with HELP and TYPE
// before its samples, samples of a family together, no two families that OpenMetrics parsers
// would fold into one (a gauge `x` beside a counter `x_total`), well-formed labels and histograms;
// and the control API, build and task-queue metrics it carries.
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;

constexpr char kApiKey[] = "metrics-test-key";

struct Family {
  std::string type;
  bool help = false;
};

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict reading of the Prometheus text format (0.0.4), with OpenMetrics' family rules on top.
struct Exposition {
  std::map<std::string, Family> families;
  std::vector<Sample> samples;
  std::vector<std::string> errors;

  // The value of the sample `name` with exactly `labels`, or -1.
  double Value(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return -1;
  }
};

bool ValidName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != ':') return false;
  }
  return true;
}

// `{a="x",b="y\"z"}` -> labels; false when malformed.
bool ParseLabels(absl::string_view in, std::map<std::string, std::string>* labels) {
  while (!in.empty()) {
    const size_t eq = in.find('=');
    if (eq == absl::string_view::npos) return false;
    const std::string name(in.substr(0, eq));
    if (!ValidName(name) || in.size() < eq + 2 || in[eq + 1] != '"') return false;
    std::string value;
    size_t i = eq + 2;
    for (; i < in.size() && in[i] != '"'; ++i) {
      if (in[i] == '\\') {
        if (++i >= in.size()) return false;
        if (in[i] == 'n') {
          value.push_back('\n');
        } else if (in[i] == '\\' || in[i] == '"') {
          value.push_back(in[i]);
        } else {
          return false;
        }
      } else {
        value.push_back(in[i]);
      }
    }
    if (i >= in.size()) return false;
    if (!labels->emplace(name, value).second) return false;  // duplicate label
    in.remove_prefix(i + 1);
    if (!in.empty() && !absl::ConsumePrefix(&in, ",")) return false;
  }
  return true;
}

// The family a sample of `name` belongs to, given the families declared.
std::string FamilyOf(const std::string& name, const std::map<std::string, Family>& families) {
  if (families.count(name) != 0) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    absl::string_view base = name;
    if (absl::ConsumeSuffix(&base, suffix)) {
      auto it = families.find(std::string(base));
      if (it != families.end() && it->second.type == "histogram") return it->first;
    }
  }
  return "";
}

Exposition Parse(const std::string& text) {
  Exposition e;
  std::string current;  // the family whose samples may follow
  std::set<std::string> closed;
  auto error = [&e](int line, const std::string& what) {
    e.errors.push_back(absl::StrCat("line ", line, ": ", what));
  };
  if (!absl::EndsWith(text, "\n")) e.errors.push_back("does not end with a newline");
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++n;
    if (absl::ConsumePrefix(&line, "# ")) {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 2));
      if (parts.size() < 3 || !ValidName(parts[1])) {
        error(n, "malformed comment line");
        continue;
      }
      const std::string& name = parts[1];
      if (name != current && closed.count(name) != 0) error(n, name + " declared again");
      if (name != current && !current.empty()) closed.insert(current);
      current = name;
      Family& f = e.families[name];
      if (parts[0] == "HELP") {
        if (f.help) error(n, name + ": two HELP lines");
        if (!f.type.empty()) error(n, name + ": HELP after TYPE");
        f.help = true;
      } else if (parts[0] == "TYPE") {
        if (!f.type.empty()) error(n, name + ": two TYPE lines");
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (kTypes.count(parts[2]) == 0) error(n, name + ": unknown type " + parts[2]);
        f.type = parts[2];
      } else {
        error(n, "unknown comment " + parts[0]);
      }
      continue;
    }
    if (line[0] == '#') {
      error(n, "malformed comment line");
      continue;
    }
    Sample s;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) {
      error(n, "sample without a value");
      continue;
    }
    absl::string_view value = line.substr(space + 1);
    absl::string_view head = line.substr(0, space);
    if (value == "+Inf" || value == "-Inf" || value == "NaN") {
      error(n, "unexpected special value");
    } else if (!absl::SimpleAtod(value, &s.value)) {
      error(n, "value is not a number: " + std::string(value));
    }
    const size_t brace = head.find('{');
    s.name = std::string(head.substr(0, brace));
    if (brace != absl::string_view::npos) {
      if (head.back() != '}' ||
          !ParseLabels(head.substr(brace + 1, head.size() - brace - 2), &s.labels)) {
        error(n, "malformed labels");
      }
    }
    if (!ValidName(s.name)) error(n, "bad metric name");
    const std::string family = FamilyOf(s.name, e.families);
    if (family.empty() || e.families[family].type.empty()) {
      error(n, s.name + ": no TYPE declared before the sample");
    } else if (family != current) {
      error(n, s.name + ": sample outside its family's block");
    }
    e.samples.push_back(std::move(s));
  }
  // OpenMetrics: a counter's family is its name without `_total`; a histogram owns its suffixes.
  for (const auto& [name, f] : e.families) {
    if (!f.help) e.errors.push_back(name + ": no HELP");
    if (f.type == "counter") {
      if (!absl::EndsWith(name, "_total")) e.errors.push_back(name + ": counter without _total");
      const std::string base(absl::StripSuffix(name, "_total"));
      if (e.families.count(base) != 0) {
        e.errors.push_back(absl::StrCat(name, " (counter) and ", base, " (",
                                        e.families.at(base).type, ") fold into one family"));
      }
    }
    if (f.type == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count", "_created"}) {
        if (e.families.count(name + suffix) != 0) {
          e.errors.push_back(name + suffix + " clashes with histogram " + name);
        }
      }
    }
  }
  // Histograms: cumulative buckets ending at +Inf, which equals _count.
  std::map<std::string, std::pair<double, double>> last;  // series -> (previous bucket, +Inf)
  for (const Sample& s : e.samples) {
    if (!absl::EndsWith(s.name, "_bucket")) continue;
    auto le = s.labels.find("le");
    if (le == s.labels.end()) {
      e.errors.push_back(s.name + ": bucket without le");
      continue;
    }
    std::map<std::string, std::string> series = s.labels;
    series.erase("le");
    const std::string key = s.name + ::testing::PrintToString(series);
    auto [it, fresh] = last.emplace(key, std::make_pair(0.0, -1.0));
    if (s.value < it->second.first) e.errors.push_back(key + ": buckets not cumulative");
    it->second.first = s.value;
    if (le->second == "+Inf") {
      const std::string count = std::string(absl::StripSuffix(s.name, "_bucket")) + "_count";
      if (e.Value(count, series) != s.value) e.errors.push_back(key + ": +Inf is not _count");
    }
  }
  return e;
}

std::string Scrape(const HeraldProcess& h) {
  HttpCall call;
  call.method = "GET";
  call.url = "http://" + h.ws_address() + "/metrics";
  call.content_type = "";
  HttpResult r = Http(call);
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4");
  return r.body;
}

grpc::Status CallStats(const HeraldProcess& h, const std::string& key) {
  auto stub = h.Stub();
  grpc::ClientContext ctx;
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  v1::StatsResponse resp;
  return stub->Stats(&ctx, v1::StatsRequest(), &resp);
}

// Whether process `pid` has a shared library whose file name contains `name` mapped.
bool MapsLibrary(pid_t pid, const std::string& name) {
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  std::string line;
  while (std::getline(maps, line)) {
    if (absl::StrContains(line, name)) return true;
  }
  return false;
}

TEST(MetricsTest, ExpositionIsStrictlyWellFormedWithApiBuildAndQueueMetrics) {
  HeraldProcess herald({"--api-key", kApiKey});
  ASSERT_TRUE(herald.ok());
  WsClient client;
  ASSERT_TRUE(client.Connect(herald.ws_url()));
  // gRPC: two good calls and one without the key; HTTP: a publish, a call without the key and one
  // with a bad body; one task left waiting in a queue nobody works.
  ASSERT_TRUE(CallStats(herald, kApiKey).ok());
  ASSERT_TRUE(CallStats(herald, kApiKey).ok());
  ASSERT_EQ(CallStats(herald, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_EQ(PostJson(herald.ws_address(), "/api/v1/Publish", R"({"channel":"news","data":{"n":1}})",
                     kApiKey)
                .status,
            200);
  ASSERT_EQ(PostJson(herald.ws_address(), "/api/v1/Stats", "{}").status, 401);
  ASSERT_EQ(PostJson(herald.ws_address(), "/api/v1/Publish", "{nope", kApiKey).status, 400);
  ASSERT_EQ(PostJson(herald.ws_address(), "/api/v1/DispatchTask",
                     R"({"queue":"emails","data":{"to":"a@example.com"}})", kApiKey)
                .status,
            200);
  ASSERT_EQ(PostJson(herald.ws_address(), "/api/v1/NoSuchMethod", "{}", kApiKey).status, 404);

  const std::string text = Scrape(herald);
  const Exposition e = Parse(text);
  EXPECT_THAT(e.errors, IsEmpty()) << text;

  // The renamed counter; the old name would fold into the herald_connections gauge's family.
  EXPECT_EQ(e.families.count("herald_connections_total"), 0u);
  EXPECT_EQ(e.families.at("herald_connections_opened_total").type, "counter");
  EXPECT_EQ(e.Value("herald_connections_opened_total"), 1);
  EXPECT_EQ(e.Value("herald_connections"), 1);

  // Build info: the version --version prints.
  CommandResult version = RunCommand({HeraldBinary(), "--version"});
  ASSERT_EQ(version.exit_code, 0);
  std::vector<std::string> words = absl::StrSplit(version.out, absl::ByAnyChar(" \n"));
  ASSERT_GE(words.size(), 2u);  // "herald 0.1.0 (git …)"
  bool found = false;
  for (const Sample& s : e.samples) {
    if (s.name != "herald_build_info") continue;
    found = true;
    EXPECT_EQ(s.labels.at("version"), words[1]);
    EXPECT_EQ(s.value, 1);
    // The allocator serving malloc: mimalloc when the process has it loaded (the default
    // build), glibc's otherwise (sanitizer builds).
    if (MapsLibrary(herald.pid(), "libmimalloc")) {
      EXPECT_THAT(s.labels.at("allocator"), ::testing::StartsWith("mimalloc 2."));
    } else {
      EXPECT_EQ(s.labels.at("allocator"), "glibc");
    }
    if (absl::StrContains(version.out, "(git ")) {
      EXPECT_THAT(version.out, ::testing::HasSubstr(s.labels.at("revision")));
    }
  }
  EXPECT_TRUE(found) << text;

  // Control API calls by method, transport and code; unknown methods are not counted.
  auto requests = [&e](const std::string& method, const std::string& transport,
                       const std::string& code) {
    return e.Value("herald_api_requests_total",
                   {{"method", method}, {"transport", transport}, {"code", code}});
  };
  EXPECT_EQ(requests("Stats", "grpc", "OK"), 2);
  EXPECT_EQ(requests("Stats", "grpc", "UNAUTHENTICATED"), 1);
  EXPECT_EQ(requests("Stats", "http", "UNAUTHENTICATED"), 1);
  EXPECT_EQ(requests("Publish", "http", "OK"), 1);
  EXPECT_EQ(requests("Publish", "http", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(requests("DispatchTask", "http", "OK"), 1);
  for (const Sample& s : e.samples) {
    if (s.labels.count("method") != 0) EXPECT_NE(s.labels.at("method"), "NoSuchMethod");
  }
  EXPECT_EQ(e.families.at("herald_api_request_duration_seconds").type, "histogram");
  EXPECT_EQ(e.Value("herald_api_request_duration_seconds_count", {{"method", "Stats"}}), 4);
  EXPECT_EQ(e.Value("herald_api_request_duration_seconds_count", {{"method", "Publish"}}), 2);
  EXPECT_GE(e.Value("herald_api_request_duration_seconds_sum", {{"method", "Publish"}}), 0);
  EXPECT_EQ(e.Value("herald_api_request_duration_seconds_count", {{"method", "History"}}), -1);

  // Task queues, as ListQueues reports them.
  const std::map<std::string, std::string> emails = {{"queue", "emails"}};
  EXPECT_EQ(e.Value("herald_task_queue_waiting", emails), 1);
  EXPECT_EQ(e.Value("herald_task_queue_in_flight", emails), 0);
  EXPECT_EQ(e.Value("herald_task_queue_workers", emails), 0);
  EXPECT_EQ(e.Value("herald_tasks_dispatched_total", emails), 1);
  EXPECT_EQ(e.Value("herald_tasks_acked_total", emails), 0);
  EXPECT_EQ(e.Value("herald_tasks_redelivered_total", emails), 0);
  EXPECT_EQ(e.Value("herald_tasks_expired_total", emails), 0);
}

// The parser above rejects what it is meant to catch (else the test above proves nothing).
TEST(MetricsTest, ParserRejectsFoldingFamiliesAndUndeclaredSamples) {
  EXPECT_THAT(Parse("# HELP a_total x\n# TYPE a_total counter\na_total 1\n"
                    "# HELP a x\n# TYPE a gauge\na 1\n")
                  .errors,
              Contains("a_total (counter) and a (gauge) fold into one family"));
  EXPECT_THAT(Parse("b 1\n").errors, Contains("line 1: b: no TYPE declared before the sample"));
  EXPECT_THAT(
      Parse("# HELP c x\n# TYPE c gauge\nc 1\n# HELP d x\n# TYPE d gauge\nd 1\nc 2\n").errors,
      Contains("line 7: c: sample outside its family's block"));
  EXPECT_THAT(Parse("# HELP e x\n# TYPE e gauge\n# TYPE e gauge\ne 1\n").errors,
              Contains("line 3: e: two TYPE lines"));
  EXPECT_THAT(Parse("# HELP f x\n# TYPE f gauge\nf{a=\"1\" 1\n").errors,
              Contains("line 3: malformed labels"));
}

}  // namespace
}  // namespace herald::testing
