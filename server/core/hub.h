#ifndef HERALD_SERVER_CORE_HUB_H_
#define HERALD_SERVER_CORE_HUB_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/auth/jwt.h"
#include "server/core/api_executor.h"
#include "server/core/client_protocol.h"
#include "server/core/engine.h"
#include "server/core/limits.h"
#include "server/core/node.h"
#include "server/core/node_control.h"
#include "server/core/proxy.h"
#include "server/core/webhooks.h"

namespace herald::core {

// One node's core, assembled: the Node (sessions, subscriptions, fan-out) on an Engine, the
// ClientProtocol the WebSocket edge hands client frames to, the ApiExecutor the control API
// (gRPC and HTTP/JSON) runs its calls on, and the NodeControl that answers the engine's control
// bus for this node and relays its events to other nodes' watchers. Owns the four and drives their
// periodic work (Tick). With a proxy, also the node's webhook notifications (Webhooks), and the
// client protocol sends what the proxy routes to HTTP backends. Borrows the engine, the frame
// factory, the token verifier and the proxy, which must outlive it (the proxy must also have
// stopped calling back before it goes). Thread-safe as its parts are.
class Hub {
 public:
  using Clock = std::function<absl::Time()>;
  // With a `verifier`, every connection must authenticate with a token (see ClientProtocol).
  Hub(
      Limits limits, std::string node, Engine* engine, const FrameFactory* frames,
      const auth::JwtVerifier* verifier = nullptr, Clock clock = [] { return absl::Now(); },
      Proxy* proxy = nullptr);
  ~Hub();

  const Limits& limits() const { return limits_; }
  // The hub's clock (injected; tests move it), for the transport's timestamps and timers.
  absl::Time Now() const { return clock_(); }
  Node& node() { return node_; }
  ClientProtocol& protocol() { return protocol_; }
  ApiExecutor& api() { return api_; }

  // Periodic work: ack-wait deadlines and held-back DISCONNECT events (the node's), expiry of
  // history, idempotency keys and terminal orders, task deadlines and TTLs (the engine's). Call
  // every few tens of milliseconds: an ack wait ends at most one period after its deadline.
  void Tick();
  // Ends every pending ack wait now (acked=false), and every later one as soon as its publish
  // is done: for shutdown, when no client will ack and Tick no longer runs.
  void EndAckWaits() { node_.acks().ExpireAll(); }

 private:
  const Limits limits_;
  const Clock clock_;
  Engine* const engine_;
  // Before the node, which keeps its presence in the registry the webhooks wrap.
  const std::unique_ptr<Webhooks> webhooks_;
  Node node_;
  NodeControl control_;
  ClientProtocol protocol_;
  ApiExecutor api_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_HUB_H_
