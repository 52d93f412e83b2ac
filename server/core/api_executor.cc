#include "server/core/api_executor.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/order_json.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"

namespace herald::core {
namespace {

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

v1::ChannelDelivery ApiExecutor::Delivery(std::string channel, StreamPosition position) {
  v1::ChannelDelivery delivery;
  delivery.set_queued(static_cast<uint32_t>(node_->SubscriberCount(channel)));
  delivery.set_channel(std::move(channel));
  delivery.set_epoch(std::move(position.epoch));
  delivery.set_offset(position.offset);
  NodeCounters::Bump(node_->counters().publications);
  return delivery;
}

void ApiExecutor::PublishJson(const std::string& channel, PublishSpec spec,
                              Done<v1::ChannelDelivery> done) {
  engine_->broker().Publish(
      channel, std::move(spec),
      [this, channel, done = std::move(done)](absl::StatusOr<StreamPosition> pos) mutable {
        if (!pos.ok()) return done(pos.status());
        done(Delivery(std::move(channel), *std::move(pos)));
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
  // Also the publications no live subscriber of this node got (HandlePublication added the
  // others): a client that recovers one later acks it too.
  if constexpr (std::is_same_v<Resp, v1::PublishResponse>) {
    node_->acks().AddTarget(wait, resp.delivery().channel(), resp.delivery().offset());
  } else {
    for (const v1::ChannelDelivery& d : resp.deliveries()) {
      node_->acks().AddTarget(wait, d.channel(), d.offset());
    }
  }
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
  auto json = std::make_shared<std::string>(OrderJson(order));
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
        const size_t n = std::min(d->positions.size(), channels.size());
        resp.mutable_deliveries()->Reserve(static_cast<int>(n));
        for (size_t i = 0; i < n; ++i) {
          v1::ChannelDelivery* delivery = resp.add_deliveries();
          *delivery = Delivery(std::move(channels[i]), std::move(d->positions[i]));
          resp.set_queued(resp.queued() + delivery->queued());
        }
        FinishPublish(wait, d->applied, absl::OkStatus(), std::move(resp), std::move(done));
      });
}

void ApiExecutor::Publish(const v1::PublishRequest& req, Done<v1::PublishResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  absl::StatusOr<std::string> json =
      DataJson("data", req.has_data(), req.data(), req.data_json(), limits_);
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
  absl::StatusOr<std::string> json =
      DataJson("data", req.has_data(), req.data(), req.data_json(), limits_);
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

template <typename Req, typename Resp>
void ApiExecutor::AskEveryNode(const char* method, const Req& req, Merge<Resp> merge,
                               Done<Resp> done) {
  engine_->control().Survey(
      method, req.SerializeAsString(), absl::Milliseconds(limits_.control_timeout_ms),
      [merge = std::move(merge),
       done = std::move(done)](absl::StatusOr<ControlBus::Answers> answers) mutable {
        if (!answers.ok()) return done(answers.status());
        std::vector<absl::StatusOr<Resp>> replies;
        for (absl::StatusOr<std::string>& r : answers->replies) {
          if (!r.ok()) {
            replies.push_back(r.status());
            continue;
          }
          Resp resp;
          if (!resp.ParseFromString(*r)) {
            replies.push_back(absl::InternalError("control: a node's answer does not parse"));
            continue;
          }
          replies.push_back(std::move(resp));
        }
        done(merge(std::move(replies), answers->missing));
      });
}

namespace {

absl::Status NodesMissing(int missing) {
  return absl::UnavailableError(absl::StrCat("control: ", missing, " node", missing == 1 ? "" : "s",
                                             " did not answer within --control-timeout-ms"));
}

// The answer of the node that has the connection (the others answer NOT_FOUND). When none has
// it but some did not answer, it may be on one of those: UNAVAILABLE, not NOT_FOUND.
template <typename Resp>
ApiExecutor::Merge<Resp> FromTheNodeWithIt(std::string connection_id) {
  return [connection_id](std::vector<absl::StatusOr<Resp>> replies,
                         int missing) -> absl::StatusOr<Resp> {
    for (absl::StatusOr<Resp>& r : replies) {
      if (r.ok() || r.status().code() != absl::StatusCode::kNotFound) return std::move(r);
    }
    if (missing > 0) return NodesMissing(missing);
    return absl::NotFoundError(absl::StrCat("connection_id: no connection ", connection_id));
  };
}

// The nodes' answers added up by `add` (an error only when no node answered without one). Nodes
// that did not answer are not in the sum.
template <typename Resp>
ApiExecutor::Merge<Resp> Summed(void (*add)(Resp& total, const Resp& one)) {
  return [add](std::vector<absl::StatusOr<Resp>> replies, int missing) -> absl::StatusOr<Resp> {
    std::optional<Resp> total;
    absl::Status error = absl::UnavailableError("control: no node answered");
    for (absl::StatusOr<Resp>& r : replies) {
      if (!r.ok()) {
        error = r.status();
        continue;
      }
      if (!total.has_value()) {
        total = std::move(*r);
      } else {
        add(*total, *r);
      }
    }
    if (!total.has_value()) return missing > 0 ? NodesMissing(missing) : error;
    return *std::move(total);
  };
}

// A connection target (one node has it) or a user target (every node adds its part).
template <typename Resp>
ApiExecutor::Merge<Resp> ForTarget(const std::string& connection_id,
                                   void (*add)(Resp& total, const Resp& one)) {
  if (!connection_id.empty()) return FromTheNodeWithIt<Resp>(connection_id);
  return Summed<Resp>(add);
}

void AddQueued(v1::SendResponse& total, const v1::SendResponse& one) {
  total.set_queued(total.queued() + one.queued());
}

// Queues with only their worker counts (TaskDispatcher::Workers), concatenated: Describe adds
// up the counts per queue.
void AddWorkers(v1::ListQueuesResponse& total, const v1::ListQueuesResponse& one) {
  for (const v1::QueueInfo& q : one.queues()) *total.add_queues() = q;
}

absl::Status ValidateTarget(absl::string_view connection_id, absl::string_view user,
                            bool has_target) {
  if (!has_target || (connection_id.empty() && user.empty())) {
    return absl::InvalidArgumentError("target: set connection_id or user");
  }
  return absl::OkStatus();
}

}  // namespace

void ApiExecutor::SendToUser(const v1::SendToUserRequest& req, Done<v1::SendResponse> done) {
  if (req.user().empty()) return done(absl::InvalidArgumentError("user: must not be empty"));
  if (absl::StatusOr<std::string> json =
          DataJson("data", req.has_data(), req.data(), req.data_json(), limits_);
      !json.ok()) {
    return done(json.status());
  }
  AskEveryNode("SendToUser", req, Summed<v1::SendResponse>(&AddQueued), std::move(done));
}

void ApiExecutor::SendToConnection(const v1::SendToConnectionRequest& req,
                                   Done<v1::SendResponse> done) {
  if (req.connection_id().empty()) {
    return done(absl::InvalidArgumentError("connection_id: must not be empty"));
  }
  if (absl::StatusOr<std::string> json =
          DataJson("data", req.has_data(), req.data(), req.data_json(), limits_);
      !json.ok()) {
    return done(json.status());
  }
  AskEveryNode("SendToConnection", req, FromTheNodeWithIt<v1::SendResponse>(req.connection_id()),
               std::move(done));
}

void ApiExecutor::ListConnections(const v1::ListConnectionsRequest& req,
                                  Done<v1::ListConnectionsResponse> done) {
  if (req.page_size() > limits_.max_page_size) {
    return done(
        absl::InvalidArgumentError(absl::StrCat("page_size: at most ", limits_.max_page_size)));
  }
  if (!req.channel().empty()) {
    if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
      return done(st);
    }
  }
  const size_t page_size = req.page_size() == 0 ? 100 : req.page_size();
  // Every node lists its part of the page; the page is cut from their union, ordered by id.
  AskEveryNode<v1::ListConnectionsRequest, v1::ListConnectionsResponse>(
      "ListConnections", req,
      [page_size](std::vector<absl::StatusOr<v1::ListConnectionsResponse>> replies,
                  int missing) -> absl::StatusOr<v1::ListConnectionsResponse> {
        // Each node answered its first page_size matches after the token, and its count.
        std::vector<v1::Connection> all;
        uint32_t total = 0;
        for (auto& r : replies) {
          if (!r.ok()) return r.status();
          total += r->total();
          for (v1::Connection& c : *r->mutable_connections()) all.push_back(std::move(c));
        }
        std::sort(all.begin(), all.end(),
                  [](const v1::Connection& a, const v1::Connection& b) { return a.id() < b.id(); });
        v1::ListConnectionsResponse resp;
        resp.set_total(total);
        resp.set_missing_nodes(static_cast<uint32_t>(missing));
        auto it = all.begin();
        for (; it != all.end() && static_cast<size_t>(resp.connections_size()) < page_size; ++it) {
          *resp.add_connections() = std::move(*it);
        }
        if (it != all.end()) resp.set_next_page_token(resp.connections().rbegin()->id());
        return resp;
      },
      std::move(done));
}

void ApiExecutor::GetConnection(const v1::GetConnectionRequest& req, Done<v1::Connection> done) {
  if (req.connection_id().empty()) {
    return done(absl::InvalidArgumentError("connection_id: must not be empty"));
  }
  AskEveryNode("GetConnection", req, FromTheNodeWithIt<v1::Connection>(req.connection_id()),
               std::move(done));
}

void ApiExecutor::Disconnect(const v1::DisconnectRequest& req, Done<v1::DisconnectResponse> done) {
  const int code = req.code() == 0 ? kCloseNormal : static_cast<int>(req.code());
  if (absl::Status st = ValidateClose(code, req.reason()); !st.ok()) return done(st);
  if (absl::Status st = ValidateTarget(req.connection_id(), req.user(),
                                       req.target_case() != v1::DisconnectRequest::TARGET_NOT_SET);
      !st.ok()) {
    return done(st);
  }
  AskEveryNode("Disconnect", req,
               ForTarget<v1::DisconnectResponse>(
                   req.connection_id(),
                   [](v1::DisconnectResponse& total, const v1::DisconnectResponse& one) {
                     total.set_disconnected(total.disconnected() + one.disconnected());
                   }),
               std::move(done));
}

void ApiExecutor::Subscribe(const v1::SubscribeRequest& req, Done<v1::SubscribeResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateTarget(req.connection_id(), req.user(),
                                       req.target_case() != v1::SubscribeRequest::TARGET_NOT_SET);
      !st.ok()) {
    return done(st);
  }
  AskEveryNode("Subscribe", req,
               ForTarget<v1::SubscribeResponse>(
                   req.connection_id(),
                   [](v1::SubscribeResponse& total, const v1::SubscribeResponse& one) {
                     total.set_subscribed(total.subscribed() + one.subscribed());
                   }),
               std::move(done));
}

void ApiExecutor::Unsubscribe(const v1::UnsubscribeRequest& req,
                              Done<v1::UnsubscribeResponse> done) {
  if (absl::Status st = ValidateChannel("channel", req.channel(), limits_); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateTarget(req.connection_id(), req.user(),
                                       req.target_case() != v1::UnsubscribeRequest::TARGET_NOT_SET);
      !st.ok()) {
    return done(st);
  }
  AskEveryNode("Unsubscribe", req,
               ForTarget<v1::UnsubscribeResponse>(
                   req.connection_id(),
                   [](v1::UnsubscribeResponse& total, const v1::UnsubscribeResponse& one) {
                     total.set_unsubscribed(total.unsubscribed() + one.unsubscribed());
                   }),
               std::move(done));
}

namespace {

// Adds `one`'s counts and counters to `total` (every unsigned field but orders_tracked, which is
// one cluster-wide figure: the largest is the latest).
void AddStats(v1::StatsResponse& total, const v1::StatsResponse& one) {
  const google::protobuf::Descriptor* d = v1::StatsResponse::descriptor();
  const google::protobuf::Reflection* r = v1::StatsResponse::GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->is_repeated() || f->number() == v1::StatsResponse::kMissingNodesFieldNumber) continue;
    if (f->number() == v1::StatsResponse::kOrdersTrackedFieldNumber) {
      total.set_orders_tracked(std::max(total.orders_tracked(), one.orders_tracked()));
    } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      r->SetUInt64(&total, f, r->GetUInt64(total, f) + r->GetUInt64(one, f));
    } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT32) {
      r->SetUInt32(&total, f, r->GetUInt32(total, f) + r->GetUInt32(one, f));
    }
  }
}

}  // namespace

