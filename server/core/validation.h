#ifndef HERALD_SERVER_CORE_VALIDATION_H_
#define HERALD_SERVER_CORE_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "herald/v1/order.pb.h"
#include "server/core/limits.h"

namespace herald::core {

// Input checks shared by the WebSocket and gRPC edges. Each error message starts with the name
// of the offending field, e.g. "channel: must not be empty". Pure functions.

// A channel name: 1..limits.max_channel_length bytes of [A-Za-z0-9_:.@/=-].
absl::Status ValidateChannel(absl::string_view field, absl::string_view channel,
                             const Limits& limits);
// An order as PublishOrder accepts it: id, store_id, version > 0, known status, and ids that
// fit in a channel name.
absl::Status ValidateOrder(absl::string_view field, const herald::v1::Order& order,
                           const Limits& limits);
// A WebSocket close code a backend may ask for (1000 or 3000..4999) and a reason of <= 123
// bytes.
absl::Status ValidateClose(int code, absl::string_view reason);
// Whether `origin` may open a WebSocket under `allowed` (see Limits::allowed_origins).
bool OriginAllowed(absl::string_view origin, const std::vector<std::string>& allowed);

// The channels an order version is routed to, in this order: orders, store:<store_id>,
// customer:<customer_id> (when set), order:<id>.
std::vector<std::string> OrderChannels(const herald::v1::Order& order);
// The JSON of a publication's `data` (`field` names it in errors): INVALID_ARGUMENT when it is
// missing or longer than Limits::max_publication_bytes.
absl::StatusOr<std::string> DataJson(absl::string_view field, bool has_data,
                                     const google::protobuf::Message& data, const Limits& limits);
// The same for a request that may give its data as JSON text instead (`data_json`, named
// "<field>_json" in errors): exactly one of the two must be set. The text is bounded by
// Limits::max_publication_bytes before it is read, then checked by json::CheckJson (one value,
// UTF-8, at most Limits::max_json_depth levels) and returned without its surrounding
// whitespace, byte for byte: no google.protobuf.Value is built.
absl::StatusOr<std::string> DataJson(absl::string_view field, bool has_data,
                                     const google::protobuf::Message& data,
                                     absl::string_view data_json, const Limits& limits);
// Data that json::CheckJson already accepted (a client frame's, checked with the frame), as the
// client sent it: INVALID_ARGUMENT "<field>: larger than N bytes" over
// Limits::max_publication_bytes, else the text without its surrounding whitespace, byte for byte.
absl::StatusOr<std::string> RawDataJson(absl::string_view field, absl::string_view json,
                                        const Limits& limits);
// Whether `channel` starts with one of `prefixes`.
bool HasPrefix(absl::string_view channel, const std::vector<std::string>& prefixes);
// Whether `channel` is a presence channel (Limits::presence_prefixes).
bool IsPresenceChannel(absl::string_view channel, const Limits& limits);
// Whether `status` ends an order's lifecycle.
bool IsTerminal(herald::v1::OrderStatus status);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_VALIDATION_H_
