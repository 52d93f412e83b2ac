#include "server/ws/static_files.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace herald::ws {
namespace {

constexpr size_t kMaxFileBytes = 8 << 20;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Percent-decodes a URL path; false on a malformed escape.
bool DecodePath(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::string Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

}  // namespace

StaticFiles::StaticFiles(const std::string& root) : root_(Canonical(root)) {}

std::string StaticFiles::ContentType(absl::string_view filename) {
  const size_t dot = filename.rfind('.');
  const std::string ext =
      dot == absl::string_view::npos ? "" : absl::AsciiStrToLower(filename.substr(dot + 1));
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "md") return "text/markdown; charset=utf-8";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::optional<StaticFiles::Response> StaticFiles::Get(absl::string_view path) const {
  if (root_.empty() || path.empty() || path[0] != '/') return std::nullopt;
  std::string decoded;
  if (!DecodePath(path, &decoded)) return std::nullopt;
  if (decoded.find('\0') != std::string::npos || decoded.find('\\') != std::string::npos) {
    return std::nullopt;
  }
  if (decoded.back() == '/') decoded += "index.html";
  const std::string relative = decoded.substr(1);  // the segments point into it
  std::vector<absl::string_view> segments = absl::StrSplit(relative, '/');
  for (absl::string_view segment : segments) {
    // Empty segments ("//"), "." and "..", and hidden files are never served.
    if (segment.empty() || segment[0] == '.') return std::nullopt;
  }
  const std::string file = Canonical(absl::StrCat(root_, decoded));
  if (file.empty() || !absl::StartsWith(file, absl::StrCat(root_, "/"))) return std::nullopt;
  struct stat st;
  if (stat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && decoded.back() != '/' &&
      stat(absl::StrCat(file, "/index.html").c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    return Response{"", "", absl::StrCat(path, "/")};
  }
  if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<size_t>(st.st_size) > kMaxFileBytes) {
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream body;
  body << in.rdbuf();
  return Response{ContentType(file), body.str(), /*redirect=*/""};
}

}  // namespace herald::ws
