#include "tests/support/http_client.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/herald_process.h"

namespace herald::testing {

HttpResult Http(const HttpCall& call) {
  std::vector<std::string> argv = {"curl", "--silent",  "--show-error", "--dump-header",
                                   "-",    "--request", call.method};
  // An empty value removes the header curl would add on its own.
  argv.insert(argv.end(), {"--header", absl::StrCat("Content-Type: ", call.content_type)});
  if (call.content_type.empty()) argv.back() = "Content-Type:";
  for (const std::string& h : call.headers) argv.insert(argv.end(), {"--header", h});
  if (call.method != "GET" || !call.body.empty()) {
    argv.insert(argv.end(), {"--data-binary", call.body});
  }
  argv.push_back(call.url);
  argv.insert(argv.begin(), "/usr/bin/env");
  CommandResult run = RunCommand(argv, call.timeout);

  HttpResult result;
  absl::string_view out = run.out;
  // Header blocks (an interim "100 Continue" comes first when the server sends one).
  while (absl::StartsWith(out, "HTTP/")) {
    size_t end = out.find("\r\n\r\n");
    if (end == absl::string_view::npos) break;
    std::vector<absl::string_view> lines = absl::StrSplit(out.substr(0, end), "\r\n");
    out.remove_prefix(end + 4);
    std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], ' ');
    if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &result.status)) break;
    result.headers.clear();
    for (size_t i = 1; i < lines.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
      result.headers[absl::AsciiStrToLower(kv.first)] =
          std::string(absl::StripAsciiWhitespace(kv.second));
    }
    if (result.status >= 200) break;
  }
  result.body = std::string(out);
  if (run.exit_code != 0 || result.status == 0) {
    result.error = absl::StrCat("curl exit ", run.exit_code, ": ", run.err);
  }
  return result;
}

HttpResult PostJson(const std::string& address, const std::string& path, const std::string& body,
                    const std::string& api_key) {
  HttpCall call;
  call.url = absl::StrCat("http://", address, path);
  call.body = body;
  if (!api_key.empty()) call.headers.push_back(absl::StrCat("Authorization: Bearer ", api_key));
  return Http(call);
}

}  // namespace herald::testing
