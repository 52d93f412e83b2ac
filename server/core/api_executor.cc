#include "server/core/api_executor.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {
namespace {

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

// Publication data Herald stored itself, from input that was bounded when it came in.
constexpr size_t kStoredJsonDepth = std::numeric_limits<size_t>::max();

// True when `req` asks the call to wait for an ack.
template <typename Req>
bool WaitsForAck(const Req& req) {
  return req.has_ack() && req.ack().wait_ms() > 0;
}

}  // namespace

ApiExecutor::ApiExecutor(Node* node, Engine* engine)
    : node_(node), engine_(engine), limits_(node->limits()), started_at_(node->Now()) {}

absl::StatusOr<std::string> ApiExecutor::DataJson(bool has_data,
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

PublishSpec ApiExecutor::Spec(std::shared_ptr<const std::string> data_json,
                              const PublishOptions& options) const {
  PublishSpec spec;
  spec.data_json = std::move(data_json);
  spec.key = options.key;
  spec.key_final = options.key_final;
  spec.ack_requested = options.ack_requested;
  if (options.ack_wait != 0) {
    spec.origin_node = node_->name();
    spec.ack_wait = options.ack_wait;
  }
  return spec;
}

v1::ChannelDelivery ApiExecutor::Delivery(const std::string& channel,
                                          const StreamPosition& position) {
  v1::ChannelDelivery delivery;
  delivery.set_channel(channel);
  delivery.set_epoch(position.epoch);
  delivery.set_offset(position.offset);
  delivery.set_queued(static_cast<uint32_t>(node_->SubscriberCount(channel)));
  NodeCounters::Bump(node_->counters().publications);
  return delivery;
}

void ApiExecutor::PublishJson(const std::string& channel, PublishSpec spec,
                              Done<v1::ChannelDelivery> done) {
  engine_->broker().Publish(
      channel, std::move(spec),
      [this, channel, done = std::move(done)](absl::StatusOr<StreamPosition> pos) mutable {
        if (!pos.ok()) return done(pos.status());
        done(Delivery(channel, *pos));
      });
}

void ApiExecutor::PublishEach(std::vector<std::string> channels, PublishSpec spec,
                              Done<std::vector<v1::ChannelDelivery>> done) {
  // The channels are published concurrently (with a remote broker, in one round trip's time);
  // the last completion answers.
  struct Gather {
    core::Mutex mu;
    std::vector<v1::ChannelDelivery> deliveries ABSL_GUARDED_BY(mu);
    absl::Status status ABSL_GUARDED_BY(mu);
    size_t remaining ABSL_GUARDED_BY(mu);
    Done<std::vector<v1::ChannelDelivery>> done;
  };
  auto gather = std::make_shared<Gather>();
  {
    core::MutexLock lock(&gather->mu);
    gather->deliveries.resize(channels.size());
    gather->remaining = channels.size();
  }
  gather->done = std::move(done);
  for (size_t i = 0; i < channels.size(); ++i) {
    PublishJson(channels[i], spec, [gather, i](absl::StatusOr<v1::ChannelDelivery> d) {
      absl::Status status;
      std::vector<v1::ChannelDelivery> deliveries;
      {
        core::MutexLock lock(&gather->mu);
        if (d.ok()) {
          gather->deliveries[i] = *std::move(d);
        } else if (gather->status.ok()) {
          gather->status = d.status();
        }
        if (--gather->remaining > 0) return;
        status = gather->status;
        deliveries = std::move(gather->deliveries);
      }
      if (!status.ok()) return gather->done(status);
      gather->done(std::move(deliveries));
    });
  }
}

absl::StatusOr<AckWaiters::WaitId> ApiExecutor::StartAckWait(const v1::AckRequest& ack,
                                                             bool has_ack) {
  if (!has_ack || ack.wait_ms() == 0) return 0;
  const absl::Duration timeout = absl::Milliseconds(ack.wait_ms());
  if (timeout > limits_.max_ack_wait) {
    return absl::InvalidArgumentError(
        absl::StrCat("ack.wait_ms: at most ", absl::ToInt64Milliseconds(limits_.max_ack_wait)));
  }
  return node_->acks().Start(ack.user(), Now(), timeout);
}

template <typename Resp>
void ApiExecutor::FinishPublish(AckWaiters::WaitId wait, bool published, const absl::Status& status,
                                Resp resp, Done<Resp> done) {
  const bool wait_for_ack = wait != 0 && status.ok() && published;
  if (wait != 0 && !wait_for_ack) node_->acks().Cancel(wait);
  if (!status.ok()) return done(status);
  if (!wait_for_ack) return done(std::move(resp));
  node_->acks().Await(
      wait, [resp = std::move(resp), done = std::move(done)](v1::AckOutcome outcome) mutable {
        *resp.mutable_ack() = std::move(outcome);
        done(std::move(resp));
      });
}

void ApiExecutor::PublishOrder(const v1::PublishOrderRequest& req,
                               Done<v1::PublishOrderResponse> done) {
  if (!req.has_order()) return done(absl::InvalidArgumentError("order: required"));
  const v1::Order& order = req.order();
  if (absl::Status st = ValidateOrder("order", order, limits_); !st.ok()) return done(st);
  auto json = std::make_shared<std::string>();
  if (absl::Status st = ToJson(order, json.get()); !st.ok()) return done(st);
  if (json->size() > limits_.max_publication_bytes) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("order: larger than ", limits_.max_publication_bytes, " bytes")));
  }
  absl::StatusOr<AckWaiters::WaitId> wait = StartAckWait(req.ack(), req.has_ack());
  if (!wait.ok()) return done(wait.status());
  PublishOptions options;
  options.ack_requested = req.has_ack();
  options.ack_wait = *wait;
  options.key = order.id();
  options.key_final = IsTerminal(order.status());
  OrderUpdate update;
  update.order_id = order.id();
  update.version = order.version();
  update.final = options.key_final;
  update.channels = OrderChannels(order);
  update.spec = Spec(std::move(json), options);
  std::vector<std::string> channels = update.channels;
  engine_->orders().Apply(
      std::move(update), [this, wait = *wait, channels = std::move(channels),
                          done = std::move(done)](absl::StatusOr<OrderDecision> d) mutable {
        v1::PublishOrderResponse resp;
        if (!d.ok())
          return FinishPublish(wait, false, d.status(), std::move(resp), std::move(done));
        resp.set_applied(d->applied);
        resp.set_stale(!d->applied);
        resp.set_latest_version(d->latest_version);
        if (!d->applied) NodeCounters::Bump(node_->counters().stale_orders);
        for (size_t i = 0; i < d->positions.size() && i < channels.size(); ++i) {
          v1::ChannelDelivery* delivery = resp.add_deliveries();
          *delivery = Delivery(channels[i], d->positions[i]);
          resp.set_queued(resp.queued() + delivery->queued());
        }
        FinishPublish(wait, d->applied, absl::OkStatus(), std::move(resp), std::move(done));
      });
}

