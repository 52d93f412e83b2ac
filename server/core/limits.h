#ifndef HERALD_SERVER_CORE_LIMITS_H_
#define HERALD_SERVER_CORE_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace herald::core {

// Every limit and tunable of the broker, in one place (like uWebSockets' behaviour struct).
// The defaults are the documented defaults of `herald` (README "Configuration"); main.cc fills
// this from flags, environment and the config file. Plain value type.
// How much of a channel's stream is kept for recovery and History: the newest `size`
// publications, each for at most `ttl`.
struct HistoryPolicy {
  size_t size = 100;
  absl::Duration ttl = absl::Minutes(5);
};

struct Limits {
  // Largest WebSocket message a client may send; larger ones close the connection with 1009.
  size_t max_frame_bytes = 64 * 1024;
  // Deepest nesting of arrays and objects in any JSON document Herald reads (client frames, HTTP
  // API bodies, publication data); deeper documents are refused with INVALID_ARGUMENT before they
  // are parsed. Bounds the parse cost of a frame to linear in its size. At most 48: protobuf
  // refuses messages nested over 100 deep, and each JSON level of `data` is two of them.
  size_t max_json_depth = 32;
  // Channels one connection may be subscribed to at once.
  size_t max_subscriptions_per_connection = 128;
  // Longest channel name, in bytes.
  size_t max_channel_length = 255;
  // Bytes queued to one connection and not yet written; over this the connection is closed as a
  // slow consumer (close code 4008).
  size_t max_send_buffer_bytes = 8 * 1024 * 1024;
  // A connection Herald closes (slow consumer, drain, Disconnect, protocol error) is gone within
  // this long whether or not the peer reads: past it the socket is reset. Also websocketpp's wait
  // for the peer's answer to the close frame.
  uint32_t close_timeout_ms = 5000;
  // Concurrent WebSocket connections per process; handshakes past it get HTTP 503.
  size_t max_connections = 100000;
  // Concurrent WebSocket connections from one client IP; handshakes past it get HTTP 429.
  // 0: no limit. Generous by default because whole offices and mobile carriers (CGNAT) share an
  // address; lower it when clients are known to have their own.
  size_t max_connections_per_ip = 1000;
  // Concurrent connections of one authenticated user (JWT `sub`); past it a `?token=` handshake
  // gets HTTP 429 and a `connect` frame gets RESOURCE_EXHAUSTED and close 4030. 0: no limit.
  size_t max_connections_per_user = 100;
  // Client frames per second one connection may send: a token bucket of `frame_burst` frames
  // refilled at this rate. A frame over it gets a RESOURCE_EXHAUSTED error and is not acted on;
  // the `max_rate_refusals`-th such frame since the bucket was last full also closes the
  // connection with 4029. 0: no limit.
  double max_frame_rate = 100;
  double frame_burst = 200;
  uint32_t max_rate_refusals = 10;
  // HTTP/JSON control API requests per second, per API key (with --api-key, every caller shares
  // the key's bucket) or else per client IP: a token bucket of `api_burst` requests. Over it:
  // HTTP 429 with Retry-After. gRPC calls are not limited. 0: no limit.
  double api_rate = 1000;
  double api_burst = 2000;
  // Origins allowed to open WebSockets ("https://shop.example"); empty allows any origin.
  // "*" also allows any. A request without an Origin header (non-browser client) is allowed.
  std::vector<std::string> allowed_origins;
  // When tokens are required: how long a connection that did not pass `?token=` has to send its
  // `connect` frame before it is closed with 4003.
  uint32_t auth_timeout_ms = 5000;
  // Interval at which clients are asked to ping (advertised in `welcome`). Herald also sends a
  // WebSocket ping to a connection it has heard nothing from for this long, which browsers answer
  // on their own.
  uint32_t ping_interval_ms = 25000;
  // A connection from which nothing at all (no frame of any kind: data, ping, pong) has arrived
  // for longer than this is closed with 4010 (close_timeout_ms later its socket is reset if the
  // peer is gone). 0: never closed for silence. Greater than ping_interval_ms, so a live client
  // has the difference to answer Herald's ping. Default 2 × ping_interval_ms + 10 s; config.cc
  // derives it from a configured ping interval unless it is set itself.
  uint32_t idle_timeout_ms = 60000;
  // TCP keepalive on accepted sockets (SO_KEEPALIVE): the first probe after this many idle
  // seconds, then one every interval, and the kernel drops the connection after `count`
  // unanswered probes. A backstop below the WebSocket pings (idle_timeout_ms 0, sockets that
  // never finish the handshake): a dead idle peer is found in idle + interval × count seconds.
  uint32_t tcp_keepalive_idle_s = 60;
  uint32_t tcp_keepalive_interval_s = 10;
  uint32_t tcp_keepalive_count = 6;
  // Largest page ListConnections returns.
  uint32_t max_page_size = 1000;
  // Largest Broadcast (number of channels).
  size_t max_broadcast_channels = 1000;
  // Largest publication data (encoded JSON) accepted through the control API.
  size_t max_publication_bytes = 1024 * 1024;

