#include "server/config_file.h"

#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/closest_name.h"

namespace herald {

std::vector<CLI::ConfigItem> StrictConfigFile::from_config(std::istream& input) const {
  std::stringstream buffer;
  buffer << input.rdbuf();
  const std::string text = buffer.str();
  Check(text);
  std::istringstream copy(text);
  std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(copy);
  // `key = []` (what --print-config writes for an empty list): no values. CLI11 would refuse an
  // option given zero values; one empty value is what herald drops after parsing.
  for (CLI::ConfigItem& item : items) {
    if (item.inputs.empty()) item.inputs.emplace_back();
  }
  return items;
}

std::vector<std::string> StrictConfigFile::ConfigurableKeys(const CLI::App& app) {
  std::vector<std::string> keys;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_configurable() && !opt->get_lnames().empty()) keys.push_back(opt->get_lnames()[0]);
  }
  return keys;
}

const CLI::Option* StrictConfigFile::Resolve(const std::string& key) const {
  // The names CLI11 itself looks a config key up by: the long flag, or the environment variable.
  if (key.empty() || key.find('.') != std::string::npos) return nullptr;
  const CLI::Option* opt = app_->get_option_no_throw("--" + key);
  return opt != nullptr ? opt : app_->get_option_no_throw(key);
}

void StrictConfigFile::Check(const std::string& text) const {
  options_in_file_.clear();
  const std::string file = config_option_->as<std::string>();
  std::map<const CLI::Option*, int> first_line;
  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = absl::StrCat(file, " line ", i + 1);
    const std::string line(absl::StripAsciiWhitespace(lines[i]));
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      // CLI11 reads [default] as the top level and skips the keys of any other section.
      if (absl::AsciiStrToLower(line) == "[default]") continue;
      throw CLI::ConfigError(absl::StrCat("unexpected section ", line, " in ", where,
                                          ": herald's config file has no sections"));
    }
    const size_t eq = line.find('=');
    if (eq == std::string::npos) {
      throw CLI::ConfigError(
          absl::StrCat("expected 'key = value' in ", where, ", got '", line, "'"));
    }
    std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
    if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') &&
        key.back() == key.front()) {
      key = key.substr(1, key.size() - 2);
    }
    const CLI::Option* opt = Resolve(key);
    if (opt == nullptr) {
      const std::string closest = ClosestName(key, ConfigurableKeys(*app_));
      throw CLI::ConfigError(absl::StrCat("unknown key '", key, "' in ", where,
                                          closest.empty()
                                              ? " (herald --help lists the valid keys)"
                                              : absl::StrCat("; did you mean '", closest, "'?")));
    }
    if (!opt->get_configurable()) {
      throw CLI::ConfigError(
          absl::StrCat("key '", key, "' in ", where, " cannot be set in a config file"));
    }
    if (auto [it, inserted] = first_line.emplace(opt, i + 1); !inserted) {
      throw CLI::ConfigError(absl::StrCat("duplicate key '", key, "' in ", where,
                                          " (already set on line ", it->second, ")"));
    }
    options_in_file_.insert(opt);

    std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    // CLI11 cuts a value at the first '#', even inside quotes: a secret would be cut silently.
    const size_t hash = value.find('#');
    if (!value.empty() && (value.front() == '"' || value.front() == '\'') &&
        hash != std::string::npos && hash < value.find(value.front(), 1)) {
      throw CLI::ConfigError(absl::StrCat("the value of '", key, "' in ", where,
                                          " contains '#', which starts a comment in a config file "
                                          "(set it by flag or environment variable)"));
    }
    // An array may continue over the next lines until one ends with ']', as CLI11 reads it.
    value = std::string(absl::StripAsciiWhitespace(value.substr(0, hash)));
    if (value.size() > 1 && value.front() == '[') {
      while (value.back() != ']' && i + 1 < lines.size()) {
        absl::StrAppend(&value, absl::StripAsciiWhitespace(lines[++i]));
      }
    }
  }
}

}  // namespace herald