void ApiExecutor::Publish(const v1::PublishRequest& req, Done<v1::PublishResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return done(json.status());
  if (req.idempotency_key().size() > 256) {
    return done(absl::InvalidArgumentError("idempotency_key: longer than 256 bytes"));
  }
  absl::StatusOr<AckWaiters::WaitId> wait = StartAckWait(req.ack(), req.has_ack());
  if (!wait.ok()) return done(wait.status());
  PublishOptions options;
  options.ack_requested = req.has_ack();
  options.ack_wait = *wait;
  PublishSpec spec = Spec(std::make_shared<const std::string>(*std::move(json)), options);
  if (req.idempotency_key().empty()) {
    PublishJson(req.channel(), std::move(spec),
                [this, wait = *wait,
                 done = std::move(done)](absl::StatusOr<v1::ChannelDelivery> d) mutable {
                  v1::PublishResponse resp;
                  if (d.ok()) *resp.mutable_delivery() = *std::move(d);
                  FinishPublish(wait, true, d.status(), std::move(resp), std::move(done));
                });
    return;
  }
  engine_->idempotency().Run(
      req.channel(), req.idempotency_key(),
      [this, channel = req.channel(),
       spec = std::move(spec)](Done<v1::ChannelDelivery> published) mutable {
        PublishJson(channel, std::move(spec), std::move(published));
      },
      [this, wait = *wait,
       done = std::move(done)](absl::StatusOr<IdempotencyStore::Result> r) mutable {
        v1::PublishResponse resp;
        if (r.ok()) {
          *resp.mutable_delivery() = std::move(r->delivery);
          resp.set_duplicate(r->duplicate);
        }
        const bool published = r.ok() && !r->duplicate;
        FinishPublish(wait, published, r.status(), std::move(resp), std::move(done));
      });
}

