#ifndef HERALD_SERVER_CORE_LIMITS_H_
#define HERALD_SERVER_CORE_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace herald::core {

// Every limit and tunable of the broker, in one place (like uWebSockets' behaviour struct).
// The defaults are the documented defaults of `herald` (README "Configuration"); main.cc fills
// this from flags, environment and the config file. Plain value type.
struct Limits {
  // Largest WebSocket message a client may send; larger ones close the connection with 1009.
  size_t max_frame_bytes = 64 * 1024;
  // Channels one connection may be subscribed to at once.
  size_t max_subscriptions_per_connection = 128;
  // Longest channel name, in bytes.
  size_t max_channel_length = 255;
  // Bytes queued to one connection and not yet written; over this the connection is closed as a
  // slow consumer (close code 4008).
  size_t max_send_buffer_bytes = 8 * 1024 * 1024;
  // Concurrent WebSocket connections per process; handshakes past it get HTTP 503.
  size_t max_connections = 100000;
  // Origins allowed to open WebSockets ("https://shop.example"); empty allows any origin.
  // "*" also allows any. A request without an Origin header (non-browser client) is allowed.
  std::vector<std::string> allowed_origins;
  // When tokens are required: how long a connection that did not pass `?token=` has to send its
  // `connect` frame before it is closed with 4003.
  uint32_t auth_timeout_ms = 5000;
  // Interval at which clients are asked to ping (advertised in `welcome`).
  uint32_t ping_interval_ms = 25000;
  // Largest page ListConnections returns.
  uint32_t max_page_size = 1000;
  // Largest Broadcast (number of channels).
  size_t max_broadcast_channels = 1000;
  // Largest publication data (encoded JSON) accepted through the control API.
  size_t max_publication_bytes = 1024 * 1024;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_LIMITS_H_
