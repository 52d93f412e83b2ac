#ifndef HERALD_SERVER_JSON_JSON_CHECK_H_
#define HERALD_SERVER_JSON_JSON_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rapidjson/fwd.h"

namespace herald::json {

// What CheckJson learned about a document's top level on the way: the keys of a top-level object
// and its "id" when that is an unsigned integer (a number or a string of digits, as the protobuf
// JSON mapping accepts). Lets an error reply name the request's id without parsing twice.
struct JsonTopLevel {
  std::optional<uint32_t> id;
  std::vector<std::string> keys;
  // Where the value of each key in `keys` lies in the document: [first byte, one past the last),
  // without surrounding whitespace; lets a caller take a member's JSON text as it was sent.
  std::vector<std::pair<size_t, size_t>> value_spans;
  // For each key in `keys` whose value is an object with a member "data": that member's value
  // span, as above, and how many "data" members the object has ({0, 0} and 0 when none). Lets a
  // client frame's data be read on its own without a second pass.
  struct Data {
    std::pair<size_t, size_t> span;
    int count = 0;
  };
  std::vector<Data> data;
};

// Checks, in one linear pass and before any expensive parser sees it, that `json` is one
// well-formed JSON value (UTF-8 validated) whose arrays and objects nest at most `max_depth`
// levels. protobuf's JSON parser takes time far above linear in the nesting depth (a 32 KB frame
// of nested arrays kept a thread busy for 40 s), so every untrusted document goes through this
// first. INVALID_ARGUMENT names the byte offset of the problem. With `unique_keys`, an object
// that gives a key twice is refused too, in protobuf's words ("Repeated map key: 'k' is already
// set."), as ToValue refuses it: for JSON kept as text rather than read into a Value. Pure
// function.
absl::Status CheckJson(absl::string_view json, size_t max_depth, JsonTopLevel* top = nullptr,
                       bool unique_keys = false);

// CheckJson's checks, with its words for what it refuses, and RapidJSON's DOM of `json` built in
// the same pass: for a small document read whole right away (a token's header and claims), where
// checking first and parsing again cost twice. `out` keeps its allocator; on an error its content
// is unspecified. Thread-safe (each thread reuses one reader; json_check.cc).
absl::Status ParseJson(absl::string_view json, size_t max_depth, rapidjson::Document* out);

// `text` when it is valid UTF-8, else `text` with every byte outside printable ASCII escaped
// (\xNN): for messages that quote request bytes (a header, a path) and must go into JSON.
std::string ValidUtf8(absl::string_view text);

}  // namespace herald::json

#endif  // HERALD_SERVER_JSON_JSON_CHECK_H_
