#include "server/closest_name.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace herald {
namespace {

// Lower case, `_` as `-`: how an option name is most often mistyped without being a typo.
std::string Normalize(absl::string_view s) {
  std::string out = absl::AsciiStrToLower(s);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

}  // namespace

int EditDistance(absl::string_view a, absl::string_view b) {
  const size_t n = a.size(), m = b.size();
  // d[i][j]: distance between a[0, i) and b[0, j).
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string ClosestName(absl::string_view name, const std::vector<std::string>& candidates) {
  const std::string wanted = Normalize(name);
  const int limit = std::max<int>(1, static_cast<int>(wanted.size()) / 3);
  const std::string* best = nullptr;
  int best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const int distance = EditDistance(wanted, Normalize(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = &candidate;
    }
  }
  return best != nullptr ? *best : std::string();
}

}  // namespace herald
