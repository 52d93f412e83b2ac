#include "server/core/node.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "server/core/member.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {

Node::Node(const Limits& limits, std::string name, Broker* broker, TaskStore* tasks,
           PresenceRegistry* presence, OnlineRegistry* online, const FrameFactory* frames,
           bool auth_required, Clock clock)
    : limits_(limits),
      name_(std::move(name)),
      broker_(broker),
      presence_(presence),
      frames_(frames),
      auth_required_(auth_required),
      clock_(std::move(clock)),
      events_(clock_),
      tasks_(limits_, name_, tasks, frames_, &events_),
      ip_quota_(limits_.max_connections_per_ip),
      user_quota_(limits_.max_connections_per_user),
      online_(online) {
  broker_->SetEventHandler(this);
}

v1::Event Node::SessionEvent(v1::EventType type, const Session& session) const {
  v1::Event e;
  e.set_type(type);
  e.set_time_ms(absl::ToUnixMillis(clock_()));
  e.set_connection_id(session.id());
  e.set_user(session.user());
  return e;
}

void Node::EmitSessionEvent(v1::EventType type, const Session& session,
                            const std::string& channel) {
  if (!events_.has_watchers()) return;
  v1::Event e = SessionEvent(type, session);
  e.set_channel(channel);
  events_.Emit(std::move(e));
}

std::string Node::NextConnectionId() {
  uint64_t n = next_connection_.fetch_add(1, std::memory_order_relaxed) + 1;
  return absl::StrCat(name_, "-", absl::Hex(n, absl::kZeroPad8));
}

absl::Status Node::Add(std::shared_ptr<Session> session) {
  Session& s = *session;
  if (absl::Status st = table_.Add(std::move(session)); !st.ok()) return st;
  NodeCounters::Bump(counters_.connections_total);
  // With tokens required, a connection without one is announced once its `connect` frame
  // names the user.
  if (Announced(s)) Announce(s);
  return absl::OkStatus();
}

bool Node::Announced(const Session& s) const { return !auth_required_ || !s.user().empty(); }

void Node::ForgetHeldDisconnects(absl::string_view user) {
  if (user.empty() || limits_.disconnect_grace <= absl::ZeroDuration()) return;
  core::MutexLock lock(&held_mu_);
  held_disconnects_.erase(
      std::remove_if(held_disconnects_.begin(), held_disconnects_.end(),
                     [&](const HeldDisconnect& h) { return h.event.user() == user; }),
      held_disconnects_.end());
}

void Node::EmitHeldDisconnects(const std::string* user) {
  std::vector<v1::Event> out;
  {
    core::MutexLock lock(&held_mu_);
    auto it = std::stable_partition(
        held_disconnects_.begin(), held_disconnects_.end(),
        [&](const HeldDisconnect& h) { return user != nullptr && h.event.user() != *user; });
    for (auto d = it; d != held_disconnects_.end(); ++d) out.push_back(std::move(d->event));
    held_disconnects_.erase(it, held_disconnects_.end());
  }
  for (v1::Event& e : out) events_.Emit(std::move(e));
}

bool Node::holds_disconnects() const {
  core::MutexLock lock(&held_mu_);
  return !held_disconnects_.empty();
}

void Node::Announce(const Session& s) {
  // Read once: Session::user() copies under the session's lock (an allocation for an id longer
  // than std::string's inline 15 bytes, such as a UUID).
  const std::string user = s.user();
  // The user came back within the grace period: their earlier disconnect is not news.
  ForgetHeldDisconnects(user);
  if (events_.has_watchers()) {
    v1::Event e = SessionEvent(v1::EVENT_TYPE_CONNECT, s);
    e.set_remote_address(s.meta().remote_address);
    events_.Emit(std::move(e));
  }
  if (user.empty()) return;
  // After CONNECT; with a shared registry, once it answered (Redis unreachable: no USER_ONLINE).
  // The event is built only when someone watches now (not on every handshake with a token); a
  // watcher that attaches meanwhile starts after this connect.
  // Held by pointer: the callback then fits in Done's inline storage, no allocation per handshake.
  std::unique_ptr<v1::Event> online;
  if (events_.has_watchers()) {
    online = std::make_unique<v1::Event>(SessionEvent(v1::EVENT_TYPE_USER_ONLINE, s));
  }
  online_->Connected(
      user, [this, online = std::move(online)](absl::StatusOr<bool> came_online) mutable {
        if (came_online.ok() && *came_online && online != nullptr && events_.has_watchers()) {
          events_.Emit(std::move(*online));
        }
      });
}

