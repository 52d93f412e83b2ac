// ClientProtocol: token authentication of client connections (connect/refresh frames, auth
// deadlines, channel permissions). Kept apart from client_protocol.cc, which only calls these
// hooks.
#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/client_protocol.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {
namespace {

// A close reason must fit a control frame (123 bytes).
std::string CloseReason(absl::string_view prefix, absl::string_view detail) {
  std::string reason = absl::StrCat(prefix, detail);
  if (reason.size() > 123) reason.resize(123);
  return reason;
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(prefix, st.message()));
}

}  // namespace

absl::StatusOr<auth::Claims> ClientProtocol::VerifyToken(absl::string_view token) const {
  if (verifier_ == nullptr) {
    return absl::FailedPreconditionError("token: this server verifies no tokens");
  }
  return verifier_->Verify(token, node_->Now());
}

void ClientProtocol::ArmAuthDeadline(Session& session) {
  if (!auth_required()) return;
  std::shared_ptr<const auth::Claims> grant = session.grant();
  session.ScheduleAuthDeadline(grant != nullptr ? grant->expires_at
                                                : session.meta().connected_at +
                                                      absl::Milliseconds(limits_.auth_timeout_ms));
}

void ClientProtocol::CheckAuthDeadline(const std::shared_ptr<Session>& session) {
  if (!auth_required()) return;
  const absl::Time now = node_->Now();
  std::shared_ptr<const auth::Claims> grant = session->grant();
  if (grant == nullptr) {
    const absl::Time deadline =
        session->meta().connected_at + absl::Milliseconds(limits_.auth_timeout_ms);
    if (now < deadline) {
      session->ScheduleAuthDeadline(deadline);  // the timer fired early
      return;
    }
    // A connect frame came in time and its backend is still answering: --proxy-timeout-ms
    // bounds that, and FinishConnect grants or closes.
    if (Connecting(*session)) return;
    session->Close(kCloseUnauthorized, absl::StrCat("unauthorized: no connect frame within ",
                                                    limits_.auth_timeout_ms, " ms"));
    return;
  }
  if (now < grant->expires_at) {
    session->ScheduleAuthDeadline(grant->expires_at);
    return;
  }
  session->Close(kCloseTokenExpired, "token expired");
}

void ClientProtocol::RefuseIfUnauthenticated(Session& session) {
  if (!auth_required() || session.grant() != nullptr) return;
  session.Close(kCloseUnauthorized, "unauthorized: the first frame must be connect");
}

bool ClientProtocol::AdmitFrame(const std::shared_ptr<Session>& session,
                                const v1::ClientFrame& frame) {
  if (!auth_required() || frame.kind_case() == v1::ClientFrame::kConnect) return true;
  std::shared_ptr<const auth::Claims> grant = session->grant();
  if (grant == nullptr) {
    node_->ReplyError(
        *session, frame.id(),
        absl::UnauthenticatedError(
            connect_proxied_ ? "connect: the first frame must be connect (the connect proxy's "
                               "backend authenticates it)"
                             : "connect: the first frame must be connect with a token (or pass "
                               "?token= in the WebSocket URL)"));
    session->Close(kCloseUnauthorized, "unauthorized: the first frame must be connect");
    return false;
  }
  if (node_->Now() >= grant->expires_at) {  // the deadline timer has not run yet
    session->Close(kCloseTokenExpired, "token expired");
    return false;
  }
  return true;
}

