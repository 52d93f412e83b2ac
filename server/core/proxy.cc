#include "server/core/proxy.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {

absl::string_view ProxyEventName(ProxyEvent event) {
  switch (event) {
    case ProxyEvent::kConnect:
      return "connect";
    case ProxyEvent::kSubscribe:
      return "subscribe";
    case ProxyEvent::kMessage:
      return "message";
    case ProxyEvent::kRpc:
      return "rpc";
    case ProxyEvent::kDisconnect:
      return "disconnect";
    case ProxyEvent::kJoin:
      return "join";
    case ProxyEvent::kLeave:
      return "leave";
    case ProxyEvent::kOnline:
      return "online";
    case ProxyEvent::kOffline:
      return "offline";
  }
  return "unknown";
}

v1::ProxyRequest NewProxyRequest(ProxyEvent event, absl::string_view node, const Session& session,
                                 absl::Time now) {
  v1::ProxyRequest request;
  request.set_event(std::string(ProxyEventName(event)));
  request.set_node(std::string(node));
  request.set_connection_id(session.id());
  request.set_user(session.user());
  request.set_time_ms(absl::ToUnixMillis(now));
  return request;
}

std::string EncodeProxyRequest(const v1::ProxyRequest& request) {
  std::string out;
  // Serialising a well-formed generated message cannot fail.
  ToJson(request, &out).IgnoreError();
  return out;
}

absl::StatusOr<v1::ProxyReply> ParseProxyReply(absl::string_view body, size_t max_depth) {
  v1::ProxyReply reply;
  if (absl::StripAsciiWhitespace(body).empty()) return reply;
  json::JsonTopLevel top;
  if (absl::Status st = json::CheckJson(body, max_depth, &top); !st.ok()) {
    return absl::InternalError(absl::StrCat("backend reply: not valid JSON: ", st.message()));
  }
  if (absl::Status st = FromCheckedJson(body, &reply); !st.ok()) {
    return absl::InternalError(
        absl::StrCat("backend reply: expected {\"result\":…}, {\"error\":…} or "
                     "{\"disconnect\":…}: ",
                     st.message()));
  }
  const int parts =
      (reply.has_result() ? 1 : 0) + (reply.has_error() ? 1 : 0) + (reply.has_disconnect() ? 1 : 0);
  if (parts > 1) {
    return absl::InternalError("backend reply: set only one of result, error and disconnect");
  }
  if (reply.has_disconnect()) {
    const v1::ProxyDisconnect& d = reply.disconnect();
    if (absl::Status st = ValidateClose(static_cast<int>(d.code()), d.reason()); !st.ok()) {
      return absl::InternalError(absl::StrCat("backend reply: disconnect.", st.message()));
    }
  }
  return reply;
}

absl::Status ProxyErrorStatus(const v1::ProxyError& error, absl::StatusCode fallback) {
  absl::StatusCode code = fallback;
  for (int c = 1; c <= 16; ++c) {
    const auto candidate = static_cast<absl::StatusCode>(c);
    if (absl::StatusCodeToString(candidate) == error.code()) code = candidate;
  }
  return absl::Status(code, error.message().empty() ? "refused by the backend" : error.message());
}

}  // namespace herald::core
