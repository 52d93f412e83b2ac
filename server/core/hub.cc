#include "server/core/hub.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {
namespace {

using v1::ServerFrame;

bool RemoteMatches(absl::string_view remote, absl::string_view filter) {
  if (filter.empty() || remote == filter) return true;
  // "ip" matches "ip:port" ("[v6]:port" for IPv6).
  if (remote.size() > filter.size() && remote.substr(0, filter.size()) == filter &&
      remote[filter.size()] == ':') {
    return true;
  }
  return remote.size() > filter.size() + 2 && remote[0] == '[' &&
         remote.substr(1, filter.size()) == filter && remote[filter.size() + 1] == ']';
}

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

// Publication data Herald stored itself, from input that was bounded when it came in.
constexpr size_t kStoredJsonDepth = std::numeric_limits<size_t>::max();

}  // namespace

Hub::Hub(Limits limits, std::string node, Engine* engine, const FrameFactory* frames,
         const auth::JwtVerifier* verifier, Clock clock)
    : limits_(std::move(limits)),
      node_(std::move(node)),
      engine_(engine),
      frames_(frames),
      clock_(std::move(clock)),
      started_at_(clock_()),
      verifier_(verifier),
      events_(clock_),
      tasks_(limits_, frames_, &events_),
      idempotency_(limits_.idempotency_window),
      ip_quota_(limits_.max_connections_per_ip),
      user_quota_(limits_.max_connections_per_user) {}

v1::Event Hub::SessionEvent(v1::EventType type, const Session& session) const {
  v1::Event e;
  e.set_type(type);
  e.set_time_ms(absl::ToUnixMillis(clock_()));
  e.set_connection_id(session.id());
  e.set_user(session.user());
  return e;
}

void Hub::EmitSessionEvent(v1::EventType type, const Session& session, const std::string& channel) {
  if (!events_.has_watchers()) return;
  v1::Event e = SessionEvent(type, session);
  e.set_channel(channel);
  events_.Emit(std::move(e));
}

std::string Hub::NextConnectionId() {
  uint64_t n = next_connection_.fetch_add(1, std::memory_order_relaxed) + 1;
  return absl::StrCat(node_, "-", absl::Hex(n, absl::kZeroPad8));
}

absl::Status Hub::Register(std::shared_ptr<Session> session) {
  Session& s = *session;
  if (absl::Status st = table_.Add(std::move(session)); !st.ok()) return st;
  connections_total_.fetch_add(1, std::memory_order_relaxed);
  // With tokens required, a connection without one is announced once its `connect` frame
  // names the user (OnConnect).
  if (Announced(s)) Announce(s);
  ServerFrame frame;
  v1::Welcome* welcome = frame.mutable_welcome();
  welcome->set_connection_id(s.id());
  welcome->set_node(node_);
  welcome->set_ping_interval_ms(limits_.ping_interval_ms);
  welcome->set_max_frame_bytes(static_cast<uint32_t>(limits_.max_frame_bytes));
  welcome->set_max_subscriptions(static_cast<uint32_t>(limits_.max_subscriptions_per_connection));
  Reply(s, frame);
  ArmAuthDeadline(s);
  return absl::OkStatus();
}

bool Hub::Announced(const Session& s) const { return !auth_required() || !s.user().empty(); }

void Hub::Announce(const Session& s) {
  if (!s.user().empty() && limits_.disconnect_grace > absl::ZeroDuration()) {
    // The user came back within the grace period: their earlier disconnect is not news.
    core::MutexLock lock(&held_mu_);
    held_disconnects_.erase(
        std::remove_if(held_disconnects_.begin(), held_disconnects_.end(),
                       [&](const HeldDisconnect& h) { return h.event.user() == s.user(); }),
        held_disconnects_.end());
  }
  if (events_.has_watchers()) {
    v1::Event e = SessionEvent(v1::EVENT_TYPE_CONNECT, s);
    e.set_remote_address(s.meta().remote_address);
    events_.Emit(std::move(e));
  }
}

void Hub::Unregister(Session& session, int code, absl::string_view reason) {
  // First, so that once a connection is gone from the table (and from Stats) its slots are free.
  session.ReleaseSlots();
  std::shared_ptr<Session> removed = table_.Remove(session.id());
  if (removed == nullptr) return;
  for (const std::string& channel : removed->MarkClosed()) index_.Remove(channel, removed.get());
  const absl::Time now = clock_();
  tasks_.RemoveWorker(*removed, now);
  if (events_.has_watchers() && Announced(*removed)) {
    v1::Event e = SessionEvent(v1::EVENT_TYPE_DISCONNECT, *removed);
    e.set_remote_address(removed->meta().remote_address);
    e.set_code(static_cast<uint32_t>(code));
    e.set_reason(std::string(reason));
    if (!e.user().empty() && limits_.disconnect_grace > absl::ZeroDuration()) {
      core::MutexLock lock(&held_mu_);
      held_disconnects_.push_back({std::move(e), now + limits_.disconnect_grace});
    } else {
      events_.Emit(std::move(e));
    }
  }
  SessionCounters c = removed->counters();
  closed_frames_in_.fetch_add(c.frames_in, std::memory_order_relaxed);
  closed_frames_out_.fetch_add(c.frames_out, std::memory_order_relaxed);
  closed_bytes_in_.fetch_add(c.bytes_in, std::memory_order_relaxed);
  closed_bytes_out_.fetch_add(c.bytes_out, std::memory_order_relaxed);
}

