#ifndef HERALD_SERVER_CORE_CLIENT_PROTOCOL_H_
#define HERALD_SERVER_CORE_CLIENT_PROTOCOL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "herald/v1/client.pb.h"
#include "server/auth/jwt.h"
#include "server/core/node.h"
#include "server/core/session.h"

namespace herald::core {

// The client protocol (docs/protocol.md): what a WebSocket client's frames do. Opens and closes
// sessions on the node (the `welcome` frame, auth deadlines), decodes each text frame once
// (bounded first), applies the frame-rate limit and token authentication (connect, refresh,
// channel permissions: client_protocol_auth.cc, client_protocol_limits.cc) and dispatches
// subscribe, unsubscribe, message, ping, ack, nack, join and leave to the node. Owns nothing but
// its configuration; borrows the node and the token verifier, which must outlive it. Every
// method is thread-safe and never blocks: replies are queued on the session.
class ClientProtocol {
 public:
  // With a `verifier`, every connection must authenticate with a token (handshake `?token=` or a
  // first `connect` frame); without one, clients are anonymous (development mode).
  ClientProtocol(Node* node, const auth::JwtVerifier* verifier);

  // Adds an open session to the node and sends it `welcome`.
  absl::Status Register(std::shared_ptr<Session> session);
  // Removes a closed session from the node; `code` and `reason` describe how it closed (for the
  // DISCONNECT event).
  void Unregister(Session& session, int code = 1006, absl::string_view reason = "");
  // Handles one text frame from a client; replies go back on the session.
  void OnClientFrame(const std::shared_ptr<Session>& session, absl::string_view text);

  bool auth_required() const { return verifier_ != nullptr; }
  // Verifies a client token (UNAUTHENTICATED naming the bad part); FAILED_PRECONDITION when no
  // verifier is configured.
  absl::StatusOr<auth::Claims> VerifyToken(absl::string_view token) const;
  // Called by the transport when a deadline requested with Session::ScheduleAuthDeadline has
  // passed: closes a session that never authenticated (4003) or whose token expired without a
  // refresh (4001); otherwise schedules the next check.
  void CheckAuthDeadline(const std::shared_ptr<Session>& session);

 private:
  void Dispatch(const std::shared_ptr<Session>& session, const v1::ClientFrame& frame);
  void OnSubscribe(const std::shared_ptr<Session>& session, uint32_t id,
                   const v1::ClientSubscribe& sub);
  void OnMessage(const std::shared_ptr<Session>& session, uint32_t id,
                 const v1::ClientMessage& message);
  // A client's publication, where CheckPublishPermission allows it: published like a backend's,
  // answered with `published` (its position), and reported to watchers (PUBLISH).
  void OnPublish(const std::shared_ptr<Session>& session, uint32_t id,
                 const v1::ClientPublish& pub);
  // Who is in a presence channel the connection may subscribe to.
  void OnPresence(const std::shared_ptr<Session>& session, uint32_t id, const std::string& channel);
  void OnAck(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientAck& ack);
  void OnNack(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientNack& nack);
  void OnJoinOrLeave(const std::shared_ptr<Session>& session, uint32_t id, bool join,
                     const std::string& queue);
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
  void OnConnect(const std::shared_ptr<Session>& session, uint32_t id, const std::string& token);
  void OnRefresh(const std::shared_ptr<Session>& session, uint32_t id, const std::string& token);
  // PERMISSION_DENIED (naming `field`) when the session's token does not allow `channel`.
  absl::Status CheckChannelPermission(const Session& session, absl::string_view field,
                                      absl::string_view channel) const;
  // PERMISSION_DENIED unless the token's `publish` claim allows `channel`, or its prefix is in
  // Limits::client_publish_prefixes and the connection may subscribe to it.
  absl::Status CheckPublishPermission(const Session& session, absl::string_view channel) const;

  Node* const node_;
  const Limits& limits_;
  const auth::JwtVerifier* const verifier_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CLIENT_PROTOCOL_H_