void ClientProtocol::OnConnect(const std::shared_ptr<Session>& session, uint32_t id,
                               const std::string& token) {
  v1::ServerFrame reply;
  reply.set_id(id);
  if (verifier_ == nullptr) {
    // Development mode: nothing to verify the token with, so the connection stays anonymous.
    reply.mutable_connected()->set_user(session->user());
    node_->Reply(*session, reply);
    return;
  }
  if (std::shared_ptr<const auth::Claims> grant = session->grant(); grant != nullptr) {
    node_->ReplyError(*session, id,
                      absl::FailedPreconditionError(
                          absl::StrCat("connect: the connection is already authenticated as '",
                                       grant->user, "'; use refresh to replace its token")));
    return;
  }
  absl::StatusOr<auth::Claims> claims = verifier_->Verify(token, node_->Now());
  if (!claims.ok()) {
    node_->ReplyError(*session, id, Prefixed("connect.", claims.status()));
    // Only a token past its `exp` is expired (4001: fetch a fresh one); one without a usable
    // `exp` is invalid (4003), as a fresh token of the same making would be.
    const bool expired = absl::StartsWith(claims.status().message(), "token.exp: expired at");
    session->Close(
        expired ? kCloseTokenExpired : kCloseUnauthorized,
        CloseReason(expired ? "token expired: " : "invalid token: ", claims.status().message()));
    return;
  }
  if (!AdmitUser(session, id, claims->user)) return;  // the user is at its connection limit
  auto grant = std::make_shared<const auth::Claims>(*std::move(claims));
  session->SetGrant(grant);
  if (!node_->IndexUser(session)) return;  // closed meanwhile
  node_->Announce(*session);               // CONNECT, now with the user
  reply.mutable_connected()->set_user(grant->user);
  reply.mutable_connected()->set_expires_at_ms(absl::ToUnixMillis(grant->expires_at));
  node_->Reply(*session, reply);
  ArmAuthDeadline(*session);
}

void ClientProtocol::OnRefresh(const std::shared_ptr<Session>& session, uint32_t id,
                               const std::string& token) {
  v1::ServerFrame reply;
  reply.set_id(id);
  if (verifier_ == nullptr) {
    reply.mutable_refreshed();
    node_->Reply(*session, reply);
    return;
  }
  std::shared_ptr<const auth::Claims> current = session->grant();  // set: AdmitFrame checked
  absl::StatusOr<auth::Claims> claims = verifier_->Verify(token, node_->Now());
  if (!claims.ok()) {
    // The connection keeps its current token until that one expires.
    node_->ReplyError(*session, id, Prefixed("refresh.", claims.status()));
    return;
  }
  if (claims->user != current->user) {
    node_->ReplyError(*session, id,
                      absl::PermissionDeniedError(absl::StrCat("refresh.token.sub: '", claims->user,
                                                               "' is not the connection's user '",
                                                               current->user, "'")));
    return;
  }
  auto grant = std::make_shared<const auth::Claims>(*std::move(claims));
  session->SetGrant(grant);
  node_->RelistPresence(session);  // with the new token's `info`
  reply.mutable_refreshed()->set_expires_at_ms(absl::ToUnixMillis(grant->expires_at));
  node_->Reply(*session, reply);
  ArmAuthDeadline(*session);
}

absl::Status ClientProtocol::CheckChannelPermission(const Session& session, absl::string_view field,
                                                    absl::string_view channel) const {
  if (!auth_required()) return absl::OkStatus();
  std::shared_ptr<const auth::Claims> grant = session.grant();
  if (grant != nullptr && auth::ChannelAllowed(*grant, channel)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(field, ": '", channel, "' is not allowed by the ",
                                                  grant != nullptr && grant->from_connect_proxy
                                                      ? "connect backend's allow list"
                                                      : "token's channels claim"));
}

absl::Status ClientProtocol::CheckPublishPermission(const Session& session,
                                                    absl::string_view channel) const {
  std::shared_ptr<const auth::Claims> grant = session.grant();
  if (grant != nullptr && auth::PublishAllowed(*grant, channel)) return absl::OkStatus();
  if (HasPrefix(channel, limits_.client_publish_prefixes) &&
      CheckChannelPermission(session, "publish.channel", channel).ok()) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("publish.channel: '", channel,
                   "' is not allowed: clients publish only where the token's publish claim or "
                   "--client-publish-prefixes allows it"));
}

}  // namespace herald::core