void Hub::Reply(Session& session, const ServerFrame& frame) {
  session.Send(frames_->Make(EncodeFrame(frame)));
}

void Hub::ReplyError(Session& session, uint32_t id, const absl::Status& status) {
  client_errors_.fetch_add(1, std::memory_order_relaxed);
  session.Send(frames_->Make(EncodeError(id, status)));
}

void Hub::OnClientFrame(const std::shared_ptr<Session>& session, absl::string_view text) {
  session->CountIn(text.size());
  // One parse: the bounding pass notes the id and top-level keys for an error reply. It is
  // linear in the frame, like reading it; the rate check follows it only to echo the id, and
  // precedes every reply, so malformed frames count against the rate too.
  json::JsonTopLevel top;
  const absl::Status checked = json::CheckJson(text, limits_.max_json_depth, &top);
  if (!AdmitFrameRate(session, top.id.value_or(0))) return;
  if (!checked.ok()) {
    ReplyError(*session, top.id.value_or(0),
               absl::InvalidArgumentError(absl::StrCat("malformed frame: ", checked.message())));
    return;
  }
  v1::ClientFrame frame;
  if (absl::Status st = FromCheckedJson(text, &frame); !st.ok()) {
    if (NamesUnknownFrameType(top.keys)) {
      st = absl::InvalidArgumentError(
          "unknown frame type: expected one of subscribe, unsubscribe, message, ping");
    } else if (top.keys.empty()) {
      st = absl::InvalidArgumentError(absl::StrCat("malformed frame: ", st.message()));
    }
    ReplyError(*session, top.id.value_or(0), st);
    return;
  }
  const uint32_t id = frame.id();
  if (!AdmitFrame(session, frame)) return;
  switch (frame.kind_case()) {
    case v1::ClientFrame::kConnect:
      OnConnect(session, id, frame.connect().token());
      return;
    case v1::ClientFrame::kRefresh:
      OnRefresh(session, id, frame.refresh().token());
      return;
    case v1::ClientFrame::kSubscribe: {
      const v1::ClientSubscribe& sub = frame.subscribe();
      if (absl::Status st = ValidateChannel("subscribe.channel", sub.channel(), limits_);
          !st.ok()) {
        ReplyError(*session, id, st);
        return;
      }
      if (absl::Status st = CheckChannelPermission(*session, "subscribe.channel", sub.channel());
          !st.ok()) {
        ReplyError(*session, id, st);
        return;
      }
      JoinSpec spec;
      if (sub.has_recover()) {
        spec.recover = StreamPosition{sub.recover().epoch(), sub.recover().offset()};
      }
      spec.snapshot = sub.snapshot();
      if (auto added = SubscribeSession(session, sub.channel(), id, spec); !added.ok()) {
        ReplyError(*session, id, added.status());
      }
      return;
    }
    case v1::ClientFrame::kUnsubscribe: {
      const std::string& channel = frame.unsubscribe().channel();
      if (absl::Status st = ValidateChannel("unsubscribe.channel", channel, limits_); !st.ok()) {
        ReplyError(*session, id, st);
        return;
      }
      UnsubscribeSession(session, channel, id);
      return;
    }
    case v1::ClientFrame::kMessage: {
      if (!frame.message().has_data()) {
        ReplyError(*session, id, absl::InvalidArgumentError("message.data: required"));
        return;
      }
      messages_from_clients_.fetch_add(1, std::memory_order_relaxed);
      if (events_.has_watchers()) {
        v1::Event e = SessionEvent(v1::EVENT_TYPE_MESSAGE, *session);
        *e.mutable_data() = frame.message().data();
        events_.Emit(std::move(e));
      }
      ServerFrame reply;
      reply.set_id(id);
      reply.mutable_sent();
      Reply(*session, reply);
      return;
    }
    case v1::ClientFrame::kPing: {
      ServerFrame reply;
      reply.set_id(id);
      reply.mutable_pong();
      Reply(*session, reply);
      return;
    }
    case v1::ClientFrame::kAck:
      HandleAck(session, id, frame.ack());
      return;
    case v1::ClientFrame::kNack: {
      if (frame.nack().delivery_id().empty()) {
        ReplyError(*session, id, absl::InvalidArgumentError("nack.delivery_id: required"));
        return;
      }
      if (absl::Status st = tasks_.Nack(*session, frame.nack().delivery_id(), clock_()); !st.ok()) {
        ReplyError(*session, id, st);
        return;
      }
      if (id != 0) {
        ServerFrame reply;
        reply.set_id(id);
        reply.mutable_acked();
        Reply(*session, reply);
      }
      return;
    }
    case v1::ClientFrame::kJoin:
    case v1::ClientFrame::kLeave: {
      const bool join = frame.has_join();
      const std::string& queue = join ? frame.join().queue() : frame.leave().queue();
      if (absl::Status st = ValidateChannel(join ? "join.queue" : "leave.queue", queue, limits_);
          !st.ok()) {
        ReplyError(*session, id, st);
        return;
      }
      // Reply first, so the worker knows it joined before its first task arrives.
      ServerFrame reply;
      reply.set_id(id);
      if (join) {
        reply.mutable_joined()->set_queue(queue);
        Reply(*session, reply);
        tasks_.Join(session, queue, clock_());
      } else {
        tasks_.Leave(*session, queue, clock_());
        reply.mutable_left()->set_queue(queue);
        Reply(*session, reply);
      }
      return;
    }
    case v1::ClientFrame::KIND_NOT_SET:
      ReplyError(*session, id,
                 absl::InvalidArgumentError(
                     "empty frame: expected one of subscribe, unsubscribe, message, ping"));
      return;
  }
}

