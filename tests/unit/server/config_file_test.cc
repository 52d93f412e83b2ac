#include "server/config_file.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A small App shaped like herald's: long flags with environment variables, a --config option
// whose file name the reader quotes, and a flag that no config file may set.
class StrictConfigFileTest : public ::testing::Test {
 protected:
  StrictConfigFileTest() {
    config_ = app_.set_config("--config");
    config_->default_str("herald.toml");
    app_.add_option("--max-frame-bytes", frame_bytes_)->envname("HERALD_MAX_FRAME_BYTES");
    app_.add_option("--api-key", api_key_)->envname("HERALD_API_KEY");
    app_.add_option("--history-prefix", prefixes_)->delimiter(',');
    app_.add_flag("--print-config")->configurable(false);
    reader_ = std::make_shared<StrictConfigFile>(&app_, config_);
  }

  // The message of the CLI::ConfigError that reading `text` throws; empty when it reads.
  std::string Error(const std::string& text) {
    std::istringstream in(text);
    try {
      items_ = reader_->from_config(in);
    } catch (const CLI::ConfigError& e) {
      return e.what();
    }
    return "";
  }

  CLI::App app_;
  CLI::Option* config_ = nullptr;
  size_t frame_bytes_ = 0;
  std::string api_key_;
  std::vector<std::string> prefixes_;
  std::shared_ptr<StrictConfigFile> reader_;
  std::vector<CLI::ConfigItem> items_;
};

TEST_F(StrictConfigFileTest, ReadsValidSettingsAndRemembersThem) {
  EXPECT_EQ(Error("# comment\n\n; also a comment\nmax-frame-bytes = 4096\r\n"
                  "api-key = \"s3cret\"  # trailing comment\n"
                  "history-prefix = [\"a:=1:2\",\n  \"b:=3:4\"]\n"),
            "");
  ASSERT_EQ(items_.size(), 3u);
  EXPECT_EQ(items_[0].name, "max-frame-bytes");
  EXPECT_THAT(items_[0].inputs, ElementsAre("4096"));
  EXPECT_THAT(items_[1].inputs, ElementsAre("s3cret"));
  EXPECT_THAT(items_[2].inputs, ElementsAre("a:=1:2", "b:=3:4"));
  EXPECT_EQ(reader_->options_in_file().size(), 3u);
  EXPECT_EQ(reader_->options_in_file().count(app_.get_option("--api-key")), 1u);
  EXPECT_EQ(reader_->options_in_file().count(app_.get_option("--history-prefix")), 1u);
}

TEST_F(StrictConfigFileTest, UnknownKeyNamesFileLineAndClosestKey) {
  EXPECT_EQ(Error("api-key = \"k\"\n\nmax-frame-byte = 4096\n"),
            "unknown key 'max-frame-byte' in herald.toml line 3; did you mean 'max-frame-bytes'?");
  EXPECT_EQ(Error("api_key = \"secret\"\n"),
            "unknown key 'api_key' in herald.toml line 1; did you mean 'api-key'?");
  EXPECT_EQ(Error("port = 80\n"),
            "unknown key 'port' in herald.toml line 1 (herald --help lists the valid keys)");
  // A key after a multi-line array is counted on its own line.
  EXPECT_EQ(Error("history-prefix = [\"a:=1:2\",\n\"b:=3:4\"]\nthreads = 2\n"),
            "unknown key 'threads' in herald.toml line 3 (herald --help lists the valid keys)");
}

TEST_F(StrictConfigFileTest, TheFileNameIsTheOneInUse) {
  config_->add_result("/etc/herald/herald.toml");
  EXPECT_THAT(Error("max-frame-byte = 1\n"), HasSubstr("in /etc/herald/herald.toml line 1;"));
}

TEST_F(StrictConfigFileTest, RefusesWhatCli11WouldSkipOrMisread) {
  EXPECT_EQ(Error("max-frame-bytes = 1\nmax-frame-bytes = 2\n"),
            "duplicate key 'max-frame-bytes' in herald.toml line 2 (already set on line 1)");
  EXPECT_EQ(Error("[server]\napi-key = \"k\"\n"),
            "unexpected section [server] in herald.toml line 1: herald's config file has no "
            "sections");
  EXPECT_EQ(Error("api-key\n"), "expected 'key = value' in herald.toml line 1, got 'api-key'");
  EXPECT_EQ(Error("x\n"), "expected 'key = value' in herald.toml line 1, got 'x'");
  EXPECT_EQ(Error("print-config = true\n"),
            "key 'print-config' in herald.toml line 1 cannot be set in a config file");
  EXPECT_EQ(Error("config = \"other.toml\"\n"),
            "key 'config' in herald.toml line 1 cannot be set in a config file");
  EXPECT_THAT(Error("api-key = \"abc#def\"\n"),
              HasSubstr("the value of 'api-key' in herald.toml line 1 contains '#'"));
  EXPECT_THAT(Error("server.api-key = \"k\"\n"), HasSubstr("unknown key 'server.api-key'"));
}

TEST_F(StrictConfigFileTest, AcceptsTheNamesCli11Accepts) {
  EXPECT_EQ(Error("[default]\nHERALD_API_KEY = \"k\"\n\"max-frame-bytes\" = 300\n"), "");
  EXPECT_EQ(reader_->options_in_file().size(), 2u);
}

TEST_F(StrictConfigFileTest, ConfigurableKeysAreTheLongFlagsAFileMaySet) {
  EXPECT_THAT(StrictConfigFile::ConfigurableKeys(app_),
              ElementsAre("max-frame-bytes", "api-key", "history-prefix"));
}

}  // namespace
}  // namespace herald