void ApiExecutor::Broadcast(const v1::BroadcastRequest& req, Done<v1::BroadcastResponse> done) {
  if (req.channels().empty()) {
    return done(absl::InvalidArgumentError("channels: must not be empty"));
  }
  if (static_cast<size_t>(req.channels_size()) > limits_.max_broadcast_channels) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("channels: more than ", limits_.max_broadcast_channels)));
  }
  for (int i = 0; i < req.channels_size(); ++i) {
    if (absl::Status st =
            ValidateChannel(absl::StrCat("channels[", i, "]"), req.channels(i), limits_);
        !st.ok()) {
      return done(st);
    }
  }
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return done(json.status());
  PublishEach({req.channels().begin(), req.channels().end()},
              Spec(std::make_shared<const std::string>(*std::move(json)), PublishOptions()),
              [done = std::move(done)](
                  absl::StatusOr<std::vector<v1::ChannelDelivery>> deliveries) mutable {
                if (!deliveries.ok()) return done(deliveries.status());
                v1::BroadcastResponse resp;
                for (v1::ChannelDelivery& d : *deliveries) {
                  resp.set_queued(resp.queued() + d.queued());
                  *resp.add_deliveries() = std::move(d);
                }
                done(std::move(resp));
              });
}

void ApiExecutor::SendToUser(const v1::SendToUserRequest& req, Done<v1::SendResponse> done) {
  if (req.user().empty()) return done(absl::InvalidArgumentError("user: must not be empty"));
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return done(json.status());
  v1::SendResponse resp;
  std::vector<std::shared_ptr<Session>> sessions = node_->FindUser(req.user());
  if (!sessions.empty()) {
    OutFramePtr frame = node_->MakeFrame(EncodePush(*json));
    for (const auto& s : sessions) resp.set_queued(resp.queued() + (s->Send(frame) ? 1 : 0));
    NodeCounters::Bump(node_->counters().deliveries, resp.queued());
  }
  done(std::move(resp));
}

void ApiExecutor::SendToConnection(const v1::SendToConnectionRequest& req,
                                   Done<v1::SendResponse> done) {
  if (req.connection_id().empty()) {
    return done(absl::InvalidArgumentError("connection_id: must not be empty"));
  }
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return done(json.status());
  std::shared_ptr<Session> s = node_->Find(req.connection_id());
  if (s == nullptr) {
    return done(
        absl::NotFoundError(absl::StrCat("connection_id: no connection ", req.connection_id())));
  }
  v1::SendResponse resp;
  resp.set_queued(s->Send(node_->MakeFrame(EncodePush(*json))) ? 1 : 0);
  NodeCounters::Bump(node_->counters().deliveries, resp.queued());
  done(std::move(resp));
}

void ApiExecutor::ListConnections(const v1::ListConnectionsRequest& req,
                                  Done<v1::ListConnectionsResponse> done) {
  done(ListConnectionsNow(req));
}

absl::StatusOr<v1::ListConnectionsResponse> ApiExecutor::ListConnectionsNow(
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
    candidates = node_->FindUser(req.user());
  } else if (!req.channel().empty()) {
    candidates = node_->SubscribersOf(req.channel())->sessions;
  } else {
    candidates = node_->All();
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
    *resp.add_connections() = node_->Describe(**it);
  }
  if (it != matching.end()) resp.set_next_page_token((*(it - 1))->id());
  return resp;
}