void Hub::HandleAck(const std::shared_ptr<Session>& session, uint32_t id,
                    const v1::ClientAck& ack) {
  const absl::Time now = clock_();
  if (!ack.delivery_id().empty()) {
    if (absl::Status st = tasks_.Ack(*session, ack.delivery_id(), now); !st.ok()) {
      ReplyError(*session, id, st);
      return;
    }
  } else {
    if (ack.channel().empty() || ack.offset() == 0) {
      ReplyError(*session, id,
                 absl::InvalidArgumentError(
                     "ack: set delivery_id (a task) or channel and offset (a publication)"));
      return;
    }
    if (absl::Status st = ValidateChannel("ack.channel", ack.channel(), limits_); !st.ok()) {
      ReplyError(*session, id, st);
      return;
    }
    acks_.OnAck(*session, ack.channel(), ack.offset(), now);
    if (events_.has_watchers()) {
      v1::Event e = SessionEvent(v1::EVENT_TYPE_ACK, *session);
      e.set_channel(ack.channel());
      e.set_offset(ack.offset());
      events_.Emit(std::move(e));
    }
  }
  if (id != 0) {
    ServerFrame reply;
    reply.set_id(id);
    reply.mutable_acked();
    Reply(*session, reply);
  }
}

absl::StatusOr<bool> Hub::SubscribeSession(const std::shared_ptr<Session>& session,
                                           const std::string& channel, uint32_t reply_id,
                                           const JoinSpec& spec) {
  Session::AddResult result = Session::AddResult::kClosed;
  // Under the engine's channel lock: the `subscribed` reply (with the stream position, the
  // recovered publications and the snapshot) is queued before any publication that follows it,
  // so there is neither a gap nor a duplicate at the seam.
  engine_->Join(channel, spec, [&](const JoinResult& joined) {
    result = session->AddSubscription(channel, limits_.max_subscriptions_per_connection,
                                      [&] { index_.Add(channel, session); });
    if (result != Session::AddResult::kAdded && result != Session::AddResult::kAlreadySubscribed) {
      return;
    }
    std::optional<bool> recovered;
    if (spec.recover.has_value()) recovered = joined.recovered;
    static const std::vector<StoredPublication> kNone;
    session->Send(frames_->Make(EncodeSubscribed(reply_id, channel, joined.position, recovered,
                                                 recovered.has_value() ? joined.missed : kNone,
                                                 joined.snapshot)));
  });
  switch (result) {
    case Session::AddResult::kAdded:
      EmitSessionEvent(v1::EVENT_TYPE_SUBSCRIBE, *session, channel);
      return true;
    case Session::AddResult::kAlreadySubscribed:
      return false;
    case Session::AddResult::kLimitReached:
      return absl::ResourceExhaustedError(absl::StrCat("too many subscriptions: at most ",
                                                       limits_.max_subscriptions_per_connection,
                                                       " per connection"));
    case Session::AddResult::kClosed:
      break;
  }
  return absl::FailedPreconditionError("connection is closing");
}

bool Hub::UnsubscribeSession(const std::shared_ptr<Session>& session, const std::string& channel,
                             uint32_t reply_id) {
  bool removed =
      session->RemoveSubscription(channel, [&] { index_.Remove(channel, session.get()); });
  // A client's unsubscribe is answered even when it was not subscribed (idempotent); a
  // server-side one is only pushed when something changed.
  if (removed || reply_id != 0) {
    ServerFrame reply;
    reply.set_id(reply_id);
    reply.mutable_unsubscribed()->set_channel(channel);
    Reply(*session, reply);
  }
  if (removed) EmitSessionEvent(v1::EVENT_TYPE_UNSUBSCRIBE, *session, channel);
  return removed;
}

