#include "server/http/percent_decode.h"

#include "absl/strings/numbers.h"

namespace herald::http {

std::string PercentDecode(absl::string_view raw) {
  std::string value;
  value.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    int byte = 0;
    if (raw[i] == '%' && i + 2 < raw.size() && absl::SimpleHexAtoi(raw.substr(i + 1, 2), &byte)) {
      value.push_back(static_cast<char>(byte));
      i += 2;
    } else {
      value.push_back(raw[i] == '+' ? ' ' : raw[i]);
    }
  }
  return value;
}

}  // namespace herald::http
