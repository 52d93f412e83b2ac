#include "server/static_dir.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace herald {

namespace fs = std::filesystem;

std::vector<std::string> StaticDirCandidates(const std::string& executable_path) {
  std::vector<std::string> out;
  const fs::path dir = fs::path(executable_path).parent_path();
  if (!dir.empty()) {
    out.push_back((dir / ".." / "share" / "herald" / "static").lexically_normal().string());
    out.push_back((dir / HERALD_BUILD_TREE_STATIC_DIR).lexically_normal().string());
  }
  out.push_back("/usr/local/share/herald/static");
  out.push_back("/usr/share/herald/static");
  for (std::string& p : out) {
    if (p.size() > 1 && p.back() == '/') p.pop_back();
  }
  return out;
}

std::string FindStaticDir(std::vector<std::string>* searched) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const std::vector<std::string> candidates = StaticDirCandidates(ec ? "" : exe.string());
  if (searched != nullptr) *searched = candidates;
  for (const std::string& dir : candidates) {
    if (fs::is_regular_file(fs::path(dir) / "herald.js", ec)) return dir;
  }
  return "";
}

}  // namespace herald
