// ClientProtocol: the frames an HTTP backend decides through core::Proxy (connect, subscribe,
// message, rpc; docs/api.md "Webhooks"). Kept apart from client_protocol.cc, which only calls
// these hooks. Every call finishes in the proxy's completion, on the proxy's thread: it only
// queues frames on the session and calls the node, as the I/O threads do.
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/client_protocol.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {
namespace {

using v1::ServerFrame;

// "Try Again Later" (RFC 6455 §7.4.1, IANA registry): the connect backend failed (unreachable,
// an error status, no answer in time, a reply that does not read), so the client reconnects
// with its backoff.
constexpr int kCloseTryAgainLater = 1013;
// Frames a connection may send between a proxied `connect` and its answer; they are handled in
// order after it. More are refused with RESOURCE_EXHAUSTED.
constexpr size_t kMaxHeldFrames = 256;
// Longest user name, as for a token's `sub`.
constexpr size_t kMaxUserBytes = 255;

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

// --- connect ------------------------------------------------------------------------------------

bool ClientProtocol::ProxiesConnect(const v1::ClientConnect& connect) const {
  // With a JWT key too, a connect that carries a token is verified here; one without goes to
  // the backend.
  return connect_proxied_ && (verifier_ == nullptr || connect.token().empty());
}

void ClientProtocol::ProxyConnect(const std::shared_ptr<Session>& session, uint32_t id,
                                  const v1::ClientConnect& connect) {
  if (std::shared_ptr<const auth::Claims> grant = session->grant(); grant != nullptr) {
    node_->ReplyError(
        *session, id,
        absl::FailedPreconditionError(absl::StrCat(
            "connect: the connection is already authenticated as '", grant->user, "'")));
    return;
  }
  {
    core::MutexLock lock(&connecting_mu_);
    if (!connecting_.try_emplace(session.get()).second) return;  // cannot happen: frames wait
    connecting_count_.fetch_add(1, std::memory_order_relaxed);
  }
  v1::ProxyRequest request =
      NewProxyRequest(ProxyEvent::kConnect, node_->name(), *session, node_->Now());
  const ConnectionMeta& meta = session->meta();
  request.set_remote_address(meta.remote_address);
  request.set_origin(meta.origin);
  request.set_user_agent(meta.user_agent);
  for (const auto& [name, value] : meta.headers) (*request.mutable_headers())[name] = value;
  request.set_token(connect.token());
  if (connect.has_data()) *request.mutable_data() = connect.data();
  proxy_->Call(ProxyEvent::kConnect, "", EncodeProxyRequest(request),
               [this, session, id](absl::StatusOr<std::string> body) {
                 // Finished on the session's I/O thread, which reads its frames: `connected`
                 // and the replies to the held frames then go out before the replies to frames
                 // read after it (a frame sent from another thread is posted to that thread,
                 // one sent on it is queued at once, so the proxy thread's would come late).
                 node_->RunOnLoop(session->loop(),
                                  [this, session, id, body = std::move(body)]() mutable {
                                    FinishConnect(session, id, std::move(body));
                                  });
               });
}

void ClientProtocol::FinishConnect(const std::shared_ptr<Session>& session, uint32_t id,
                                   absl::StatusOr<std::string> body) {
  std::optional<v1::ProxyReply> reply =
      ReadReply(session, id, ProxyEvent::kConnect, std::move(body));
  bool accepted = false;
  if (reply.has_value() && reply->has_error()) {
    const absl::Status refused =
        ProxyErrorStatus(reply->error(), absl::StatusCode::kUnauthenticated);
    node_->ReplyError(*session, id, refused);
    session->Close(kCloseUnauthorized, CloseReason("unauthorized: ", refused.message()));
  } else if (reply.has_value()) {
    accepted = AcceptConnect(session, id, reply->result());
  }
  EndConnect(session, accepted);
}

bool ClientProtocol::AcceptConnect(const std::shared_ptr<Session>& session, uint32_t id,
                                   const google::protobuf::Value& result) {
  v1::ConnectResult connect;
  // No result (`{}`, an empty body) or null reads as an empty one: its `user` is missing.
  std::string json = "{}";
  absl::Status st;
  if (result.kind_case() != google::protobuf::Value::KIND_NOT_SET &&
      result.kind_case() != google::protobuf::Value::kNullValue) {
    st = ToJson(result, &json);
  }
  if (st.ok()) st = FromCheckedJson(json, &connect);
  if (!st.ok()) {
    st = absl::InternalError(absl::StrCat("backend reply: result: ", st.message()));
  } else if (connect.user().empty() || connect.user().size() > kMaxUserBytes) {
    st = absl::InternalError("backend reply: result.user: required, at most 255 bytes");
  }
  for (int i = 0; st.ok() && i < connect.channels_size(); ++i) {
    if (absl::Status bad =
            ValidateChannel(absl::StrCat("result.channels[", i, "]"), connect.channels(i), limits_);
        !bad.ok()) {
      st = absl::InternalError(absl::StrCat("backend reply: ", bad.message()));
    }
  }
  if (!st.ok()) {
    node_->ReplyError(*session, id, Prefixed("connect: ", st));
    session->Close(kCloseTryAgainLater, CloseReason("connect: ", st.message()));
    return false;
  }
  if (!AdmitUser(session, id, connect.user())) return false;  // the user is at its limit
  auto grant = std::make_shared<auth::Claims>();
  grant->user = connect.user();
  grant->expires_at = absl::InfiniteFuture();  // until the connection closes
  grant->channels.assign(connect.allow().begin(), connect.allow().end());
  grant->from_connect_proxy = true;
  session->SetGrant(std::move(grant));
  if (!node_->IndexUser(session)) return false;  // closed meanwhile
  node_->Announce(*session);                     // CONNECT, now with the user
  ServerFrame reply;
  reply.set_id(id);
  reply.mutable_connected()->set_user(connect.user());
  if (connect.has_data()) *reply.mutable_connected()->mutable_data() = connect.data();
  node_->Reply(*session, reply);
  ArmAuthDeadline(*session);
  // Server-side subscriptions: a `subscribed` frame without id each, after `connected`.
  for (const std::string& channel : connect.channels()) {
    absl::StatusOr<bool> added = node_->Subscribe(session, channel, 0);
    if (!added.ok()) node_->ReplyError(*session, 0, added.status());
  }
  return true;
}

bool ClientProtocol::Connecting(const Session& session) {
  if (connecting_count_.load(std::memory_order_relaxed) == 0) return false;
  core::MutexLock lock(&connecting_mu_);
  return connecting_.contains(&session);
}

bool ClientProtocol::HoldWhileConnecting(const std::shared_ptr<Session>& session,
                                         v1::ClientFrame& frame, absl::string_view data_text) {
  // A session's frames come from its I/O thread, which also counted its connect.
  if (connecting_count_.load(std::memory_order_relaxed) == 0) return false;
  const uint32_t id = frame.id();
  {
    core::MutexLock lock(&connecting_mu_);
    auto it = connecting_.find(session.get());
    if (it == connecting_.end()) return false;
    if (it->second.size() < kMaxHeldFrames) {
      it->second.push_back(HeldFrame{std::move(frame), std::string(data_text)});
      return true;
    }
  }
  node_->ReplyError(*session, id,
                    absl::ResourceExhaustedError(
                        absl::StrCat("connect in progress: at most ", kMaxHeldFrames,
                                     " frames wait for its answer; frame not processed")));
  return true;
}

void ClientProtocol::EndConnect(const std::shared_ptr<Session>& session, bool accepted) {
  // Frames that arrive meanwhile join the queue, so they are handled after the held ones, in
  // order; the entry goes only once it is empty.
  for (;;) {
    std::vector<HeldFrame> held;
    {
      core::MutexLock lock(&connecting_mu_);
      auto it = connecting_.find(session.get());
      if (it == connecting_.end()) return;
      if (!accepted || it->second.empty()) {
        connecting_.erase(it);  // refused: the connection is closing, its frames go with it
        connecting_count_.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      held.swap(it->second);
    }
    for (const HeldFrame& h : held) {
      if (AdmitFrame(session, h.frame)) Dispatch(session, h.frame, h.data_text);
    }
  }
}

// --- subscribe, message, rpc --------------------------------------------------------------------

std::optional<v1::ProxyReply> ClientProtocol::ReadReply(const std::shared_ptr<Session>& session,
                                                        uint32_t id, ProxyEvent event,
                                                        absl::StatusOr<std::string> body) {
  absl::StatusOr<v1::ProxyReply> reply =
      body.ok() ? ParseProxyReply(*body, limits_.max_json_depth) : body.status();
  const std::string prefix = absl::StrCat(ProxyEventName(event), ": ");
  if (!reply.ok()) {
    node_->ReplyError(*session, id, Prefixed(prefix, reply.status()));
    if (event == ProxyEvent::kConnect) {
      session->Close(kCloseTryAgainLater, CloseReason(prefix, reply.status().message()));
    }
    return std::nullopt;
  }
  if (reply->has_disconnect()) {
    session->Close(static_cast<int>(reply->disconnect().code()), reply->disconnect().reason());
    return std::nullopt;
  }
  return *std::move(reply);
}

bool ClientProtocol::ProxiesSubscribe(const std::string& channel) const {
  return proxy_ != nullptr && proxy_->Routes(ProxyEvent::kSubscribe, channel);
}

void ClientProtocol::ProxySubscribe(const std::shared_ptr<Session>& session, uint32_t id,
                                    const v1::ClientSubscribe& sub) {
  v1::ProxyRequest request =
      NewProxyRequest(ProxyEvent::kSubscribe, node_->name(), *session, node_->Now());
  request.set_channel(sub.channel());
  proxy_->Call(ProxyEvent::kSubscribe, sub.channel(), EncodeProxyRequest(request),
               [this, session, id, sub](absl::StatusOr<std::string> body) {
                 std::optional<v1::ProxyReply> reply =
                     ReadReply(session, id, ProxyEvent::kSubscribe, std::move(body));
                 if (!reply.has_value()) return;
                 if (reply->has_error()) {
                   return node_->ReplyError(
                       *session, id,
                       ProxyErrorStatus(reply->error(), absl::StatusCode::kPermissionDenied));
                 }
                 SubscribeNow(session, id, sub);
               });
}

bool ClientProtocol::ProxiesMessage() const {
  return proxy_ != nullptr && proxy_->Routes(ProxyEvent::kMessage, "");
}

void ClientProtocol::ProxyMessage(const std::shared_ptr<Session>& session, uint32_t id,
                                  const v1::ClientMessage& message) {
  v1::ProxyRequest request =
      NewProxyRequest(ProxyEvent::kMessage, node_->name(), *session, node_->Now());
  *request.mutable_data() = message.data();
  proxy_->Call(ProxyEvent::kMessage, "", EncodeProxyRequest(request),
               [this, session, id](absl::StatusOr<std::string> body) {
                 std::optional<v1::ProxyReply> reply =
                     ReadReply(session, id, ProxyEvent::kMessage, std::move(body));
                 if (!reply.has_value()) return;
                 if (reply->has_error()) {
                   return node_->ReplyError(
                       *session, id, ProxyErrorStatus(reply->error(), absl::StatusCode::kUnknown));
                 }
                 ServerFrame sent;
                 sent.set_id(id);
                 sent.mutable_sent();
                 node_->Reply(*session, sent);
               });
}

void ClientProtocol::OnRpc(const std::shared_ptr<Session>& session, uint32_t id,
                           const v1::ClientRpc& rpc) {
  // Method names follow the rules of channel names (and their prefixes route them).
  if (absl::Status st = ValidateChannel("rpc.method", rpc.method(), limits_); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  if (proxy_ == nullptr || !proxy_->Routes(ProxyEvent::kRpc, rpc.method())) {
    return node_->ReplyError(*session, id,
                             absl::UnimplementedError(absl::StrCat(
                                 "rpc.method: no backend serves '", rpc.method(), "'")));
  }
  v1::ProxyRequest request =
      NewProxyRequest(ProxyEvent::kRpc, node_->name(), *session, node_->Now());
  request.set_method(rpc.method());
  if (rpc.has_data()) *request.mutable_data() = rpc.data();
  proxy_->Call(ProxyEvent::kRpc, rpc.method(), EncodeProxyRequest(request),
               [this, session, id](absl::StatusOr<std::string> body) {
                 std::optional<v1::ProxyReply> reply =
                     ReadReply(session, id, ProxyEvent::kRpc, std::move(body));
                 if (!reply.has_value()) return;
                 if (reply->has_error()) {
                   return node_->ReplyError(
                       *session, id, ProxyErrorStatus(reply->error(), absl::StatusCode::kUnknown));
                 }
                 ServerFrame result;
                 result.set_id(id);
                 v1::RpcResult* r = result.mutable_rpc_result();
                 if (reply->has_result()) *r->mutable_data() = std::move(*reply->mutable_result());
                 node_->Reply(*session, result);
               });
}

}  // namespace herald::core
