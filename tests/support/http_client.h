#ifndef HERALD_TESTS_SUPPORT_HTTP_CLIENT_H_
#define HERALD_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"

namespace herald::testing {

// One HTTP exchange, made with the `curl` binary (no HTTP client library is a dependency).
struct HttpResult {
  int status = 0;                              // 0: no response (see `error`)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string error;  // curl's stderr when it failed
  std::string header(const std::string& name) const {
    auto it = headers.find(absl::AsciiStrToLower(name));
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpCall {
  std::string method = "POST";
  std::string url;
  // Sent as the Content-Type header; empty sends none.
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  absl::Duration timeout = absl::Seconds(20);
};

HttpResult Http(const HttpCall& call);

// POST `body` as JSON to http://<address><path>, with `Authorization: Bearer <api_key>` when
// `api_key` is not empty.
HttpResult PostJson(const std::string& address, const std::string& path, const std::string& body,
                    const std::string& api_key = "");

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_HTTP_CLIENT_H_
