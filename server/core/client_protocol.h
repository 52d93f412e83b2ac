#ifndef HERALD_SERVER_CORE_CLIENT_PROTOCOL_H_
#define HERALD_SERVER_CORE_CLIENT_PROTOCOL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "herald/v1/client.pb.h"
#include "server/auth/jwt.h"
#include "server/core/mutex.h"
#include "server/core/node.h"
#include "server/core/proxy.h"
#include "server/core/session.h"
#include "server/core/welcome_frames.h"

namespace herald::core {

// The client protocol (docs/protocol.md): what a WebSocket client's frames do. Opens and closes
// sessions on the node (the `welcome` frame, auth deadlines), decodes each text frame once
// (bounded first), applies the frame-rate limit and token authentication (connect, refresh,
// channel permissions: client_protocol_auth.cc, client_protocol_limits.cc) and dispatches
// subscribe, unsubscribe, message, ping, ack, nack, join and leave to the node. With a proxy,
// connect, subscribe, message and rpc frames that it routes go to an HTTP backend first and are
// finished when it answers (client_protocol_proxy.cc). Owns nothing but its configuration and
// the frames held while a proxied connect is on its way; borrows the node, the token verifier
// and the proxy, which must outlive it. Every method is thread-safe and never blocks: replies
// are queued on the session.
class ClientProtocol {
 public:
  // With a `verifier`, every connection must authenticate with a token (handshake `?token=` or a
  // first `connect` frame); without one, clients are anonymous (development mode). With a
  // `proxy` that routes connect, every connection must authenticate with a `connect` frame that
  // the backend accepts (or, with a verifier too, a token).
  ClientProtocol(Node* node, const auth::JwtVerifier* verifier, Proxy* proxy = nullptr);

  // Adds an open session to the node and sends it `welcome`.
  absl::Status Register(std::shared_ptr<Session> session);
  // Removes a closed session from the node; `code` and `reason` describe how it closed (for the
  // DISCONNECT event).
  void Unregister(Session& session, int code = 1006, absl::string_view reason = "");
  // Handles one text frame from a client; replies go back on the session.
  void OnClientFrame(const std::shared_ptr<Session>& session, absl::string_view text);

  bool auth_required() const { return verifier_ != nullptr || connect_proxied_; }
  // Whether `connect` frames go to a backend (--proxy-connect-url).
  bool connect_proxied() const { return connect_proxied_; }
  // Verifies a client token (UNAUTHENTICATED naming the bad part); FAILED_PRECONDITION when no
  // verifier is configured.
  absl::StatusOr<auth::Claims> VerifyToken(absl::string_view token) const;
  // Called by the transport when a deadline requested with Session::ScheduleAuthDeadline has
  // passed: closes a session that never authenticated (4003) or whose token expired without a
  // refresh (4001); otherwise schedules the next check.
  void CheckAuthDeadline(const std::shared_ptr<Session>& session);

 private:
  // `data_text`: the bytes of the frame's data as the client sent them, when ParseClientFrame
  // kept them (else empty).
  void Dispatch(const std::shared_ptr<Session>& session, const v1::ClientFrame& frame,
                absl::string_view data_text);
  void OnSubscribe(const std::shared_ptr<Session>& session, uint32_t id,
                   const v1::ClientSubscribe& sub);
  void OnMessage(const std::shared_ptr<Session>& session, uint32_t id,
                 const v1::ClientMessage& message);
  // A client's publication, where CheckPublishPermission allows it: published like a backend's
  // (its data as the client sent it, `data_text`, when there is one), answered with `published`
  // (its position), and reported to watchers (PUBLISH).
  void OnPublish(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientPublish& pub,
                 absl::string_view data_text);
  // Who is in a presence channel the connection may subscribe to.
  void OnPresence(const std::shared_ptr<Session>& session, uint32_t id, const std::string& channel);
  void OnAck(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientAck& ack);
  void OnNack(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientNack& nack);
  void OnJoinOrLeave(const std::shared_ptr<Session>& session, uint32_t id, bool join,
                     const std::string& queue);
  // Subscribes after the checks (and the backend's yes, with a subscribe proxy).
  void SubscribeNow(const std::shared_ptr<Session>& session, uint32_t id,
                    const v1::ClientSubscribe& sub);
  // Replies `{id, <kind>: {}}` (acked, sent, pong) when the frame had an id.
  void ReplyEmpty(Session& session, uint32_t id, v1::ServerFrame reply);

