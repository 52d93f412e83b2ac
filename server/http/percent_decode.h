#ifndef HERALD_SERVER_HTTP_PERCENT_DECODE_H_
#define HERALD_SERVER_HTTP_PERCENT_DECODE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace herald::http {

// A query-string component decoded: "%XX" becomes its byte and "+" a space; a "%" not followed
// by two hex digits stays as it is. Linear in `raw`. Pure function.
std::string PercentDecode(absl::string_view raw);

}  // namespace herald::http

#endif  // HERALD_SERVER_HTTP_PERCENT_DECODE_H_