void ApiExecutor::GetConnection(const v1::GetConnectionRequest& req, Done<v1::Connection> done) {
  if (req.connection_id().empty()) {
    return done(absl::InvalidArgumentError("connection_id: must not be empty"));
  }
  std::shared_ptr<Session> s = node_->Find(req.connection_id());
  if (s == nullptr) {
    return done(
        absl::NotFoundError(absl::StrCat("connection_id: no connection ", req.connection_id())));
  }
  done(node_->Describe(*s));
}

absl::StatusOr<std::vector<std::shared_ptr<Session>>> ApiExecutor::Targets(
    absl::string_view connection_id, absl::string_view user, bool has_target) const {
  if (!has_target || (connection_id.empty() && user.empty())) {
    return absl::InvalidArgumentError("target: set connection_id or user");
  }
  if (!connection_id.empty()) {
    std::shared_ptr<Session> s = node_->Find(connection_id);
    if (s == nullptr) {
      return absl::NotFoundError(absl::StrCat("connection_id: no connection ", connection_id));
    }
    return std::vector<std::shared_ptr<Session>>{std::move(s)};
  }
  return node_->FindUser(user);
}

void ApiExecutor::Disconnect(const v1::DisconnectRequest& req, Done<v1::DisconnectResponse> done) {
  const int code = req.code() == 0 ? kCloseNormal : static_cast<int>(req.code());
  if (absl::Status st = ValidateClose(code, req.reason()); !st.ok()) return done(st);
  auto targets = Targets(req.connection_id(), req.user(),
                         req.target_case() != v1::DisconnectRequest::TARGET_NOT_SET);
  if (!targets.ok()) return done(targets.status());
  v1::DisconnectResponse resp;
  for (const auto& s : *targets) s->Close(code, req.reason());
  resp.set_disconnected(static_cast<uint32_t>(targets->size()));
  done(std::move(resp));
}

void ApiExecutor::Subscribe(const v1::SubscribeRequest& req, Done<v1::SubscribeResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  auto targets = Targets(req.connection_id(), req.user(),
                         req.target_case() != v1::SubscribeRequest::TARGET_NOT_SET);
  if (!targets.ok()) return done(targets.status());
  v1::SubscribeResponse resp;
  for (const auto& s : *targets) {
    absl::StatusOr<bool> added = node_->Subscribe(s, req.channel(), 0);
    // One target over its limit fails a single-connection call; for a user, the others proceed.
    if (!added.ok() && !req.connection_id().empty()) return done(added.status());
    if (added.ok() && *added) resp.set_subscribed(resp.subscribed() + 1);
  }
  done(std::move(resp));
}

void ApiExecutor::Unsubscribe(const v1::UnsubscribeRequest& req,
                              Done<v1::UnsubscribeResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  auto targets = Targets(req.connection_id(), req.user(),
                         req.target_case() != v1::UnsubscribeRequest::TARGET_NOT_SET);
  if (!targets.ok()) return done(targets.status());
  v1::UnsubscribeResponse resp;
  for (const auto& s : *targets) {
    if (node_->Unsubscribe(s, req.channel(), 0)) resp.set_unsubscribed(resp.unsubscribed() + 1);
  }
  done(std::move(resp));
}

void ApiExecutor::Stats(const v1::StatsRequest&, Done<v1::StatsResponse> done) {
  done(LocalStats());
}

