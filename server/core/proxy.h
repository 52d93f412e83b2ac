#ifndef HERALD_SERVER_CORE_PROXY_H_
#define HERALD_SERVER_CORE_PROXY_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "herald/v1/proxy.pb.h"
#include "server/core/done.h"
#include "server/core/session.h"

namespace herald::core {

// What Herald tells or asks an HTTP backend (docs/api.md, "Webhooks"). The first four are calls
// whose answer steers the client; the others are notifications.
enum class ProxyEvent {
  kConnect,     // a `connect` frame: accept (user, data, channels) or refuse
  kSubscribe,   // a `subscribe` frame: allow or refuse
  kMessage,     // a `message` frame: forwarded, `sent` once the backend took it
  kRpc,         // an `rpc` frame: the backend's result becomes `rpcResult`
  kDisconnect,  // a connection closed (after --disconnect-grace for a user, as WatchEvents)
  kJoin,        // a subscription to a presence channel went live
  kLeave,       // ... and ended
  kOnline,      // a user's first connection opened (USER_ONLINE)
  kOffline,     // a user's last connection closed and the grace period passed (USER_OFFLINE)
};
inline constexpr int kProxyEventCount = 9;
// "connect", "subscribe", "message", "rpc", "disconnect", "join", "leave", "online", "offline".
absl::string_view ProxyEventName(ProxyEvent event);
inline bool IsNotification(ProxyEvent event) { return event >= ProxyEvent::kDisconnect; }

// Totals since start, for /metrics (core::RenderProxyMetrics).
struct ProxyStats {
  // By outcome, per event: `ok` a 2xx reply; `http_error` another status; `unreachable` no
  // reply (connection refused, reset, DNS); `timeout` none within the timeout; `too_large` a
  // reply over the size limit; `rejected` not sent (queue full, shutting down).
  struct Outcomes {
    uint64_t ok = 0;
    uint64_t http_error = 0;
    uint64_t unreachable = 0;
    uint64_t timeout = 0;
    uint64_t too_large = 0;
    uint64_t rejected = 0;
  };
  Outcomes requests[kProxyEventCount];
  // Notifications: attempts repeated after a failure; dropped because the queue was full, after
  // the last attempt failed, or still queued at shutdown; queued now (waiting, in flight or
  // waiting to be retried).
  uint64_t notification_retries = 0;
  uint64_t notifications_dropped_queue_full = 0;
  uint64_t notifications_dropped_failed = 0;
  uint64_t notifications_dropped_shutdown = 0;
  uint64_t notifications_queued = 0;
};

// Herald's way to HTTP backends: the connect, subscribe, message and RPC proxies and the
// webhook notifications, as the core sees them. proxy::HttpProxy (server/proxy) implements it
// over libcurl on a thread of its own, so the core stays transport-free: it builds the JSON
// bodies and reads the replies (ClientProtocol, core::Webhooks); an implementation only carries
// them, signed. Thread-safe; no method blocks.
class Proxy {
 public:
  virtual ~Proxy() = default;

  // Whether `event` goes to a backend for `key`: the channel of a subscribe, join or leave, the
  // method of an rpc, "" otherwise (routes are per event and per prefix of the key).
  virtual bool Routes(ProxyEvent event, absl::string_view key) const = 0;

  // POSTs `body` (a JSON object) to the backend of (event, key) and hands `done` the body of a
  // 2xx reply. Fails with UNAVAILABLE when there is no route, the backend cannot be reached,
  // answers another status, or the proxy is full or stopping; DEADLINE_EXCEEDED when no reply
  // came within the timeout; INTERNAL when the reply is larger than the limit. Each message
  // says which, for the client's error frame. `done` is called exactly once, with no lock of the
  // proxy held: on the proxy's thread, or at once on the caller's when the call is refused.
  virtual void Call(ProxyEvent event, absl::string_view key, std::string body,
                    Done<std::string> done) = 0;

  // Queues a notification: POSTed to the backend of (event, key), retried with backoff on
  // failure, dropped (and counted) when the queue is full or every attempt failed.
  virtual void Notify(ProxyEvent event, absl::string_view key, std::string body) = 0;
};

// --- The JSON the core sends and reads (herald.v1.ProxyRequest / ProxyReply). Pure functions. ---

// A request about `session` with the fields every event has: event, node, connection id, user,
// time.
v1::ProxyRequest NewProxyRequest(ProxyEvent event, absl::string_view node, const Session& session,
                                 absl::Time now);
std::string EncodeProxyRequest(const v1::ProxyRequest& request);
// Reads a call's 2xx reply body: empty or `{}` (success without result), or one of `result`,
// `error`, `disconnect`, checked (a close code the client may be sent). INTERNAL naming the
// problem ("backend reply: ...") for anything else, bounded first like every untrusted document.
absl::StatusOr<v1::ProxyReply> ParseProxyReply(absl::string_view body, size_t max_depth);
// The status a backend's `error` stands for: its code when that is a canonical status name other
// than OK, else `fallback`; its message, or "refused by the backend".
absl::Status ProxyErrorStatus(const v1::ProxyError& error, absl::StatusCode fallback);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_PROXY_H_