void ApiExecutor::Stats(const v1::StatsRequest& req, Done<v1::StatsResponse> done) {
  AskEveryNode<v1::StatsRequest, v1::StatsResponse>(
      "Stats", req,
      [this](std::vector<absl::StatusOr<v1::StatsResponse>> replies,
             int missing) -> absl::StatusOr<v1::StatsResponse> {
        std::vector<v1::StatsResponse> nodes;
        absl::Status error = missing > 0 ? NodesMissing(missing)
                                         : absl::UnavailableError("control: no node answered");
        for (auto& r : replies) {
          if (r.ok()) {
            nodes.push_back(*std::move(r));
          } else {
            error = r.status();
          }
        }
        if (nodes.empty()) return error;
        std::sort(nodes.begin(), nodes.end(),
                  [](const auto& a, const auto& b) { return a.node() < b.node(); });
        v1::StatsResponse total;
        total.set_node(node_->name());
        total.set_uptime_ms(absl::ToInt64Milliseconds(Now() - started_at_));
        for (v1::StatsResponse& n : nodes) {
          AddStats(total, n);
          *total.add_nodes() = std::move(n);
        }
        total.set_missing_nodes(static_cast<uint32_t>(missing));
        return total;
      },
      std::move(done));
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
  absl::StatusOr<std::string> json = DataJson("data", req.has_data(), req.data(), limits_);
  if (!json.ok()) return done(json.status());
  const absl::Duration deadline = req.ack_deadline_ms() == 0
                                      ? limits_.task_ack_deadline
                                      : absl::Milliseconds(req.ack_deadline_ms());
  const absl::Duration ttl =
      req.ttl_ms() == 0 ? limits_.task_ttl : absl::Milliseconds(req.ttl_ms());
  if (deadline < absl::Milliseconds(100)) {
    return done(absl::InvalidArgumentError("ack_deadline_ms: at least 100"));
  }
  node_->tasks().Dispatch(req.queue(), std::make_shared<const std::string>(*std::move(json)),
                          deadline, ttl, std::move(done));
}

