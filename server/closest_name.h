#ifndef HERALD_SERVER_CLOSEST_NAME_H_
#define HERALD_SERVER_CLOSEST_NAME_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace herald {

// Edit distance between `a` and `b` counting insertions, deletions, substitutions and swaps of
// two adjacent characters as one edit each (optimal string alignment). Case-sensitive.
int EditDistance(absl::string_view a, absl::string_view b);

// The candidate that `name` most likely misspells, for "did you mean" hints; empty when none is
// close enough to be a plausible typo (at most max(1, |name| / 3) edits). Case and `_` vs `-`
// are ignored, so `API_KEY` finds `api-key`. Ties go to the earliest candidate.
std::string ClosestName(absl::string_view name, const std::vector<std::string>& candidates);

}  // namespace herald

#endif  // HERALD_SERVER_CLOSEST_NAME_H_