absl::StatusOr<v1::ChannelDelivery> Hub::PublishJson(const std::string& channel,
                                                     std::shared_ptr<const std::string> data_json,
                                                     const PublishOptions& options) {
  v1::ChannelDelivery delivery;
  delivery.set_channel(channel);
  PublishSpec spec{data_json, options.key, options.key_final};
  absl::StatusOr<StreamPosition> pos =
      engine_->Publish(channel, spec, [&](const StreamPosition& position) {
        if (options.ack_wait != 0) acks_.AddTarget(options.ack_wait, channel, position.offset);
        Subscribers subscribers = index_.Snapshot(channel);
        if (subscribers->sessions.empty()) return;
        // Encoded and framed once; the same frame object is queued on every subscriber.
        OutFramePtr frame = frames_->Make(
            EncodePublication(channel, position.offset, *data_json, options.ack_requested),
            options.key.empty() ? "" : absl::StrCat(channel, "\n", options.key));
        delivery.set_queued(FanOut(channel, std::move(subscribers), std::move(frame)));
      });
  if (!pos.ok()) return pos.status();
  delivery.set_epoch(pos->epoch);
  delivery.set_offset(pos->offset);
  publications_.fetch_add(1, std::memory_order_relaxed);
  deliveries_.fetch_add(delivery.queued(), std::memory_order_relaxed);
  return delivery;
}

uint32_t Hub::FanOut(const std::string& channel, Subscribers subscribers, OutFramePtr frame) {
  // A session that unsubscribed after the snapshot but before its thread ran the send gets
  // nothing: no publication follows `unsubscribed`.
  auto send_group = [channel, subscribers, frame](const SubscriberList::Group& g) {
    uint32_t sent = 0;
    for (size_t i = g.begin; i < g.end; ++i) {
      Session& s = *subscribers->sessions[i];
      if (s.IsSubscribed(channel) && s.Send(frame)) ++sent;
    }
    return sent;
  };
  if (shards_ == nullptr) {
    uint32_t sent = 0;
    for (const SubscriberList::Group& g : subscribers->groups) sent += send_group(g);
    return sent;
  }
  // Each I/O thread writes to its own connections; the publisher does not wait (the count is
  // of the subscribers handed the frame).
  for (const SubscriberList::Group& g : subscribers->groups) {
    shards_->Post(g.shard, [send_group, g] { send_group(g); });
  }
  return static_cast<uint32_t>(subscribers->sessions.size());
}

absl::StatusOr<AckWaiters::WaitId> Hub::StartAckWait(const v1::AckRequest& ack, bool has_ack) {
  if (!has_ack || ack.wait_ms() == 0) return 0;
  const absl::Duration timeout = absl::Milliseconds(ack.wait_ms());
  if (timeout > limits_.max_ack_wait) {
    return absl::InvalidArgumentError(
        absl::StrCat("ack.wait_ms: at most ", absl::ToInt64Milliseconds(limits_.max_ack_wait)));
  }
  return acks_.Start(ack.user(), clock_(), timeout);
}

absl::StatusOr<std::string> Hub::DataJson(bool has_data,
                                          const google::protobuf::Message& data) const {
  if (!has_data) return absl::InvalidArgumentError("data: required");
  std::string json;
  if (absl::Status st = ToJson(data, &json); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data: ", st.message()));
  }
  if (json.size() > limits_.max_publication_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("data: larger than ", limits_.max_publication_bytes, " bytes"));
  }
  return json;
}

template <typename Resp>
void Hub::FinishPublish(AckWaiters::WaitId wait, bool published, const absl::Status& status,
                        Resp resp, Done<Resp> done) {
  const bool wait_for_ack = wait != 0 && status.ok() && published;
  if (wait != 0 && !wait_for_ack) acks_.Cancel(wait);
  if (!status.ok()) return done(status);
  if (!wait_for_ack) return done(std::move(resp));
  acks_.Await(wait,
              [resp = std::move(resp), done = std::move(done)](v1::AckOutcome outcome) mutable {
                *resp.mutable_ack() = std::move(outcome);
                done(std::move(resp));
              });
}

namespace {

// True when `req` asks the call to wait for an ack.
template <typename Req>
bool WaitsForAck(const Req& req) {
  return req.has_ack() && req.ack().wait_ms() > 0;
}

absl::Status CannotWait() {
  return absl::InvalidArgumentError(
      "ack.wait_ms: this in-process call cannot wait for an ack; pass a completion");
}

}  // namespace