  // History of every channel, unless a prefix rule below matches (longest prefix wins).
  HistoryPolicy history;
  std::vector<std::pair<std::string, HistoryPolicy>> history_by_prefix;
  // A Publish repeated with the same idempotency key within this window is not published again.
  absl::Duration idempotency_window = absl::Minutes(5);
  // Orders in a terminal status (delivered, cancelled, rejected) stay in snapshots and in the
  // stale-version book for this long.
  absl::Duration order_retention = absl::Minutes(10);
  // A user's DISCONNECT event is held back this long and dropped if the user reconnects in time.
  absl::Duration disconnect_grace = absl::ZeroDuration();
  // Longest AckRequest.wait_ms.
  absl::Duration max_ack_wait = absl::Seconds(30);
  // Channels whose subscribers are tracked in the presence registry (Presence, PresenceStats):
  // those starting with one of these prefixes. Empty: none (presence costs a registry update
  // per subscribe and unsubscribe).
  std::vector<std::string> presence_prefixes;
  // Channels whose subscribers are told when a member's subscription goes live and ends
  // (memberJoined / memberLeft frames). Empty: none.
  std::vector<std::string> join_leave_prefixes;
  // Channels a client may publish to (`publish` frame) when it may subscribe to them, on top of
  // the token's `publish` claim. Empty: none (clients publish only where a token allows it).
  std::vector<std::string> client_publish_prefixes;
  // How long a control call waits for the other nodes' answers (ControlBus::Survey) before it
  // answers with the nodes that did.
  uint32_t control_timeout_ms = 2000;
  // Tasks waiting for a worker, per queue; more are refused with RESOURCE_EXHAUSTED.
  size_t max_queue_depth = 10000;
  // Tasks one worker holds at once; further tasks wait for an ack.
  size_t max_tasks_per_worker = 16;
  // Default ack deadline and time-to-live of a task.
  absl::Duration task_ack_deadline = absl::Seconds(30);
  absl::Duration task_ttl = absl::Minutes(10);
  // Events buffered per WatchEvents watcher (default; the request may ask for another size).
  size_t watcher_buffer = 10000;
  // Send-buffer bytes past which a connection is "behind": queued order updates for the same
  // order are then conflated to the latest version instead of all being sent.
  size_t soft_send_buffer_bytes = 1024 * 1024;
  // Largest HTTP request body on the WebSocket port, any path (the HTTP/JSON control API, SSE).
  // Checked against Content-Length before the body is read; larger requests get HTTP 413.
  // Twice max_publication_bytes by default, so a maximal publication fits with JSON escaping.
  size_t max_http_body_bytes = 2 * 1024 * 1024;

  // Webhooks and proxies to HTTP backends (docs/api.md, "Webhooks"; server/proxy).
  // How long a backend has to answer one request (a connect, subscribe, message or rpc call, or
  // one attempt of a notification); past it a call fails with DEADLINE_EXCEEDED.
  uint32_t proxy_timeout_ms = 3000;
  // Largest reply body read from a backend; a larger reply fails the call with INTERNAL.
  size_t proxy_max_reply_bytes = 1024 * 1024;
  // Calls (connect, subscribe, message, rpc) waiting for a backend at once; more fail at once
  // with UNAVAILABLE.
  size_t proxy_max_pending = 10000;
  // WebSocket handshake headers sent to the connect proxy (ProxyRequest.headers), when present.
  std::vector<std::string> proxy_headers = {"Cookie"};
  // Notifications queued (waiting, in flight or waiting for a retry); more are dropped and
  // counted.
  size_t webhook_queue_size = 10000;
  // Attempts per notification (1: no retry); when the last one fails it is dropped and counted.
  uint32_t webhook_attempts = 5;
  // Wait before the first retry of a notification, doubled for each next one (at most 30 s).
  uint32_t webhook_backoff_ms = 500;
  // Notifications in flight at once (so they may arrive out of order).
  uint32_t webhook_concurrency = 8;
  // Largest HTTP request head (request line and headers) the HTTP/1.1 server of the API reads;
  // a larger one gets 431 and its connection is closed.
  size_t max_http_head_bytes = 16 * 1024;
  // A keep-alive HTTP connection with no request in progress, or whose request stopped arriving
  // half-way, is closed after this long without a byte.
  uint32_t http_idle_timeout_ms = 30000;
  // Server-Sent Events (GET /api/v1/events): the newest events kept for resuming a stream with
  // Last-Event-ID (at most this many, holding at most sse_replay_bytes), and the interval of its
  // comment heartbeats.
  size_t sse_replay_events = 10000;
  size_t sse_replay_bytes = 16 * 1024 * 1024;
  uint32_t sse_heartbeat_ms = 15000;
};

// The history policy that applies to `channel`.
const HistoryPolicy& HistoryFor(const Limits& limits, const std::string& channel);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_LIMITS_H_
