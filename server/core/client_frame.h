#ifndef HERALD_SERVER_CORE_CLIENT_FRAME_H_
#define HERALD_SERVER_CORE_CLIENT_FRAME_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "herald/v1/client.pb.h"
#include "server/json/json_check.h"

namespace herald::core {

// Largest part of a client frame outside its `data` (a `connect` carries a token of up to
// auth::kMaxTokenBytes). protobuf's JSON parser costs about 130 ns a byte; the bulk a frame may
// legitimately have is its data.
inline constexpr size_t kMaxFrameBytesOutsideData = 12 * 1024;

// Reads a client frame that json::CheckJson accepted (`top` is what it noted) into `frame` with
// protobuf's JSON parser. First, INVALID_ARGUMENT "frame: larger than N bytes outside its data"
// when more than kMaxFrameBytesOutsideData bytes lie outside the `data` of its kind (message,
// publish, rpc, connect; the whole frame for the others), before any parsing. Pure function.
absl::Status ParseClientFrame(absl::string_view text, const json::JsonTopLevel& top,
                              v1::ClientFrame* frame);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CLIENT_FRAME_H_
