#ifndef HERALD_SERVER_CORE_PROTOCOL_H_
#define HERALD_SERVER_CORE_PROTOCOL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "herald/v1/client.pb.h"
#include "server/core/engine.h"
#include "server/json/json_check.h"

namespace herald::core {

// WebSocket close codes Herald uses (docs/protocol.md, "Close codes").
inline constexpr int kCloseNormal = 1000;
inline constexpr int kCloseGoingAway = 1001;        // server shutting down
inline constexpr int kCloseUnsupportedData = 1003;  // binary frame
inline constexpr int kCloseInvalidPayload = 1007;   // invalid UTF-8 (websocketpp)
inline constexpr int kClosePolicyViolation = 1008;
inline constexpr int kCloseMessageTooBig = 1009;  // frame over max_frame_bytes
inline constexpr int kCloseServerRestart = 1012;
inline constexpr int kCloseTokenExpired = 4001;        // token expired without a refresh
inline constexpr int kCloseUnauthorized = 4003;        // invalid token, or no `connect` in time
inline constexpr int kCloseSlowConsumer = 4008;        // send buffer over max_send_buffer_bytes
inline constexpr int kCloseIdleTimeout = 4010;         // nothing received for idle_timeout_ms
inline constexpr int kCloseRateLimited = 4029;         // kept sending over max_frame_rate
inline constexpr int kCloseTooManyConnections = 4030;  // user over max_connections_per_user

// Encoders for server frames. Publications and pushes are composed around data that is already
// JSON, so a publication's data is encoded once however many channels and sockets it reaches;
// the result is exactly the protobuf JSON mapping of herald.v1.ServerFrame. Pure functions.

// `channel` must have passed ValidateChannel (it needs no JSON escaping).
std::string EncodePublication(absl::string_view channel, uint64_t offset,
                              absl::string_view data_json, bool ack_requested = false);
std::string EncodePush(absl::string_view data_json);
// {"memberJoined":{"channel":…,"member":<member_json>}} (or "memberLeft"); `channel` is a
// validated name (nothing to escape), `member_json` a v1::Member.
std::string EncodeMemberEvent(bool joined, absl::string_view channel,
                              absl::string_view member_json);
// The `subscribed` reply, composed around the stored publications' JSON (no parse, however many
// are recovered or in the snapshot). `recovered` is printed, false included, when the subscribe
// asked to recover; `publications` (the missed ones) and `snapshot` when not null, empty or not,
// each with `ackRequested` when it asked for acks. `channel` must have passed ValidateChannel.
std::string EncodeSubscribed(uint32_t id, absl::string_view channel, const StreamPosition& position,
                             std::optional<bool> recovered,
                             const std::vector<StoredPublication>* publications,
                             const std::vector<StoredPublication>* snapshot);
// The `welcome` frame (one per connection), written with RapidJSON's writer: the same JSON
// EncodeFrame prints for a ServerFrame holding `welcome`, without its reflection printer.
std::string EncodeWelcome(const herald::v1::Welcome& welcome);
std::string EncodeFrame(const herald::v1::ServerFrame& frame);
std::string EncodeError(uint32_t id, const absl::Status& status);

// Protobuf JSON mapping helpers with Herald's options (camelCase names; fields holding their
// default value are omitted unless `print_defaults`, which prints scalars and lists with zero
// values too but still omits unset message fields).
absl::Status ToJson(const google::protobuf::Message& message, std::string* out,
                    bool print_defaults = false);
// Strict: unknown fields are an error. The document is first bounded by json::CheckJson (syntax,
// UTF-8, at most `max_depth` levels of nesting) in one linear pass, so protobuf's parser never
// sees input it would take long over.
absl::Status FromJson(absl::string_view json, google::protobuf::Message* message, size_t max_depth);
// The protobuf half of FromJson, for a document that already passed json::CheckJson.
absl::Status FromCheckedJson(absl::string_view json, google::protobuf::Message* message);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_PROTOCOL_H_