void ApiExecutor::ListQueues(const v1::ListQueuesRequest& req, Done<v1::ListQueuesResponse> done) {
  // Workers from every node, queue state from the store.
  AskEveryNode<v1::ListQueuesRequest, v1::ListQueuesResponse>(
      "ListQueues", req, Summed<v1::ListQueuesResponse>(&AddWorkers),
      [this, done = std::move(done)](absl::StatusOr<v1::ListQueuesResponse> workers) mutable {
        if (!workers.ok()) return done(workers.status());
        engine_->tasks().List([workers = *std::move(workers), done = std::move(done)](
                                  absl::StatusOr<std::vector<QueueState>> states) mutable {
          if (!states.ok()) return done(states.status());
          done(TaskDispatcher::Describe(workers, *states));
        });
      });
}

absl::Status ApiExecutor::ValidatePresenceChannel(const std::string& channel) const {
  if (absl::Status st = ValidateChannel("channel", channel, limits_); !st.ok()) return st;
  if (!IsPresenceChannel(channel, limits_)) {
    return absl::FailedPreconditionError(
        absl::StrCat("channel: '", channel,
                     "' is not a presence channel (its prefix is not in --presence-prefixes)"));
  }
  return absl::OkStatus();
}

void ApiExecutor::Presence(const v1::PresenceRequest& req, Done<v1::PresenceResponse> done) {
  if (absl::Status st = ValidatePresenceChannel(req.channel()); !st.ok()) return done(st);
  engine_->presence().Get(
      req.channel(),
      [done = std::move(done)](absl::StatusOr<std::vector<v1::ClientInfo>> c) mutable {
        if (!c.ok()) return done(c.status());
        v1::PresenceResponse resp;
        for (v1::ClientInfo& client : *c) *resp.add_clients() = std::move(client);
        done(std::move(resp));
      });
}