absl::StatusOr<v1::PublishOrderResponse> Hub::PublishOrder(const v1::PublishOrderRequest& req) {
  if (WaitsForAck(req)) return CannotWait();
  absl::StatusOr<v1::PublishOrderResponse> result;
  // Completes before returning: there is no ack to wait for.
  PublishOrder(req,
               [&result](absl::StatusOr<v1::PublishOrderResponse> r) { result = std::move(r); });
  return result;
}

absl::StatusOr<v1::PublishResponse> Hub::Publish(const v1::PublishRequest& req) {
  if (WaitsForAck(req)) return CannotWait();
  absl::StatusOr<v1::PublishResponse> result;
  Publish(req, [&result](absl::StatusOr<v1::PublishResponse> r) { result = std::move(r); });
  return result;
}

void Hub::PublishOrder(const v1::PublishOrderRequest& req, Done<v1::PublishOrderResponse> done) {
  if (!req.has_order()) {
    done(absl::InvalidArgumentError("order: required"));
    return;
  }
  const v1::Order& order = req.order();
  if (absl::Status st = ValidateOrder("order", order, limits_); !st.ok()) {
    done(st);
    return;
  }
  auto json = std::make_shared<std::string>();
  if (absl::Status st = ToJson(order, json.get()); !st.ok()) {
    done(st);
    return;
  }
  if (json->size() > limits_.max_publication_bytes) {
    done(absl::InvalidArgumentError(
        absl::StrCat("order: larger than ", limits_.max_publication_bytes, " bytes")));
    return;
  }
  absl::StatusOr<AckWaiters::WaitId> wait = StartAckWait(req.ack(), req.has_ack());
  if (!wait.ok()) {
    done(wait.status());
    return;
  }
  PublishOptions options;
  options.ack_requested = req.has_ack();
  options.ack_wait = *wait;
  options.key = order.id();
  options.key_final = IsTerminal(order.status());
  v1::PublishOrderResponse resp;
  absl::Status publish_status;
  std::shared_ptr<const std::string> data = std::move(json);
  OrderBook::Decision decision = orders_.Apply(order, clock_(), [&] {
    for (const std::string& channel : OrderChannels(order)) {
      absl::StatusOr<v1::ChannelDelivery> d = PublishJson(channel, data, options);
      if (!d.ok()) {
        publish_status = d.status();
        return;
      }
      resp.set_queued(resp.queued() + d->queued());
      *resp.add_deliveries() = *std::move(d);
    }
  });
  if (publish_status.ok()) {
    resp.set_applied(decision.applied);
    resp.set_stale(!decision.applied);
    resp.set_latest_version(decision.latest_version);
    if (!decision.applied) stale_orders_.fetch_add(1, std::memory_order_relaxed);
  }
  FinishPublish(*wait, decision.applied, publish_status, std::move(resp), std::move(done));
}

void Hub::Publish(const v1::PublishRequest& req, Done<v1::PublishResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    done(st);
    return;
  }
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) {
    done(json.status());
    return;
  }
  if (req.idempotency_key().size() > 256) {
    done(absl::InvalidArgumentError("idempotency_key: longer than 256 bytes"));
    return;
  }
  absl::StatusOr<AckWaiters::WaitId> wait = StartAckWait(req.ack(), req.has_ack());
  if (!wait.ok()) {
    done(wait.status());
    return;
  }
  PublishOptions options;
  options.ack_requested = req.has_ack();
  options.ack_wait = *wait;
  auto data = std::make_shared<const std::string>(*std::move(json));
  auto publish = [&] { return PublishJson(req.channel(), data, options); };
  v1::PublishResponse resp;
  absl::Status status;
  if (req.idempotency_key().empty()) {
    absl::StatusOr<v1::ChannelDelivery> d = publish();
    if (d.ok()) *resp.mutable_delivery() = *std::move(d);
    status = d.status();
  } else {
    auto r = idempotency_.Run(req.channel(), req.idempotency_key(), clock_(), publish);
    if (r.ok()) {
      *resp.mutable_delivery() = std::move(r->delivery);
      resp.set_duplicate(r->duplicate);
    }
    status = r.status();
  }
  const bool published = !resp.duplicate();  // before `resp` is moved into the call
  FinishPublish(*wait, published, status, std::move(resp), std::move(done));
}

absl::StatusOr<v1::BroadcastResponse> Hub::Broadcast(const v1::BroadcastRequest& req) {
  if (req.channels().empty()) return absl::InvalidArgumentError("channels: must not be empty");
  if (static_cast<size_t>(req.channels_size()) > limits_.max_broadcast_channels) {
    return absl::InvalidArgumentError(
        absl::StrCat("channels: more than ", limits_.max_broadcast_channels));
  }
  for (int i = 0; i < req.channels_size(); ++i) {
    if (absl::Status st =
            ValidateChannel(absl::StrCat("channels[", i, "]"), req.channels(i), limits_);
        !st.ok()) {
      return st;
    }
  }
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return json.status();
  v1::BroadcastResponse resp;
  auto data = std::make_shared<const std::string>(*std::move(json));
  for (const std::string& channel : req.channels()) {
    absl::StatusOr<v1::ChannelDelivery> d = PublishJson(channel, data, PublishOptions());
    if (!d.ok()) return d.status();
    resp.set_queued(resp.queued() + d->queued());
    *resp.add_deliveries() = *std::move(d);
  }
  return resp;
}

