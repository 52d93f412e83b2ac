#include "server/http/percent_decode.h"

#include <algorithm>

#include "absl/strings/numbers.h"

namespace herald::http {

std::string PercentDecode(absl::string_view raw) {
  // Most values (a token: base64url and dots) have nothing to decode: one copy. Two memchr
  // scans, where find_first_of tests each byte against the set.
  size_t i = std::min(raw.find('%'), raw.find('+'));
  if (i == absl::string_view::npos) return std::string(raw);
  std::string value(raw.substr(0, i));
  value.reserve(raw.size());
  for (; i < raw.size(); ++i) {
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
