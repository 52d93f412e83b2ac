#include "server/core/client_protocol.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/descriptor.h"
#include "server/core/client_frame.h"
#include "server/core/member.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"
#include "server/json/json_check.h"

namespace herald::core {
namespace {

using v1::ServerFrame;

// True when a frame's top-level keys name no frame type (no field of ClientFrame's `kind`) but
// something ClientFrame does not have: {"id":2,"teleport":{}}.
bool NamesUnknownFrameType(const std::vector<std::string>& keys) {
  const google::protobuf::Descriptor* d = v1::ClientFrame::descriptor();
  bool unknown = false;
  for (const std::string& key : keys) {
    const google::protobuf::FieldDescriptor* f = d->FindFieldByName(key);
    for (int i = 0; f == nullptr && i < d->field_count(); ++i) {
      if (d->field(i)->json_name() == key) f = d->field(i);
    }
    if (f == nullptr) {
      unknown = true;
    } else if (f->containing_oneof() != nullptr) {
      return false;
    }
  }
  return unknown;
}

}  // namespace

ClientProtocol::ClientProtocol(Node* node, const auth::JwtVerifier* verifier, Proxy* proxy)
    : node_(node),
      limits_(node->limits()),
      verifier_(verifier),
      proxy_(proxy),
      connect_proxied_(proxy != nullptr && proxy->Routes(ProxyEvent::kConnect, "")),
      welcome_([&] {
        v1::Welcome node_part;
        node_part.set_node(node->name());
        node_part.set_ping_interval_ms(limits_.ping_interval_ms);
        node_part.set_max_frame_bytes(static_cast<uint32_t>(limits_.max_frame_bytes));
        node_part.set_max_subscriptions(
            static_cast<uint32_t>(limits_.max_subscriptions_per_connection));
        return node_part;
      }()) {}

absl::Status ClientProtocol::Register(std::shared_ptr<Session> session) {
  Session& s = *session;
  if (absl::Status st = node_->Add(std::move(session)); !st.ok()) return st;
  // A `?token=` already authenticated it; otherwise the client must send `connect` first.
  node_->Send(s, welcome_.Encode(s.id(), auth_required() && s.grant() == nullptr));
  ArmAuthDeadline(s);
  return absl::OkStatus();
}

void ClientProtocol::Unregister(Session& session, int code, absl::string_view reason) {
  node_->Remove(session, code, reason);
}

void ClientProtocol::ReplyEmpty(Session& session, uint32_t id, ServerFrame reply) {
  if (id == 0) return;
  reply.set_id(id);
  node_->Reply(session, reply);
}

void ClientProtocol::OnClientFrame(const std::shared_ptr<Session>& session,
                                   absl::string_view text) {
  session->CountIn(text.size());
  // One parse: the bounding pass notes the id and top-level keys for an error reply. It is
  // linear in the frame, like reading it; the rate check follows it only to echo the id, and
  // precedes every reply, so malformed frames count against the rate too.
  json::JsonTopLevel top;
  const absl::Status checked = json::CheckJson(text, limits_.max_json_depth, &top);
  if (!AdmitFrameRate(session, top.id.value_or(0))) return;
  if (!checked.ok()) {
    node_->ReplyError(
        *session, top.id.value_or(0),
        absl::InvalidArgumentError(absl::StrCat("malformed frame: ", checked.message())));
    return RefuseIfUnauthenticated(*session);
  }
  // On an arena: a frame's data may be tens of thousands of Value nodes, allocated and freed
  // together.
  google::protobuf::Arena arena;
  v1::ClientFrame& frame = *google::protobuf::Arena::CreateMessage<v1::ClientFrame>(&arena);
  absl::string_view data_text;
  if (absl::Status st = ParseClientFrame(text, top, &frame, &data_text); !st.ok()) {
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (NamesUnknownFrameType(top.keys)) {
      st = absl::InvalidArgumentError(
          "unknown frame type: expected one of subscribe, unsubscribe, message, ping");
    } else if (first != absl::string_view::npos && text[first] != '{') {
      st = absl::InvalidArgumentError(
          absl::StrCat("malformed frame: not a JSON object at byte ", first));
    } else if (top.keys.empty()) {
      st = absl::InvalidArgumentError(absl::StrCat("malformed frame: ", st.message()));
    }
    node_->ReplyError(*session, top.id.value_or(0), st);
    return RefuseIfUnauthenticated(*session);
  }
  if (HoldWhileConnecting(session, frame, data_text)) return;  // a proxied connect is on its way
  if (!AdmitFrame(session, frame)) return;
  Dispatch(session, frame, data_text);
}

void ClientProtocol::Dispatch(const std::shared_ptr<Session>& session, const v1::ClientFrame& frame,
                              absl::string_view data_text) {
  const uint32_t id = frame.id();
  switch (frame.kind_case()) {
    case v1::ClientFrame::kConnect:
      if (ProxiesConnect(frame.connect())) return ProxyConnect(session, id, frame.connect());
      return OnConnect(session, id, frame.connect().token());
    case v1::ClientFrame::kRefresh:
      return OnRefresh(session, id, frame.refresh().token());
    case v1::ClientFrame::kSubscribe:
      return OnSubscribe(session, id, frame.subscribe());
    case v1::ClientFrame::kUnsubscribe: {
      const std::string& channel = frame.unsubscribe().channel();
      if (absl::Status st = ValidateChannel("unsubscribe.channel", channel, limits_); !st.ok()) {
        return node_->ReplyError(*session, id, st);
      }
      node_->Unsubscribe(session, channel, id);
      return;
    }
    case v1::ClientFrame::kMessage:
      return OnMessage(session, id, frame.message());
    case v1::ClientFrame::kPublish:
      return OnPublish(session, id, frame.publish(), data_text);
    case v1::ClientFrame::kPresence:
      return OnPresence(session, id, frame.presence().channel());
    case v1::ClientFrame::kPing: {
      ServerFrame reply;
      reply.set_id(id);
      reply.mutable_pong();
      node_->Reply(*session, reply);  // answered even without an id
      return;
    }
    case v1::ClientFrame::kAck:
      return OnAck(session, id, frame.ack());
    case v1::ClientFrame::kNack:
      return OnNack(session, id, frame.nack());
    case v1::ClientFrame::kJoin:
      return OnJoinOrLeave(session, id, true, frame.join().queue());
    case v1::ClientFrame::kLeave:
      return OnJoinOrLeave(session, id, false, frame.leave().queue());
    case v1::ClientFrame::kRpc:
      return OnRpc(session, id, frame.rpc());
    case v1::ClientFrame::KIND_NOT_SET:
      node_->ReplyError(*session, id,
                        absl::InvalidArgumentError(
                            "empty frame: expected one of subscribe, unsubscribe, message, ping"));
      return;
  }
}

void ClientProtocol::OnSubscribe(const std::shared_ptr<Session>& session, uint32_t id,
                                 const v1::ClientSubscribe& sub) {
  if (absl::Status st = ValidateChannel("subscribe.channel", sub.channel(), limits_); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  // The backend decides instead of the token's channels claim.
  if (ProxiesSubscribe(sub.channel())) return ProxySubscribe(session, id, sub);
  if (absl::Status st = CheckChannelPermission(*session, "subscribe.channel", sub.channel());
      !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  SubscribeNow(session, id, sub);
}

void ClientProtocol::SubscribeNow(const std::shared_ptr<Session>& session, uint32_t id,
                                  const v1::ClientSubscribe& sub) {
  JoinSpec spec;
  if (sub.has_recover()) {
    spec.recover = StreamPosition{sub.recover().epoch(), sub.recover().offset()};
  }
  spec.snapshot = sub.snapshot();
  absl::StatusOr<bool> added = node_->Subscribe(session, sub.channel(), id, std::move(spec));
  if (!added.ok()) node_->ReplyError(*session, id, added.status());
  // Already subscribed: the earlier `subscribed` reply stands (nothing is sent twice).
}

void ClientProtocol::OnMessage(const std::shared_ptr<Session>& session, uint32_t id,
                               const v1::ClientMessage& message) {
  if (!message.has_data()) {
    return node_->ReplyError(*session, id, absl::InvalidArgumentError("message.data: required"));
  }
  NodeCounters::Bump(node_->counters().messages_from_clients);
  if (node_->events().has_watchers()) {
    v1::Event e = node_->SessionEvent(v1::EVENT_TYPE_MESSAGE, *session);
    *e.mutable_data() = message.data();
    node_->events().Emit(std::move(e));
  }
  if (ProxiesMessage()) return ProxyMessage(session, id, message);  // `sent` once it took it
  ServerFrame reply;
  reply.set_id(id);
  reply.mutable_sent();
  node_->Reply(*session, reply);
}

void ClientProtocol::OnPublish(const std::shared_ptr<Session>& session, uint32_t id,
                               const v1::ClientPublish& pub, absl::string_view data_text) {
  if (absl::Status st = ValidateChannel("publish.channel", pub.channel(), limits_); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  if (absl::Status st = CheckPublishPermission(*session, pub.channel()); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  // As sent, like an HTTP publication's data (key order, numbers as written); the same bound.
  absl::StatusOr<std::string> json =
      data_text.empty() ? DataJson("publish.data", pub.has_data(), pub.data(), limits_)
                        : RawDataJson("publish.data", data_text, limits_);
  if (!json.ok()) return node_->ReplyError(*session, id, json.status());
  PublishSpec spec;
  spec.data_json = std::make_shared<const std::string>(*std::move(json));
  // The event's copy of the data only while someone watches events.
  std::optional<google::protobuf::Value> data;
  if (node_->events().has_watchers()) data = pub.data();
  node_->Publish(pub.channel(), std::move(spec),
                 [this, session, id, channel = pub.channel(),
                  data = std::move(data)](absl::StatusOr<StreamPosition> pos) {
                   if (!pos.ok()) return node_->ReplyError(*session, id, pos.status());
                   if (data.has_value() && node_->events().has_watchers()) {
                     v1::Event e = node_->SessionEvent(v1::EVENT_TYPE_PUBLISH, *session);
                     e.set_channel(channel);
                     e.set_offset(pos->offset);
                     *e.mutable_data() = *data;
                     node_->events().Emit(std::move(e));
                   }
                   ServerFrame reply;
                   v1::Published* published = reply.mutable_published();
                   published->set_channel(channel);
                   published->set_epoch(pos->epoch);
                   published->set_offset(pos->offset);
                   ReplyEmpty(*session, id, std::move(reply));
                 });
}

void ClientProtocol::OnPresence(const std::shared_ptr<Session>& session, uint32_t id,
                                const std::string& channel) {
  if (absl::Status st = ValidateChannel("presence.channel", channel, limits_); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  if (!IsPresenceChannel(channel, limits_)) {
    return node_->ReplyError(
        *session, id,
        absl::FailedPreconditionError(absl::StrCat(
            "presence.channel: '", channel,
            "' is not a presence channel (its prefix is not in --presence-prefixes)")));
  }
  if (absl::Status st = CheckChannelPermission(*session, "presence.channel", channel); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  node_->presence().Get(
      channel, [this, session, id, channel](absl::StatusOr<std::vector<v1::ClientInfo>> clients) {
        if (!clients.ok()) return node_->ReplyError(*session, id, clients.status());
        ServerFrame reply;
        reply.set_id(id);
        v1::PresenceMembers* members = reply.mutable_presence();
        members->set_channel(channel);
        for (v1::ClientInfo& c : *clients) *members->add_members() = ToMember(std::move(c));
        node_->Reply(*session, reply);
      });
}

void ClientProtocol::OnAck(const std::shared_ptr<Session>& session, uint32_t id,
                           const v1::ClientAck& ack) {
  if (!ack.delivery_id().empty()) {
    // A task: answered once the task store has it.
    node_->tasks().Ack(*session, ack.delivery_id(), [this, session, id](absl::Status st) {
      if (!st.ok()) return node_->ReplyError(*session, id, st);
      ServerFrame reply;
      reply.mutable_acked();
      ReplyEmpty(*session, id, std::move(reply));
    });
    return;
  }
  if (ack.channel().empty() || ack.offset() == 0) {
    return node_->ReplyError(
        *session, id,
        absl::InvalidArgumentError(
            "ack: set delivery_id (a task) or channel and offset (a publication)"));
  }
  if (absl::Status st = ValidateChannel("ack.channel", ack.channel(), limits_); !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  node_->acks().OnAck(*session, ack.channel(), ack.offset(), node_->Now());
  if (node_->events().has_watchers()) {
    v1::Event e = node_->SessionEvent(v1::EVENT_TYPE_ACK, *session);
    e.set_channel(ack.channel());
    e.set_offset(ack.offset());
    node_->events().Emit(std::move(e));
  }
  ServerFrame reply;
  reply.mutable_acked();
  ReplyEmpty(*session, id, std::move(reply));
}

void ClientProtocol::OnNack(const std::shared_ptr<Session>& session, uint32_t id,
                            const v1::ClientNack& nack) {
  if (nack.delivery_id().empty()) {
    return node_->ReplyError(*session, id,
                             absl::InvalidArgumentError("nack.delivery_id: required"));
  }
  node_->tasks().Nack(*session, nack.delivery_id(), [this, session, id](absl::Status st) {
    if (!st.ok()) return node_->ReplyError(*session, id, st);
    ServerFrame reply;
    reply.mutable_acked();
    ReplyEmpty(*session, id, std::move(reply));
  });
}

void ClientProtocol::OnJoinOrLeave(const std::shared_ptr<Session>& session, uint32_t id, bool join,
                                   const std::string& queue) {
  if (absl::Status st = ValidateChannel(join ? "join.queue" : "leave.queue", queue, limits_);
      !st.ok()) {
    return node_->ReplyError(*session, id, st);
  }
  // Reply first, so the worker knows it joined before its first task arrives.
  ServerFrame reply;
  reply.set_id(id);
  if (join) {
    reply.mutable_joined()->set_queue(queue);
    node_->Reply(*session, reply);
    node_->tasks().Join(session, queue);
  } else {
    node_->tasks().Leave(*session, queue);
    reply.mutable_left()->set_queue(queue);
    node_->Reply(*session, reply);
  }
}

}  // namespace herald::core