absl::StatusOr<v1::SendResponse> Hub::SendToUser(const v1::SendToUserRequest& req) {
  if (req.user().empty()) return absl::InvalidArgumentError("user: must not be empty");
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return json.status();
  v1::SendResponse resp;
  std::vector<std::shared_ptr<Session>> sessions = table_.FindUser(req.user());
  if (sessions.empty()) return resp;
  OutFramePtr frame = frames_->Make(EncodePush(*json));
  for (const auto& s : sessions) resp.set_queued(resp.queued() + (s->Send(frame) ? 1 : 0));
  deliveries_.fetch_add(resp.queued(), std::memory_order_relaxed);
  return resp;
}

absl::StatusOr<v1::SendResponse> Hub::SendToConnection(const v1::SendToConnectionRequest& req) {
  if (req.connection_id().empty()) {
    return absl::InvalidArgumentError("connection_id: must not be empty");
  }
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return json.status();
  std::shared_ptr<Session> s = table_.Find(req.connection_id());
  if (s == nullptr) {
    return absl::NotFoundError(absl::StrCat("connection_id: no connection ", req.connection_id()));
  }
  v1::SendResponse resp;
  resp.set_queued(s->Send(frames_->Make(EncodePush(*json))) ? 1 : 0);
  deliveries_.fetch_add(resp.queued(), std::memory_order_relaxed);
  return resp;
}

v1::Connection Hub::Describe(const Session& session) const {
  const ConnectionMeta& meta = session.meta();
  v1::Connection c;
  c.set_id(meta.id);
  c.set_remote_address(meta.remote_address);
  c.set_origin(meta.origin);
  c.set_user_agent(meta.user_agent);
  c.set_user(session.user());
  c.set_connected_at_ms(absl::ToUnixMillis(meta.connected_at));
  for (std::string& ch : session.Subscriptions()) c.add_channels(std::move(ch));
  SessionCounters counters = session.counters();
  c.set_frames_in(counters.frames_in);
  c.set_frames_out(counters.frames_out);
  c.set_bytes_in(counters.bytes_in);
  c.set_bytes_out(counters.bytes_out);
  c.set_send_buffer_bytes(session.BufferedBytes());
  return c;
}

absl::StatusOr<v1::ListConnectionsResponse> Hub::ListConnections(
    const v1::ListConnectionsRequest& req) const {
  if (req.page_size() > limits_.max_page_size) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: at most ", limits_.max_page_size));
  }
  if (!req.channel().empty()) {
    if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) return st;
  }
  const size_t page_size = req.page_size() == 0 ? 100 : req.page_size();
  std::vector<std::shared_ptr<Session>> candidates;
  if (!req.user().empty()) {
    candidates = table_.FindUser(req.user());
  } else if (!req.channel().empty()) {
    Subscribers subs = index_.Snapshot(req.channel());
    candidates = subs->sessions;
  } else {
    candidates = table_.All();
  }
  std::vector<const Session*> matching;
  for (const auto& s : candidates) {
    const ConnectionMeta& meta = s->meta();
    if (!req.user().empty() && s->user() != req.user()) continue;
    if (!req.channel().empty() && !s->IsSubscribed(req.channel())) continue;
    if (!RemoteMatches(meta.remote_address, req.remote_address())) continue;
    matching.push_back(s.get());
  }
  std::sort(matching.begin(), matching.end(),
            [](const Session* a, const Session* b) { return a->id() < b->id(); });
  v1::ListConnectionsResponse resp;
  resp.set_total(static_cast<uint32_t>(matching.size()));
  auto it = matching.begin();
  if (!req.page_token().empty()) {
    it = std::upper_bound(
        matching.begin(), matching.end(), req.page_token(),
        [](const std::string& token, const Session* s) { return token < s->id(); });
  }
  for (; it != matching.end() && static_cast<size_t>(resp.connections_size()) < page_size; ++it) {
    *resp.add_connections() = Describe(**it);
  }
  if (it != matching.end()) resp.set_next_page_token((*(it - 1))->id());
  return resp;
}

absl::StatusOr<v1::Connection> Hub::GetConnection(const v1::GetConnectionRequest& req) const {
  if (req.connection_id().empty()) {
    return absl::InvalidArgumentError("connection_id: must not be empty");
  }
  std::shared_ptr<Session> s = table_.Find(req.connection_id());
  if (s == nullptr) {
    return absl::NotFoundError(absl::StrCat("connection_id: no connection ", req.connection_id()));
  }
  return Describe(*s);
}