void ApiExecutor::PresenceStats(const v1::PresenceStatsRequest& req,
                                Done<v1::PresenceStatsResponse> done) {
  if (absl::Status st = ValidatePresenceChannel(req.channel()); !st.ok()) return done(st);
  engine_->presence().Count(
      req.channel(),
      [done = std::move(done)](absl::StatusOr<PresenceRegistry::Counts> counts) mutable {
        if (!counts.ok()) return done(counts.status());
        v1::PresenceStatsResponse resp;
        resp.set_connections(counts->connections);
        resp.set_users(counts->users);
        done(std::move(resp));
      });
}

void ApiExecutor::Channels(const v1::ChannelsRequest& req, Done<v1::ChannelsResponse> done) {
  if (req.limit() > 10000) return done(absl::InvalidArgumentError("limit: at most 10000"));
  if (req.prefix().size() > limits_.max_channel_length) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("prefix: longer than ", limits_.max_channel_length, " bytes")));
  }
  const size_t limit = req.limit() == 0 ? 1000 : req.limit();
  // Every node lists its channels; counts of one channel on several nodes add up.
  AskEveryNode<v1::ChannelsRequest, v1::ChannelsResponse>(
      "Channels", req,
      [limit](std::vector<absl::StatusOr<v1::ChannelsResponse>> replies,
              int) -> absl::StatusOr<v1::ChannelsResponse> {
        // A node that did not answer has its channels left out.
        std::map<std::string, uint32_t> merged;
        for (auto& r : replies) {
          if (!r.ok()) return r.status();
          for (const v1::ChannelInfo& c : r->channels()) merged[c.channel()] += c.subscribers();
        }
        v1::ChannelsResponse resp;
        resp.set_total(static_cast<uint32_t>(merged.size()));
        for (const auto& [name, subscribers] : merged) {
          if (static_cast<size_t>(resp.channels_size()) >= limit) break;
          v1::ChannelInfo* info = resp.add_channels();
          info->set_channel(name);
          info->set_subscribers(subscribers);
        }
        return resp;
      },
      std::move(done));
}

absl::StatusOr<EventWatcher::Filter> ApiExecutor::WatchFilter(
    const v1::WatchEventsRequest& req) const {
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
  return filter;
}

absl::StatusOr<std::shared_ptr<EventWatcher>> ApiExecutor::Watch(
    const v1::WatchEventsRequest& req, std::function<void()> on_ready,
    std::function<void()> on_attached) {
  absl::StatusOr<EventWatcher::Filter> filter = WatchFilter(req);
  if (!filter.ok()) return filter.status();
  if (req.buffer() > 1000000) return absl::InvalidArgumentError("buffer: at most 1000000");
  const size_t capacity = req.buffer() == 0 ? limits_.watcher_buffer : req.buffer();
  return node_->events().Watch(*std::move(filter), capacity, std::move(on_ready),
                               std::move(on_attached));
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
