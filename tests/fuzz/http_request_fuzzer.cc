// Fuzzes the HTTP/1.1 request reader of the control API's server: http::RequestParser (Node's
// Boost.Beast's parser under Herald's bounds) on a connection's bytes, pipelined requests
// included.
//
// Input: the first byte picks how the rest is cut into reads (1 to 64 bytes each, or all at
// once); the rest is the bytes a client sent on one connection.
// Invariants: no crash/leak/UB (sanitizers); every Feed takes at most what it was given, and a
// kNeedMore leaves untaken only an incomplete head (at most max_head_bytes) or chunk line or
// trailer (within the request's framing bound), to be given again; no request exceeds the head or
// body bound; a refusal is one of the documented statuses; and the requests and the final refusal
// are the same whether the bytes come in one read or in many (the parser's result does not depend
// on TCP segmentation).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/http/request_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace herald::fuzz {
namespace {

constexpr http::ParserLimits kLimits{/*max_head_bytes=*/1024, /*max_body_bytes=*/4096};
constexpr size_t kFramingBound = 2 * kLimits.max_head_bytes + 2 * kLimits.max_body_bytes;

// What one connection's bytes parse to: each request in a canonical text, then the refusal.
struct Outcome {
  std::vector<std::string> requests;
  int error_status = 0;
  std::string error_message;
  bool operator==(const Outcome& o) const {
    return requests == o.requests && error_status == o.error_status &&
           error_message == o.error_message;
  }
};

std::string Describe(const http::Request& r) {
  std::string out =
      absl::StrCat(r.method, " ", r.target, " 1.", r.version_minor,
                   r.keep_alive ? " keep" : " close", r.chunked ? " chunked" : "", "\n");
  size_t head = r.method.size() + r.target.size();
  for (size_t i = 0; i < r.header_count(); ++i) {
    absl::StrAppend(&out, r.header_name(i), ": ", r.header_value(i), "\n");
    head += r.header_name(i).size() + r.header_value(i).size();
  }
  Check(head <= kLimits.max_head_bytes, "a request's head is over the bound");
  Check(r.body.size() <= kLimits.max_body_bytes, "a request's body is over the bound");
  absl::StrAppend(&out, "\n", r.body);
  return out;
}

// Feeds `input` in reads of `read` bytes (0: all at once), as the server does.
Outcome Parse(absl::string_view input, size_t read) {
  Outcome outcome;
  http::RequestParser parser(kLimits);
  std::string buffer;  // read and not yet taken
  size_t offset = 0;
  while (true) {
    if (offset < input.size()) {
      const size_t n = read == 0 ? input.size() - offset : std::min(read, input.size() - offset);
      buffer.append(input.data() + offset, n);
      offset += n;
    }
    bool need_more = false;
    while (!need_more) {
      size_t used = 0;
      const http::RequestParser::Event event = parser.Feed(buffer, &used);
      Check(used <= buffer.size(), "Feed took more than it was given");
      buffer.erase(0, used);
      switch (event) {
        case http::RequestParser::Event::kNeedMore:
          Check(buffer.size() <= (parser.head_complete() ? kFramingBound : kLimits.max_head_bytes),
                "kNeedMore left more than a head or a chunk line untaken");
          need_more = true;
          break;
        case http::RequestParser::Event::kHeadComplete:
          Check(parser.head_complete(), "kHeadComplete before the head");
          break;
        case http::RequestParser::Event::kRequest:
          outcome.requests.push_back(Describe(parser.TakeRequest()));
          break;
        case http::RequestParser::Event::kError: {
          const int s = parser.error_status();
          Check(s == 400 || s == 413 || s == 431 || s == 505,
                absl::StrCat("undocumented refusal status ", s));
          outcome.error_status = s;
          outcome.error_message = parser.error_message();
          return outcome;
        }
      }
    }
    if (offset >= input.size()) return outcome;
  }
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t read = data[0] % 65;  // 0: one read
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const herald::fuzz::Outcome whole = herald::fuzz::Parse(input, 0);
  if (read != 0) {
    const herald::fuzz::Outcome split = herald::fuzz::Parse(input, read);
    herald::fuzz::Check(whole == split, "the outcome depends on how the bytes were cut into reads");
  }
  return 0;
}