absl::StatusOr<std::vector<std::shared_ptr<Session>>> Hub::Targets(absl::string_view connection_id,
                                                                   absl::string_view user,
                                                                   bool has_target) const {
  if (!has_target || (connection_id.empty() && user.empty())) {
    return absl::InvalidArgumentError("target: set connection_id or user");
  }
  if (!connection_id.empty()) {
    std::shared_ptr<Session> s = table_.Find(connection_id);
    if (s == nullptr) {
      return absl::NotFoundError(absl::StrCat("connection_id: no connection ", connection_id));
    }
    return std::vector<std::shared_ptr<Session>>{std::move(s)};
  }
  return table_.FindUser(user);
}

absl::StatusOr<v1::DisconnectResponse> Hub::Disconnect(const v1::DisconnectRequest& req) {
  const int code = req.code() == 0 ? kCloseNormal : static_cast<int>(req.code());
  if (absl::Status st = ValidateClose(code, req.reason()); !st.ok()) return st;
  auto targets = Targets(req.connection_id(), req.user(),
                         req.target_case() != v1::DisconnectRequest::TARGET_NOT_SET);
  if (!targets.ok()) return targets.status();
  v1::DisconnectResponse resp;
  for (const auto& s : *targets) s->Close(code, req.reason());
  resp.set_disconnected(static_cast<uint32_t>(targets->size()));
  return resp;
}

absl::StatusOr<v1::SubscribeResponse> Hub::Subscribe(const v1::SubscribeRequest& req) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) return st;
  auto targets = Targets(req.connection_id(), req.user(),
                         req.target_case() != v1::SubscribeRequest::TARGET_NOT_SET);
  if (!targets.ok()) return targets.status();
  v1::SubscribeResponse resp;
  for (const auto& s : *targets) {
    absl::StatusOr<bool> added = SubscribeSession(s, req.channel(), 0);
    // One target over its limit fails a single-connection call; for a user, the others proceed.
    if (!added.ok() && !req.connection_id().empty()) return added.status();
    if (added.ok() && *added) resp.set_subscribed(resp.subscribed() + 1);
  }
  return resp;
}

absl::StatusOr<v1::UnsubscribeResponse> Hub::Unsubscribe(const v1::UnsubscribeRequest& req) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) return st;
  auto targets = Targets(req.connection_id(), req.user(),
                         req.target_case() != v1::UnsubscribeRequest::TARGET_NOT_SET);
  if (!targets.ok()) return targets.status();
  v1::UnsubscribeResponse resp;
  for (const auto& s : *targets) {
    if (UnsubscribeSession(s, req.channel(), 0)) resp.set_unsubscribed(resp.unsubscribed() + 1);
  }
  return resp;
}

absl::StatusOr<v1::StatsResponse> Hub::Stats(const v1::StatsRequest&) const {
  v1::StatsResponse resp;
  resp.set_node(node_);
  resp.set_uptime_ms(absl::ToInt64Milliseconds(clock_() - started_at_));
  std::vector<std::shared_ptr<Session>> all = table_.All();
  resp.set_connections(static_cast<uint32_t>(all.size()));
  resp.set_users(static_cast<uint32_t>(table_.users()));
  resp.set_channels(static_cast<uint32_t>(index_.channels()));
  resp.set_subscriptions(index_.subscriptions());
  resp.set_connections_total(connections_total_.load(std::memory_order_relaxed));
  resp.set_publications(publications_.load(std::memory_order_relaxed));
  resp.set_deliveries(deliveries_.load(std::memory_order_relaxed));
  SessionCounters sum;
  for (const auto& s : all) {
    SessionCounters c = s->counters();
    sum.frames_in += c.frames_in;
    sum.frames_out += c.frames_out;
    sum.bytes_in += c.bytes_in;
    sum.bytes_out += c.bytes_out;
  }
  resp.set_frames_in(sum.frames_in + closed_frames_in_.load(std::memory_order_relaxed));
  resp.set_frames_out(sum.frames_out + closed_frames_out_.load(std::memory_order_relaxed));
  resp.set_bytes_in(sum.bytes_in + closed_bytes_in_.load(std::memory_order_relaxed));
  resp.set_bytes_out(sum.bytes_out + closed_bytes_out_.load(std::memory_order_relaxed));
  resp.set_orders_tracked(orders_.size());
  resp.set_stale_orders(stale_orders_.load(std::memory_order_relaxed));
  resp.set_client_errors(client_errors_.load(std::memory_order_relaxed));
  resp.set_slow_consumer_closes(slow_consumer_closes_.load(std::memory_order_relaxed));
  resp.set_messages_from_clients(messages_from_clients_.load(std::memory_order_relaxed));
  resp.set_conflated_updates(conflated_.load(std::memory_order_relaxed));
  resp.set_watchers(static_cast<uint32_t>(events_.watcher_count()));
  resp.set_rate_limited_frames(rate_limited_frames_.load(std::memory_order_relaxed));
  resp.set_rate_limit_closes(rate_limit_closes_.load(std::memory_order_relaxed));
  resp.set_refused_connections_per_ip(refused_per_ip_.load(std::memory_order_relaxed));
  resp.set_refused_connections_per_user(refused_per_user_.load(std::memory_order_relaxed));
  resp.set_refused_connections_max(refused_max_connections_.load(std::memory_order_relaxed));
  resp.set_rate_limited_api_requests(api_rate_refusals_.load(std::memory_order_relaxed));
  return resp;
}

