// The real herald binary against config files, HERALD_* variables and flags: typos are refused
// with one line naming the closest valid key, and --print-config shows where each value is from.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path) << text;
  return path;
}

// herald with `env` ("NAME=value") added to the environment, then `args`. A herald that starts
// when it should have refused listens on free ports and is killed after 10 s.
CommandResult RunHerald(const std::vector<std::string>& env, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(),
              {HeraldBinary(), "--ws-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"});
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(10));
}

// key -> "value  # source" of each line of --print-config output.
std::map<std::string, std::string> Settings(const std::string& out) {
  std::map<std::string, std::string> settings;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits(" = ", 1));
    EXPECT_EQ(kv.size(), 2u) << line;
    if (kv.size() == 2) settings[kv[0]] = kv[1];
  }
  return settings;
}

TEST(StrictConfigTest, TypoInConfigFileExitsTwoNamingTheClosestKey) {
  const std::string path =
      WriteFile("herald-typo.toml", "# limits\nmax-subscriptions = 8\nmax-frame-byte = 4096\n");
  CommandResult r = RunHerald({}, {"--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, absl::StrCat("herald: unknown key 'max-frame-byte' in ", path,
                                " line 3; did you mean 'max-frame-bytes'?\n"));
  EXPECT_EQ(r.out, "");

  const std::string underscore = WriteFile("herald-underscore.toml", "api_key = \"secret\"\n");
  r = RunHerald({}, {"--config", underscore});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, absl::StrCat("herald: unknown key 'api_key' in ", underscore,
                                " line 1; did you mean 'api-key'?\n"));

  // The same file named by HERALD_CONFIG instead of --config.
  r = RunHerald({"HERALD_CONFIG=" + path}, {});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown key 'max-frame-byte'"));
}

TEST(StrictConfigTest, TypoInEnvironmentExitsTwoNamingTheClosestVariable) {
  CommandResult r = RunHerald({"HERALD_MAX_FRAME_BYTE=4096"}, {});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "herald: unknown environment variable 'HERALD_MAX_FRAME_BYTE'; did you mean "
            "'HERALD_MAX_FRAME_BYTES'?\n");
  EXPECT_EQ(r.out, "");
  r = RunHerald({"HERALD_APIKEY=k"}, {"--print-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean 'HERALD_API_KEY'?"));
}

TEST(StrictConfigTest, VariablesOfTheExamplesTestsAndBenchmarksAreNotSettingsButAllowed) {
  std::vector<std::string> env = {"HERALD_BIN=/x/herald", "HERALD_ARTIFACTS=/tmp",
                                  "HERALD_PUBLISH=grpc"};
  // Every HERALD_* name the examples read, so that a shell that exported one for them still
  // starts herald (events.php's HERALD_LAST_EVENT_ID was refused).
  const std::regex name(R"(\bHERALD_[A-Z_]*[A-Z])");
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(HERALD_EXAMPLES)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
      if (seen.insert(it->str()).second) env.push_back(absl::StrCat(it->str(), "=1"));
    }
  }
  EXPECT_TRUE(seen.count("HERALD_URL") > 0 && seen.count("HERALD_LAST_EVENT_ID") > 0);
  for (const std::string& var : env) {
    CommandResult r = RunHerald({var}, {"--print-config"});
    EXPECT_EQ(r.exit_code, 0) << var << ": " << r.err;
  }
}

