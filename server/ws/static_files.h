#ifndef HERALD_SERVER_WS_STATIC_FILES_H_
#define HERALD_SERVER_WS_STATIC_FILES_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace herald::ws {

// Serves the files below one directory (the demo pages and herald.js) for GET and HEAD: maps a
// URL path to a file with a Content-Type by extension; `/` and `dir/` mean `index.html`, and
// `dir` (a folder with an index.html) redirects to `dir/`, so relative links work. Refuses
// everything that could leave the root or expose what is not meant to be served: `..` and `.`
// segments (also percent-encoded), hidden files, backslashes, NUL, and symlinks resolving outside
// the root. Immutable after construction; thread-safe.
class StaticFiles {
 public:
  struct Response {
    std::string content_type;
    std::string body;
    // Non-empty: no file, but a redirect to this path (`path` with a trailing slash).
    std::string redirect;
  };

  // `root` must be an existing directory (checked by configuration).
  explicit StaticFiles(const std::string& root);

  // The file for `path` (the request target without its query), or nullopt when there is no
  // such servable file.
  std::optional<Response> Get(absl::string_view path) const;

  // The Content-Type for a file name, by extension.
  static std::string ContentType(absl::string_view filename);

 private:
  std::string root_;  // canonical, without a trailing slash
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_STATIC_FILES_H_