absl::StatusOr<v1::HistoryResponse> Hub::History(const v1::HistoryRequest& req) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) return st;
  if (req.limit() > 1000) return absl::InvalidArgumentError("limit: at most 1000");
  HistoryResult h = engine_->History(req.channel(), req.since_offset(),
                                     req.limit() == 0 ? 100 : req.limit(), req.reverse());
  v1::HistoryResponse resp;
  resp.set_epoch(h.position.epoch);
  resp.set_offset(h.position.offset);
  for (const StoredPublication& p : h.publications) {
    v1::HistoryEntry* out = resp.add_publications();
    out->set_channel(req.channel());
    out->set_offset(p.offset);
    out->set_published_at_ms(absl::ToUnixMillis(p.published_at));
    FromJson(*p.data_json, out->mutable_data(), kStoredJsonDepth).IgnoreError();
  }
  return resp;
}

absl::StatusOr<v1::DispatchTaskResponse> Hub::DispatchTask(const v1::DispatchTaskRequest& req) {
  if (absl::Status st = ValidateChannel("queue", req.queue(), limits_); !st.ok()) return st;
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return json.status();
  const absl::Duration deadline = req.ack_deadline_ms() == 0
                                      ? limits_.task_ack_deadline
                                      : absl::Milliseconds(req.ack_deadline_ms());
  const absl::Duration ttl =
      req.ttl_ms() == 0 ? limits_.task_ttl : absl::Milliseconds(req.ttl_ms());
  if (deadline < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError("ack_deadline_ms: at least 100");
  }
  return tasks_.Dispatch(req.queue(), std::make_shared<const std::string>(*std::move(json)),
                         deadline, ttl, clock_());
}

absl::StatusOr<v1::ListQueuesResponse> Hub::ListQueues(const v1::ListQueuesRequest&) const {
  return tasks_.List();
}

absl::StatusOr<std::shared_ptr<EventWatcher>> Hub::Watch(const v1::WatchEventsRequest& req,
                                                         std::function<void()> on_ready) {
  EventWatcher::Filter filter;
  for (int i = 0; i < req.types_size(); ++i) {
    if (req.types(i) == v1::EVENT_TYPE_UNSPECIFIED || !v1::EventType_IsValid(req.types(i))) {
      return absl::InvalidArgumentError(absl::StrCat("types[", i, "]: unknown event type"));
    }
    filter.types.insert(req.types(i));
  }
  if (!req.channel().empty()) {
    if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) return st;
  }
  filter.channel = req.channel();
  filter.user = req.user();
  if (req.buffer() > 1000000) return absl::InvalidArgumentError("buffer: at most 1000000");
  const size_t capacity = req.buffer() == 0 ? limits_.watcher_buffer : req.buffer();
  return events_.Watch(std::move(filter), capacity, std::move(on_ready));
}

void Hub::Tick() {
  const absl::Time now = clock_();
  acks_.Expire(now);
  tasks_.Tick(now);
  idempotency_.Sweep(now);
  orders_.Sweep(now, limits_.order_retention);
  engine_->Sweep(now,
                 [&](absl::string_view channel) { return index_.SubscriberCount(channel) > 0; });
  std::vector<v1::Event> due;
  {
    core::MutexLock lock(&held_mu_);
    auto it = std::partition(held_disconnects_.begin(), held_disconnects_.end(),
                             [&](const HeldDisconnect& h) { return h.due > now; });
    for (auto d = it; d != held_disconnects_.end(); ++d) due.push_back(std::move(d->event));
    held_disconnects_.erase(it, held_disconnects_.end());
  }
  for (v1::Event& e : due) events_.Emit(std::move(e));
}

void Hub::BeginDrain() {
  last_drain_refusal_ns_.store(absl::ToUnixNanos(clock_()), std::memory_order_relaxed);
  draining_.store(true, std::memory_order_relaxed);
}

absl::Status Hub::RefuseDraining() {
  last_drain_refusal_ns_.store(absl::ToUnixNanos(clock_()), std::memory_order_relaxed);
  return absl::UnavailableError(
      absl::StrCat("draining: node ", node_, " is shutting down; retry on another node"));
}

void Hub::CloseAll(int code, absl::string_view reason) {
  for (const auto& s : table_.All()) s->Close(code, reason);
}

}  // namespace herald::core
