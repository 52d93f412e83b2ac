#ifndef HERALD_SERVER_CORE_CLIENT_FRAME_H_
#define HERALD_SERVER_CORE_CLIENT_FRAME_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "herald/v1/client.pb.h"
#include "server/json/json_check.h"

namespace herald::core {

// Largest part of a client frame outside its `data` (a `connect` carries a token of up to
// auth::kMaxTokenBytes): protobuf's JSON parser, which costs about 130 ns a byte, reads only
// this part.
inline constexpr size_t kMaxFrameBytesOutsideData = 12 * 1024;

// Reads a client frame that json::CheckJson accepted (`top` is what it noted) into `frame`. The
// `data` of a frame that has one (message, publish, rpc, connect) is read by RapidJSON into its
// google.protobuf.Value; protobuf's JSON parser reads the rest, with `null` in the data's place,
// and checks it exactly as it would the whole frame (field names, types). INVALID_ARGUMENT
// "frame: larger than N bytes outside its data" before any parsing when that rest is too large;
// otherwise protobuf's error for the rest, then "<kind>.data: Repeated map key: …" for a key the
// data gives twice (protobuf's words, as when it read the data). So one frame costs about what
// RapidJSON takes to read it, at most 64 KiB, plus protobuf's time for at most
// kMaxFrameBytesOutsideData. Pure function.
// `data_text`, when given, is set to the data's own bytes within `text` when the data was read
// that way (empty otherwise): a client publication is carried as sent (ClientProtocol::OnPublish).
absl::Status ParseClientFrame(absl::string_view text, const json::JsonTopLevel& top,
                              v1::ClientFrame* frame, absl::string_view* data_text = nullptr);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CLIENT_FRAME_H_