void Node::EmitUserEvent(v1::EventType type, const std::string& user) {
  if (!events_.has_watchers()) return;
  v1::Event e;
  e.set_type(type);
  e.set_time_ms(absl::ToUnixMillis(clock_()));
  e.set_user(user);
  events_.Emit(std::move(e));
}

bool Node::Remove(Session& session, int code, absl::string_view reason) {
  // First, so that once a connection is gone from the table (and from Stats) its slots are free.
  session.ReleaseSlots();
  std::shared_ptr<Session> removed = table_.Remove(session.id());
  if (removed == nullptr) return false;
  for (const std::string& channel : removed->MarkClosed()) {
    index_.Remove(channel, removed.get());
    DropJoins(channel, removed.get());
    broker_->Unsubscribe(channel);
    MemberLeft(*removed, channel);
  }
  const absl::Time now = clock_();
  tasks_.RemoveWorker(*removed);
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
  // After its DISCONNECT: the user went offline with this connection.
  if (Announced(*removed) && !removed->user().empty()) {
    online_->Disconnected(removed->user(), now,
                          [this, user = removed->user()](absl::StatusOr<bool> offline) {
                            if (!offline.ok() || !*offline) return;
                            EmitHeldDisconnects(&user);
                            EmitUserEvent(v1::EVENT_TYPE_USER_OFFLINE, user);
                          });
  }
  SessionCounters c = removed->counters();
  NodeCounters::Bump(counters_.closed_frames_in, c.frames_in);
  NodeCounters::Bump(counters_.closed_frames_out, c.frames_out);
  NodeCounters::Bump(counters_.closed_bytes_in, c.bytes_in);
  NodeCounters::Bump(counters_.closed_bytes_out, c.bytes_out);
  return true;
}

void Node::CloseAll(int code, absl::string_view reason) {
  for (const auto& s : table_.All()) s->Close(code, reason);
}

void Node::Reply(Session& session, const v1::ServerFrame& frame) {
  Send(session, EncodeFrame(frame));
}

void Node::Send(Session& session, std::string frame_json) {
  session.Send(frames_->Make(std::move(frame_json)));
}

void Node::ReplyError(Session& session, uint32_t id, const absl::Status& status) {
  NodeCounters::Bump(counters_.client_errors);
  session.Send(frames_->Make(EncodeError(id, status)));
}

Node::JoinStripe& Node::JoinStripeFor(absl::string_view channel) {
  return joins_[absl::HashOf(channel) % kJoinStripes];
}

absl::StatusOr<bool> Node::Subscribe(const std::shared_ptr<Session>& session,
                                     const std::string& channel, uint32_t reply_id, JoinSpec spec) {
  switch (session->AddSubscription(channel, limits_.max_subscriptions_per_connection, [] {})) {
    case Session::AddResult::kAdded:
      break;
    case Session::AddResult::kAlreadySubscribed: {
      // Answered again with the stream's current position (and what `spec` asks for); the
      // subscription itself is live already, so nothing is buffered.
      const bool recover = spec.recover.has_value();
      const bool snapshot = spec.snapshot;
      broker_->Join(
          channel, std::move(spec),
          [this, session, channel, reply_id, recover, snapshot](absl::StatusOr<JoinResult> joined) {
            if (!joined.ok()) return ReplyError(*session, reply_id, joined.status());
            session->Send(SubscribedFrame(reply_id, channel, *joined, recover, snapshot));
          });
      return false;
    }
    case Session::AddResult::kLimitReached:
      return absl::ResourceExhaustedError(absl::StrCat("too many subscriptions: at most ",
                                                       limits_.max_subscriptions_per_connection,
                                                       " per connection"));
    case Session::AddResult::kClosed:
      return absl::FailedPreconditionError("connection is closing");
  }
  const uint64_t join_id = next_join_.fetch_add(1, std::memory_order_relaxed) + 1;
  {
    JoinStripe& stripe = JoinStripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    stripe.pending[channel].push_back(
        PendingJoin{join_id, session, reply_id, spec.recover.has_value(), spec.snapshot, {}});
  }
  EmitSessionEvent(v1::EVENT_TYPE_SUBSCRIBE, *session, channel);
  // The node subscription comes first: every publication after the join's position then
  // reaches HandlePublication, and the join buffer.
  broker_->Subscribe(channel,
                     [this, channel, join_id, spec = std::move(spec)](absl::Status st) mutable {
                       if (!st.ok()) {
                         FinishJoin(channel, join_id, std::move(st));
                         return;
                       }
                       StartJoin(channel, join_id, std::move(spec));
                     });
  return true;
}

