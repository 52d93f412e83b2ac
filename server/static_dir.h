#ifndef HERALD_SERVER_STATIC_DIR_H_
#define HERALD_SERVER_STATIC_DIR_H_

#include <string>
#include <vector>

namespace herald {

// Where herald looks for its demo pages and herald.js when --static-dir (or HERALD_STATIC_DIR, or
// the config file) does not say, first match wins (docs/operations.md "Static files"):
//   1. <folder of the executable>/../share/herald/static — an installed herald
//      (/usr/bin/herald -> /usr/share/herald/static, /opt/herald/bin/herald -> /opt/herald/...);
//   2. the source tree's client/js, by its path relative to the executable's folder, for a
//      herald run from its build tree (build/default/server/herald -> ../../../client/js);
//   3. /usr/local/share/herald/static, then /usr/share/herald/static.
// A folder matches when it holds herald.js. Paths are lexically normalised. Pure functions.
std::vector<std::string> StaticDirCandidates(const std::string& executable_path);

// The first candidate for this process's executable (/proc/self/exe) that holds herald.js, or
// "" when none does; `searched` (if not null) gets every candidate, in order.
std::string FindStaticDir(std::vector<std::string>* searched = nullptr);

}  // namespace herald

#endif  // HERALD_SERVER_STATIC_DIR_H_