TEST(StrictConfigTest, UnknownFlagNamesTheClosestFlag) {
  CommandResult r = RunHerald({}, {"--max-frame-byte", "4096"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "herald: unknown flag '--max-frame-byte'; did you mean '--max-frame-bytes'? (see "
            "herald --help)\n");
}

TEST(StrictConfigTest, BadValuesExitTwoWithOneLine) {
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{}, {"--config", WriteFile("herald-small.toml", "max-frame-bytes = 10\n")}},
      {{}, {"--config", WriteFile("herald-nan.toml", "threads = many\n")}},
      {{}, {"--config", WriteFile("herald-twice.toml", "threads = 1\nthreads = 2\n")}},
      {{}, {"--config", WriteFile("herald-section.toml", "[server]\nthreads = 1\n")}},
      {{"HERALD_THREADS=abc"}, {}},
      {{"HERALD_LOG_LEVEL=loud"}, {}},
      {{"HERALD_CONFIG=/nonexistent/herald.toml"}, {}},
      {{}, {"--config", "/nonexistent/herald.toml"}},
  };
  for (const auto& [env, args] : cases) {
    CommandResult r = RunHerald(env, args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("herald: "));
  }
}

TEST(PrintConfigTest, ShowsEachValueWithItsSourceAndMasksSecrets) {
  const std::string path = WriteFile(
      "herald-print.toml",
      "node = \"filenode\"\napi-key = \"s3cret-api\"\nthreads = 3\nmax-subscriptions = 7\n");
  CommandResult r = RunHerald(
      {"HERALD_LOG_LEVEL=warn", "HERALD_JWT_HS256_SECRET=s3cret-jwt", "HERALD_MAX_SUBSCRIPTIONS=9"},
      {"--config", path, "--max-frame-bytes", "4096", "--threads", "5", "--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, Not(HasSubstr("listening")));  // the server did not start
  EXPECT_THAT(r.out, Not(HasSubstr("s3cret")));
  std::map<std::string, std::string> s = Settings(r.out);
  EXPECT_EQ(s["max-frame-bytes"], "4096  # flag");
  EXPECT_EQ(s["threads"], "5  # flag");  // the flag wins over the file
  EXPECT_EQ(s["node"], "\"filenode\"  # file");
  EXPECT_EQ(s["max-subscriptions"], "7  # file");  // the file wins over the environment
  EXPECT_EQ(s["log-level"], "\"warn\"  # env");
  EXPECT_EQ(s["max-channel-length"], "255  # default");
  EXPECT_EQ(s["drain-timeout"], "10  # default");
  EXPECT_EQ(s["history-prefix"], "[]  # default");
  EXPECT_EQ(s["api-key"], "\"****\"  # file");
  EXPECT_EQ(s["jwt-hs256-secret"], "\"****\"  # env");

  // Without secrets they are empty, not masked.
  r = RunHerald({}, {"--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  s = Settings(r.out);
  EXPECT_EQ(s["api-key"], "\"\"  # default");
  EXPECT_EQ(s["jwt-hs256-secret"], "\"\"  # default");
}

TEST(PrintConfigTest, ListsEverySettingOfHelp) {
  CommandResult help = RunHerald({}, {"--help"});
  ASSERT_EQ(help.exit_code, 0);
  std::set<std::string> flags;
  const std::regex flag(R"(--([a-z0-9-]+))");
  for (std::sregex_iterator it(help.out.begin(), help.out.end(), flag), end; it != end; ++it) {
    flags.insert((*it)[1]);
  }
  for (const char* not_a_setting : {"help", "version", "config", "print-config"}) {
    EXPECT_EQ(flags.erase(not_a_setting), 1u) << not_a_setting;
  }
  ASSERT_GT(flags.size(), 20u);
  CommandResult r = RunHerald({}, {"--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> printed;
  for (const auto& [key, value] : Settings(r.out)) {
    printed.insert(key);
    EXPECT_THAT(value, ::testing::MatchesRegex(".*  # (flag|file|env|default)")) << key;
  }
  EXPECT_EQ(printed, flags);
}

// The output of --print-config is itself a config file: read back, it gives the same values,
// and herald runs with it.
TEST(PrintConfigTest, OutputIsAValidConfigFile) {
  CommandResult first =
      RunHerald({"HERALD_ALLOWED_ORIGINS=https://a.example,https://b.example"},
                {"--node", "n-print", "--history-prefix", "store:=1000:3600,order:=10:60",
                 "--drain-timeout", "0.25", "--max-send-buffer-bytes", "4096", "--print-config"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string path = WriteFile("herald-printed.toml", first.out);
  CommandResult second = RunHerald({}, {"--config", path, "--print-config"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  std::map<std::string, std::string> a = Settings(first.out), b = Settings(second.out);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, value] : a) {
    const std::string without_source = value.substr(0, value.find("  # "));
    // RunHerald's own --ws-listen and --grpc-listen flags win over the file.
    const bool flag = key == "ws-listen" || key == "grpc-listen";
    EXPECT_EQ(b[key], without_source + (flag ? "  # flag" : "  # file")) << key;
  }
  EXPECT_EQ(a["history-prefix"], "[\"store:=1000:3600\", \"order:=10:60\"]  # flag");
  EXPECT_EQ(a["allowed-origins"], "\"https://a.example,https://b.example\"  # env");
  EXPECT_EQ(a["soft-send-buffer-bytes"], "2048  # default");  // follows a small max

  HeraldProcess herald({"--config", path});
  ASSERT_TRUE(herald.ok());
  WsClient c;
  ASSERT_TRUE(c.Connect(herald.ws_url()));
  EXPECT_EQ(c.Frames()[0].welcome().node(), "n-print");
}

// With nothing set, the output is a config file too: an empty list is written `[]`, which reads
// back as none (as `""` does).
TEST(PrintConfigTest, TheDefaultsPrintedAreAValidConfigFile) {
  CommandResult first = RunHerald({}, {"--print-config"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string path = WriteFile("herald-defaults.toml", first.out);
  CommandResult second = RunHerald({}, {"--config", path, "--print-config"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const std::string lists = WriteFile(
      "herald-empty-lists.toml",
      "history-prefix = []\nproxy-rpc-url = []\nwebhook-url = []\nproxy-subscribe-url = \"\"\n");
  CommandResult third = RunHerald({}, {"--config", lists, "--print-config"});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(Settings(third.out)["history-prefix"], "[]  # file");
  EXPECT_EQ(Settings(third.out)["proxy-subscribe-url"], "[]  # file");
}

// The packaged /etc/herald/herald.toml lists every key, commented out, with its default.
TEST(PrintConfigTest, ThePackagedConfigListsEveryKeyWithItsDefault) {
  CommandResult r = RunHerald({}, {"--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(HERALD_PACKAGED_CONFIG);
  ASSERT_TRUE(in.good()) << HERALD_PACKAGED_CONFIG;
  std::map<std::string, std::string> packaged;
  const std::regex commented(R"(^# ([a-z0-9-]+) = (.*)$)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, commented)) packaged[m[1]] = m[2];
  }
  for (const auto& [key, value] : Settings(r.out)) {
    // RunHerald's own listen flags, and the static files' place, which depends on the install.
    if (key == "ws-listen" || key == "grpc-listen" || key == "static-dir") continue;
    ASSERT_TRUE(packaged.count(key) > 0) << key << " is not in " << HERALD_PACKAGED_CONFIG;
    EXPECT_EQ(packaged[key] + "  # default", value) << key;
  }
}

// The README's table of options names every key (an option's first cell: `--key`, or two).
TEST(PrintConfigTest, TheReadmeListsEveryOption) {
  CommandResult r = RunHerald({}, {"--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(HERALD_README);
  ASSERT_TRUE(in.good()) << HERALD_README;
  std::set<std::string> listed;
  const std::regex flag(R"(`--([a-z0-9-]+)`)");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `--", 0) != 0) continue;
    const std::string first_cell = line.substr(0, line.find('|', 1));
    for (std::sregex_iterator it(first_cell.begin(), first_cell.end(), flag), end; it != end;
         ++it) {
      listed.insert((*it)[1]);
    }
  }
  for (const auto& [key, value] : Settings(r.out)) {
    EXPECT_TRUE(listed.count(key) > 0) << "--" << key << " is not in the README's options table";
  }
}

}  // namespace
}  // namespace herald::testing