void Node::StartJoin(const std::string& channel, uint64_t join_id, JoinSpec spec) {
  broker_->Join(channel, std::move(spec),
                [this, channel, join_id](absl::StatusOr<JoinResult> joined) {
                  FinishJoin(channel, join_id, std::move(joined));
                });
}

OutFramePtr Node::SubscribedFrame(uint32_t reply_id, const std::string& channel,
                                  const JoinResult& joined, bool report_recovered,
                                  bool report_snapshot) const {
  std::optional<bool> recovered;
  if (report_recovered) recovered = joined.recovered;
  return frames_->Make(EncodeSubscribed(reply_id, channel, joined.position, recovered,
                                        report_recovered ? &joined.missed : nullptr,
                                        report_snapshot ? &joined.snapshot : nullptr));
}

OutFramePtr Node::PublicationFrame(const Publication& p) const {
  return frames_->Make(
      EncodePublication(p.channel, p.position.offset, *p.spec.data_json, p.spec.ack_requested),
      p.spec.key.empty() ? "" : absl::StrCat(p.channel, "\n", p.spec.key));
}

void Node::FinishJoin(const std::string& channel, uint64_t join_id,
                      absl::StatusOr<JoinResult> joined) {
  std::optional<PendingJoin> failed;
  std::shared_ptr<Session> live;  // set when the subscription went live
  {
    JoinStripe& stripe = JoinStripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.pending.find(channel);
    if (it == stripe.pending.end()) return;
    std::vector<PendingJoin>& joins = it->second;
    auto join = std::find_if(joins.begin(), joins.end(),
                             [&](const PendingJoin& j) { return j.id == join_id; });
    if (join == joins.end()) return;  // unsubscribed or closed meanwhile
    PendingJoin done = std::move(*join);
    joins.erase(join);
    if (joins.empty()) stripe.pending.erase(it);
    if (!joined.ok()) {
      failed = std::move(done);
    } else {
      // Queued under the join stripe lock, which HandlePublication takes too: a publication
      // either went to the buffer (sent here, after the reply) or finds the session live in the
      // index (sent after this).
      Session& session = *done.session;
      session.Send(SubscribedFrame(done.reply_id, channel, *joined, done.report_recovered,
                                   done.report_snapshot));
      uint64_t after = joined->position.offset;
      for (const Publication& p : done.arrived) {
        if (p.position.epoch == joined->position.epoch && p.position.offset > after) {
          session.Send(PublicationFrame(p));
          after = p.position.offset;
        }
      }
      // Live from now on, unless it unsubscribed or closed since (then it is not added). A
      // publication at or before `after` that the broker hands over only now (appended before
      // the join read the stream, delivered after) was covered by the join: fan-out skips it
      // (Session::Accepts).
      if (session.GoLive(channel, after,
                         [&](const LiveMark& mark) { index_.Add(channel, done.session, mark); })) {
        live = std::move(done.session);
      }
    }
  }
  if (failed.has_value()) {
    // The subscription never went live: take it back, and the node subscription with it.
    Session& session = *failed->session;
    if (session.RemoveSubscription(channel, [] {})) broker_->Unsubscribe(channel);
    ReplyError(session, failed->reply_id, joined.status());
    return;
  }
  if (live != nullptr) MemberJoined(live, channel);
}