v1::StatsResponse ApiExecutor::LocalStats() const {
  const NodeCounters& c = node_->counters();
  auto get = [](const std::atomic<uint64_t>& v) { return NodeCounters::Get(v); };
  v1::StatsResponse resp;
  resp.set_node(node_->name());
  resp.set_uptime_ms(absl::ToInt64Milliseconds(Now() - started_at_));
  resp.set_connections(static_cast<uint32_t>(node_->connection_count()));
  resp.set_users(static_cast<uint32_t>(node_->user_count()));
  resp.set_channels(static_cast<uint32_t>(node_->channel_count()));
  resp.set_subscriptions(node_->subscription_count());
  resp.set_connections_total(get(c.connections_total));
  resp.set_publications(get(c.publications));
  resp.set_deliveries(get(c.deliveries));
  const SessionCounters traffic = node_->Traffic();
  resp.set_frames_in(traffic.frames_in);
  resp.set_frames_out(traffic.frames_out);
  resp.set_bytes_in(traffic.bytes_in);
  resp.set_bytes_out(traffic.bytes_out);
  resp.set_orders_tracked(engine_->orders().TrackedOrders());
  resp.set_stale_orders(get(c.stale_orders));
  resp.set_client_errors(get(c.client_errors));
  resp.set_slow_consumer_closes(get(c.slow_consumer_closes));
  resp.set_messages_from_clients(get(c.messages_from_clients));
  resp.set_conflated_updates(get(c.conflated));
  resp.set_watchers(static_cast<uint32_t>(node_->events().watcher_count()));
  resp.set_rate_limited_frames(get(c.rate_limited_frames));
  resp.set_rate_limit_closes(get(c.rate_limit_closes));
  resp.set_refused_connections_per_ip(get(c.refused_per_ip));
  resp.set_refused_connections_per_user(get(c.refused_per_user));
  resp.set_refused_connections_max(get(c.refused_max_connections));
  resp.set_rate_limited_api_requests(get(c.api_rate_refusals));
  return resp;
}

void ApiExecutor::History(const v1::HistoryRequest& req, Done<v1::HistoryResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  if (req.limit() > 1000) return done(absl::InvalidArgumentError("limit: at most 1000"));
  HistoryQuery query;
  query.since_offset = req.since_offset();
  query.limit = req.limit() == 0 ? 100 : req.limit();
  query.reverse = req.reverse();
  engine_->broker().History(
      req.channel(), query,
      [channel = req.channel(), done = std::move(done)](absl::StatusOr<HistoryResult> h) mutable {
        if (!h.ok()) return done(h.status());
        v1::HistoryResponse resp;
        resp.set_epoch(h->position.epoch);
        resp.set_offset(h->position.offset);
        for (const StoredPublication& p : h->publications) {
          v1::HistoryEntry* out = resp.add_publications();
          out->set_channel(channel);
          out->set_offset(p.offset);
          out->set_published_at_ms(absl::ToUnixMillis(p.published_at));
          FromJson(*p.data_json, out->mutable_data(), kStoredJsonDepth).IgnoreError();
        }
        done(std::move(resp));
      });
}

void ApiExecutor::DispatchTask(const v1::DispatchTaskRequest& req,
                               Done<v1::DispatchTaskResponse> done) {
  if (absl::Status st = ValidateChannel("queue", req.queue(), limits_); !st.ok()) return done(st);
  absl::StatusOr<std::string> json = DataJson(req.has_data(), req.data());
  if (!json.ok()) return done(json.status());
  const absl::Duration deadline = req.ack_deadline_ms() == 0
                                      ? limits_.task_ack_deadline
                                      : absl::Milliseconds(req.ack_deadline_ms());
  const absl::Duration ttl =
      req.ttl_ms() == 0 ? limits_.task_ttl : absl::Milliseconds(req.ttl_ms());
  if (deadline < absl::Milliseconds(100)) {
    return done(absl::InvalidArgumentError("ack_deadline_ms: at least 100"));
  }
  done(node_->tasks().Dispatch(req.queue(), std::make_shared<const std::string>(*std::move(json)),
                               deadline, ttl, Now()));
}

void ApiExecutor::ListQueues(const v1::ListQueuesRequest&, Done<v1::ListQueuesResponse> done) {
  done(node_->tasks().List());
}

absl::StatusOr<std::shared_ptr<EventWatcher>> ApiExecutor::Watch(const v1::WatchEventsRequest& req,
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
  return node_->events().Watch(std::move(filter), capacity, std::move(on_ready));
}

void ApiExecutor::BeginDrain() {
  last_drain_refusal_ns_.store(absl::ToUnixNanos(Now()), std::memory_order_relaxed);
  draining_.store(true, std::memory_order_relaxed);
}

absl::Status ApiExecutor::RefuseDraining() {
  last_drain_refusal_ns_.store(absl::ToUnixNanos(Now()), std::memory_order_relaxed);
  return absl::UnavailableError(
      absl::StrCat("draining: node ", node_->name(), " is shutting down; retry on another node"));
}

}  // namespace herald::core
