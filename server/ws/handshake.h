#ifndef HERALD_SERVER_WS_HANDSHAKE_H_
#define HERALD_SERVER_WS_HANDSHAKE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/http/request_parser.h"

namespace herald::ws {

// Why an HTTP request is not a WebSocket opening handshake Herald can accept (RFC 6455 §4.2.1):
// the status to answer, extra headers, and a one-line body.
struct HandshakeRefusal {
  int status;
  std::string header_name;  // "" or e.g. "Sec-WebSocket-Version"
  std::string header_value;
  std::string body;
};

// Whether a request asks to upgrade to WebSocket (`Upgrade` lists `websocket`). A request asking
// for another protocol (`Upgrade: h2c`) is served as plain HTTP/1.1: a server may ignore an
// upgrade it does not speak (RFC 9110 §7.8).
bool WantsWebSocket(const http::Request& request);

// Checks the WebSocket parts of an upgrade request: GET on HTTP/1.1 or later, `Upgrade:
// websocket`, `Connection: upgrade`, `Sec-WebSocket-Version: 13` (otherwise 426 naming 13) and a
// `Sec-WebSocket-Key` of 16 base64-encoded bytes. Herald's own rules (path, origin, token,
// connection limits) are the endpoint's. Pure.
std::optional<HandshakeRefusal> CheckHandshake(const http::Request& request);

// The `101 Switching Protocols` response to a request CheckHandshake accepted, with
// `Sec-WebSocket-Accept` computed from its key (SHA-1 and base64, OpenSSL and abseil). No
// subprotocol and no extension is negotiated. Pure.
std::string SwitchingProtocols(absl::string_view key);

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_HANDSHAKE_H_