void Node::MemberJoined(const std::shared_ptr<Session>& session, const std::string& channel) {
  const bool presence = IsPresenceChannel(channel, limits_);
  const bool notify = HasPrefix(channel, limits_.join_leave_prefixes);
  if (!presence && !notify) return;
  const int64_t joined_at_ms = absl::ToUnixMillis(clock_());
  v1::ClientInfo client = DescribeMember(*session, name_, joined_at_ms);
  if (presence) {
    session->SetPresenceJoinedAt(channel, joined_at_ms);
    // Listed before the others hear of the join.
    ListInPresence(session, channel, notify ? client : std::move(client));
  }
  if (notify) NotifyMembers(PublicationKind::kMemberJoined, client, channel);
}

void Node::ListInPresence(const std::shared_ptr<Session>& session, const std::string& channel,
                          v1::ClientInfo client) {
  presence_->Add(channel, std::move(client), [this, session, channel](absl::Status) {
    // Left while the entry was on its way: take it out again (the registry applies one
    // connection's updates in order).
    if (!session->IsSubscribed(channel)) {
      presence_->Remove(channel, session->id(), [](absl::Status) {});
    }
  });
}

void Node::RelistPresence(const std::shared_ptr<Session>& session) {
  for (const auto& [channel, joined_at_ms] : session->PresenceJoins()) {
    ListInPresence(session, channel, DescribeMember(*session, name_, joined_at_ms));
  }
}

void Node::MemberLeft(const Session& session, const std::string& channel) {
  if (IsPresenceChannel(channel, limits_)) {
    presence_->Remove(channel, session.id(), [](absl::Status) {});
  }
  if (HasPrefix(channel, limits_.join_leave_prefixes)) {
    NotifyMembers(PublicationKind::kMemberLeft, DescribeMember(session, name_, 0), channel);
  }
}

void Node::NotifyMembers(PublicationKind kind, const v1::ClientInfo& client,
                         const std::string& channel) {
  auto json = std::make_shared<std::string>();
  ToJson(ToMember(client), json.get(), /*print_defaults=*/true).IgnoreError();
  PublishSpec spec;
  spec.kind = kind;
  spec.data_json = std::move(json);
  // Best effort, like every presence notice: a broker that is down loses it.
  broker_->Publish(channel, std::move(spec), [](absl::StatusOr<StreamPosition>) {});
}

void Node::Publish(const std::string& channel, PublishSpec spec, Done<StreamPosition> done) {
  broker_->Publish(channel, std::move(spec),
                   [this, done = std::move(done)](absl::StatusOr<StreamPosition> pos) mutable {
                     if (pos.ok()) NodeCounters::Bump(counters_.publications);
                     done(std::move(pos));
                   });
}

void Node::DropJoins(const std::string& channel, const Session* session) {
  JoinStripe& stripe = JoinStripeFor(channel);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.pending.find(channel);
  if (it == stripe.pending.end()) return;
  std::vector<PendingJoin>& joins = it->second;
  joins.erase(std::remove_if(joins.begin(), joins.end(),
                             [&](const PendingJoin& j) { return j.session.get() == session; }),
              joins.end());
  if (joins.empty()) stripe.pending.erase(it);
}

bool Node::Unsubscribe(const std::shared_ptr<Session>& session, const std::string& channel,
                       uint32_t reply_id) {
  const bool removed =
      session->RemoveSubscription(channel, [&] { index_.Remove(channel, session.get()); });
  if (removed) {
    DropJoins(channel, session.get());
    broker_->Unsubscribe(channel);
    MemberLeft(*session, channel);
  }
  if (removed || reply_id != 0) {
    v1::ServerFrame reply;
    reply.set_id(reply_id);
    reply.mutable_unsubscribed()->set_channel(channel);
    Reply(*session, reply);
  }
  if (removed) EmitSessionEvent(v1::EVENT_TYPE_UNSUBSCRIBE, *session, channel);
  return removed;
}