  // Limits (client_protocol_limits.cc). False (after replying, and closing with 4029 when the
  // client keeps going) when `session` is over its frame rate; the frame must not be acted on.
  bool AdmitFrameRate(const std::shared_ptr<Session>& session, uint32_t id);
  // Takes a slot of `user` for a session that authenticated with a `connect` frame; false
  // (after replying RESOURCE_EXHAUSTED and closing with 4030) when the user is at its limit.
  bool AdmitUser(const std::shared_ptr<Session>& session, uint32_t id, const std::string& user);

  // Authentication (client_protocol_auth.cc).
  void ArmAuthDeadline(Session& session);
  // False (after replying and closing) when an unauthenticated session sends anything but
  // `connect` while tokens are required.
  bool AdmitFrame(const std::shared_ptr<Session>& session, const v1::ClientFrame& frame);
  // After an error reply to a frame that is not a valid one (malformed, unknown type): closes
  // with 4003 when tokens are required and `session` has not authenticated, as for any frame
  // other than `connect` first.
  void RefuseIfUnauthenticated(Session& session);
  void OnConnect(const std::shared_ptr<Session>& session, uint32_t id, const std::string& token);
  void OnRefresh(const std::shared_ptr<Session>& session, uint32_t id, const std::string& token);
  // PERMISSION_DENIED (naming `field`) when the session's token does not allow `channel`.
  absl::Status CheckChannelPermission(const Session& session, absl::string_view field,
                                      absl::string_view channel) const;
  // PERMISSION_DENIED unless the token's `publish` claim allows `channel`, or its prefix is in
  // Limits::client_publish_prefixes and the connection may subscribe to it.
  absl::Status CheckPublishPermission(const Session& session, absl::string_view channel) const;

  // Proxies to HTTP backends (client_protocol_proxy.cc).
  bool ProxiesConnect(const v1::ClientConnect& connect) const;
  void ProxyConnect(const std::shared_ptr<Session>& session, uint32_t id,
                    const v1::ClientConnect& connect);
  void FinishConnect(const std::shared_ptr<Session>& session, uint32_t id,
                     absl::StatusOr<std::string> body);
  // Accepts the backend's connect result; false after refusing it (bad result, user limit).
  bool AcceptConnect(const std::shared_ptr<Session>& session, uint32_t id,
                     const google::protobuf::Value& result);
  bool ProxiesSubscribe(const std::string& channel) const;
  void ProxySubscribe(const std::shared_ptr<Session>& session, uint32_t id,
                      const v1::ClientSubscribe& sub);
  bool ProxiesMessage() const;
  void ProxyMessage(const std::shared_ptr<Session>& session, uint32_t id,
                    const v1::ClientMessage& message);
  void OnRpc(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientRpc& rpc);
  // The backend's answer to a call for `session`: its reply, or nullopt after the error frame
  // or the close it called for was sent (the call failed, or the backend refused).
  std::optional<v1::ProxyReply> ReadReply(const std::shared_ptr<Session>& session, uint32_t id,
                                          ProxyEvent event, absl::StatusOr<std::string> body);
  // While a proxied connect is on its way, the session's further frames wait for its answer:
  // true when `frame` was held (or refused, over the bound). EndConnect dispatches them, in
  // order, once the backend accepted, or drops them.
  bool HoldWhileConnecting(const std::shared_ptr<Session>& session, v1::ClientFrame& frame,
                           absl::string_view data_text);
  void EndConnect(const std::shared_ptr<Session>& session, bool accepted);
  // Whether a proxied connect of `session` is waiting for its backend.
  bool Connecting(const Session& session);

  Node* const node_;
  const Limits& limits_;
  const auth::JwtVerifier* const verifier_;
  Proxy* const proxy_;
  const bool connect_proxied_;
  const WelcomeFrames welcome_;
  std::atomic<size_t> connecting_count_{0};
  core::Mutex connecting_mu_;
  struct HeldFrame {
    v1::ClientFrame frame;
    std::string data_text;
  };
  absl::flat_hash_map<const Session*, std::vector<HeldFrame>> connecting_
      ABSL_GUARDED_BY(connecting_mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CLIENT_PROTOCOL_H_
