#ifndef HERALD_SERVER_CONFIG_FILE_H_
#define HERALD_SERVER_CONFIG_FILE_H_

#include <istream>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace herald {

// Reads herald's config file for CLI11, strictly: every line is a comment or `key = value` with
// the key of a configurable option of `app`, at most once; anything else throws CLI::ConfigError
// naming the file, the line and, for a misspelt key, the closest valid one. CLI11 alone would
// skip unknown keys, sections and repeated keys silently. Remembers which options the file set,
// for `--print-config`. Used by one App::parse on one thread; not thread-safe.
class StrictConfigFile : public CLI::ConfigTOML {
 public:
  // `app` and `config_option` (the --config option, for the file name) must outlive this.
  StrictConfigFile(const CLI::App* app, const CLI::Option* config_option)
      : app_(app), config_option_(config_option) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

  // Options given a value by the file read last (a flag given too takes precedence over it).
  const std::set<const CLI::Option*>& options_in_file() const { return options_in_file_; }

  // The long names (without "--") of the options a config file may set, in declaration order.
  static std::vector<std::string> ConfigurableKeys(const CLI::App& app);

 private:
  // Throws CLI::ConfigError if a line of `text` is not a valid setting.
  void Check(const std::string& text) const;
  const CLI::Option* Resolve(const std::string& key) const;

  const CLI::App* app_;
  const CLI::Option* config_option_;
  // from_config is const in CLI::Config, yet it is where the file is read.
  mutable std::set<const CLI::Option*> options_in_file_;
};

}  // namespace herald

#endif  // HERALD_SERVER_CONFIG_FILE_H_