void Node::HandleGap(const std::string& channel) {
  Subscribers subscribers = index_.Snapshot(channel);
  v1::ServerFrame notice;
  notice.mutable_unsubscribed()->set_channel(channel);
  notice.mutable_unsubscribed()->set_resubscribe(true);
  OutFramePtr frame = frames_->Make(EncodeFrame(notice));
  for (const std::shared_ptr<Session>& session : subscribers->sessions) {
    if (!session->RemoveSubscription(channel, [&] { index_.Remove(channel, session.get()); })) {
      continue;
    }
    DropJoins(channel, session.get());
    broker_->Unsubscribe(channel);
    MemberLeft(*session, channel);
    session->Send(frame);
    EmitSessionEvent(v1::EVENT_TYPE_UNSUBSCRIBE, *session, channel);
  }
}

void Node::HandlePublication(const Publication& p) {
  if (p.spec.kind != PublicationKind::kData) {
    // A member notice, for the live subscribers only (no offset: every live one accepts it).
    Subscribers subscribers = index_.Snapshot(p.channel);
    if (subscribers->sessions.empty()) return;
    fan_out_.Send(p.channel, std::numeric_limits<uint64_t>::max(), subscribers,
                  frames_->Make(EncodeMemberEvent(p.spec.kind == PublicationKind::kMemberJoined,
                                                  p.channel, *p.spec.data_json)));
    return;
  }
  // Registered before any frame is queued, so an ack can never arrive before its wait knows it.
  if (p.spec.ack_wait != 0 && p.spec.origin_node == name_) {
    acks_.AddTarget(p.spec.ack_wait, p.channel, p.position.offset);
  } else if (p.spec.ack_wait != 0 && !p.spec.origin_node.empty()) {
    // Another node's publish call waits: this node's clients' acks go to it.
    acks_.AddRemoteTarget(p.spec.origin_node, p.spec.ack_wait, p.channel, p.position.offset,
                          clock_() + limits_.max_ack_wait);
  }
  Subscribers subscribers;
  {
    JoinStripe& stripe = JoinStripeFor(p.channel);
    core::MutexLock lock(&stripe.mu);
    if (auto it = stripe.pending.find(p.channel); it != stripe.pending.end()) {
      for (PendingJoin& join : it->second) join.arrived.push_back(p);
    }
    subscribers = index_.Snapshot(p.channel);
  }
  if (subscribers->sessions.empty()) return;
  NodeCounters::Bump(counters_.deliveries, subscribers->sessions.size());
  // Encoded and framed once; the same frame object is queued on every subscriber.
  fan_out_.Send(p.channel, p.position.offset, subscribers, PublicationFrame(p));
}

v1::Connection Node::Describe(const Session& session) const {
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
  c.set_node(name_);
  return c;
}

SessionCounters Node::Traffic() const {
  SessionCounters sum;
  for (const auto& s : table_.All()) {
    SessionCounters c = s->counters();
    sum.frames_in += c.frames_in;
    sum.frames_out += c.frames_out;
    sum.bytes_in += c.bytes_in;
    sum.bytes_out += c.bytes_out;
  }
  sum.frames_in += NodeCounters::Get(counters_.closed_frames_in);
  sum.frames_out += NodeCounters::Get(counters_.closed_frames_out);
  sum.bytes_in += NodeCounters::Get(counters_.closed_bytes_in);
  sum.bytes_out += NodeCounters::Get(counters_.closed_bytes_out);
  return sum;
}

void Node::Tick(absl::Time now) {
  acks_.Expire(now);
  std::vector<v1::Event> due;
  {
    core::MutexLock lock(&held_mu_);
    auto it = std::stable_partition(held_disconnects_.begin(), held_disconnects_.end(),
                                    [&](const HeldDisconnect& h) { return h.due > now; });
    for (auto d = it; d != held_disconnects_.end(); ++d) due.push_back(std::move(d->event));
    held_disconnects_.erase(it, held_disconnects_.end());
  }
  for (v1::Event& e : due) events_.Emit(std::move(e));
  online_->Due(now, [this](absl::StatusOr<OnlineChanges> changes) {
    if (!changes.ok()) return;
    for (const std::string& user : changes->online) EmitUserEvent(v1::EVENT_TYPE_USER_ONLINE, user);
    for (const std::string& user : changes->offline) {
      EmitHeldDisconnects(&user);
      EmitUserEvent(v1::EVENT_TYPE_USER_OFFLINE, user);
    }
  });
}

}  // namespace herald::core
