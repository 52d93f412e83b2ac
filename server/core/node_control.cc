#include "server/core/node_control.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"

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

absl::Status NoConnection(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("connection_id: no connection ", id));
}

}  // namespace

NodeControl::NodeControl(Node* node, ControlBus* bus) : node_(node), bus_(bus) {
  Add("SendToUser", &NodeControl::SendToUser);
  Add("SendToConnection", &NodeControl::SendToConnection);
  Add("ListConnections", &NodeControl::ListConnections);
  Add("GetConnection", &NodeControl::GetConnection);
  Add("Disconnect", &NodeControl::Disconnect);
  Add("Subscribe", &NodeControl::Subscribe);
  Add("Unsubscribe", &NodeControl::Unsubscribe);
  Add("Channels", &NodeControl::Channels);
  Add("ListQueues", &NodeControl::ListQueues);
  Add("Stats", &NodeControl::Stats);
}

template <typename Req, typename Resp>
void NodeControl::Add(const char* method,
                      absl::StatusOr<Resp> (NodeControl::*fn)(const Req&) const) {
  methods_[method] = [this, fn](const std::string& bytes) -> absl::StatusOr<std::string> {
    Req req;
    if (!req.ParseFromString(bytes)) {
      return absl::InvalidArgumentError("control: request does not parse");
    }
    absl::StatusOr<Resp> resp = (this->*fn)(req);
    if (!resp.ok()) return resp.status();
    return resp->SerializeAsString();
  };
}

void NodeControl::HandleSurvey(const std::string& method, const std::string& request,
                               Done<std::string> done) {
  auto it = methods_.find(method);
  if (it == methods_.end()) {
    return done(absl::UnimplementedError(absl::StrCat("control: no method ", method)));
  }
  done(it->second(request));
}

void NodeControl::HandleEvent(const std::string& bytes) {
  v1::Event event;
  if (!event.ParseFromString(bytes)) return;
  // The user is back, on another node: a DISCONNECT held back here is not news any more.
  if (event.type() == v1::EVENT_TYPE_CONNECT) node_->ForgetHeldDisconnects(event.user());
  // Another node reports the user offline: the DISCONNECTs of their connections here go first.
  if (event.type() == v1::EVENT_TYPE_USER_OFFLINE) node_->EmitHeldDisconnects(&event.user());
  node_->events().EmitRemote(event);
}

// A forwarded ack is "<wait id> " + serialized v1::AckOutcome.
void NodeControl::ForwardAck(const std::string& node, uint64_t wait, const v1::AckOutcome& ack) {
  bus_->ForwardAck(node, absl::StrCat(wait, " ", ack.SerializeAsString()));
}

void NodeControl::HandleAck(const std::string& bytes) {
  const size_t space = bytes.find(' ');
  uint64_t wait = 0;
  v1::AckOutcome ack;
  if (space == std::string::npos || !absl::SimpleAtoi(bytes.substr(0, space), &wait) ||
      !ack.ParseFromArray(bytes.data() + space + 1, static_cast<int>(bytes.size() - space - 1))) {
    return;
  }
  node_->acks().OnRemoteAck(wait, ack, node_->Now());
}

void NodeControl::Relay(const v1::Event& event) {
  bus_->ShareEvent(event.SerializeAsString(),
                   event.type() == v1::EVENT_TYPE_CONNECT && !event.user().empty()
                       ? ControlBus::EventAudience::kEveryNode
                       : ControlBus::EventAudience::kWatchers);
}

void NodeControl::Attach(std::function<void()> attached) {
  bus_->AttachWatcher([attached = std::move(attached)]() mutable { attached(); });
}

absl::StatusOr<std::vector<std::shared_ptr<Session>>> NodeControl::Targets(
    absl::string_view connection_id, absl::string_view user) const {
  if (!connection_id.empty()) {
    std::shared_ptr<Session> s = node_->Find(connection_id);
    if (s == nullptr) return NoConnection(connection_id);
    return std::vector<std::shared_ptr<Session>>{std::move(s)};
  }
  return node_->FindUser(user);
}

uint32_t NodeControl::Push(const google::protobuf::Value& data, absl::string_view data_json,
                           const std::vector<std::shared_ptr<Session>>& sessions) const {
  if (sessions.empty()) return 0;
  // Validated once already, by the ApiExecutor that asked every node.
  std::string json(absl::StripAsciiWhitespace(data_json));
  if (json.empty()) ToJson(data, &json).IgnoreError();
  OutFramePtr frame = node_->MakeFrame(EncodePush(json));
  uint32_t queued = 0;
  for (const auto& s : sessions) queued += s->Send(frame) ? 1 : 0;
  NodeCounters::Bump(node_->counters().deliveries, queued);
  return queued;
}

absl::StatusOr<v1::SendResponse> NodeControl::SendToUser(const v1::SendToUserRequest& req) const {
  v1::SendResponse resp;
  resp.set_queued(Push(req.data(), req.data_json(), node_->FindUser(req.user())));
  return resp;
}

absl::StatusOr<v1::SendResponse> NodeControl::SendToConnection(
    const v1::SendToConnectionRequest& req) const {
  std::shared_ptr<Session> s = node_->Find(req.connection_id());
  if (s == nullptr) return NoConnection(req.connection_id());
  v1::SendResponse resp;
  resp.set_queued(Push(req.data(), req.data_json(), {s}));
  return resp;
}

absl::StatusOr<v1::ListConnectionsResponse> NodeControl::ListConnections(
    const v1::ListConnectionsRequest& req) const {
  std::vector<std::shared_ptr<Session>> candidates;
  if (!req.user().empty()) {
    candidates = node_->FindUser(req.user());
  } else if (!req.channel().empty()) {
    candidates = node_->SubscribersOf(req.channel())->sessions;
  } else {
    candidates = node_->All();
  }
  std::vector<std::shared_ptr<Session>> matches;
  for (auto& s : candidates) {
    if (!req.user().empty() && s->user() != req.user()) continue;
    if (!req.channel().empty() && !s->IsSubscribed(req.channel())) continue;
    if (!RemoteMatches(s->meta().remote_address, req.remote_address())) continue;
    matches.push_back(std::move(s));
  }
  // Only this node's part of the page: its first page_size matches after the token, and one
  // more to tell that the page is not the last (the page is cut from the union of the nodes'
  // parts, so no node needs to send more), and its count.
  std::sort(matches.begin(), matches.end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  const size_t page_size = req.page_size() == 0 ? 100 : req.page_size();
  auto it = matches.begin();
  if (!req.page_token().empty()) {
    it = std::upper_bound(matches.begin(), matches.end(), req.page_token(),
                          [](const std::string& t, const auto& s) { return t < s->id(); });
  }
  v1::ListConnectionsResponse resp;
  for (; it != matches.end() && static_cast<size_t>(resp.connections_size()) <= page_size; ++it) {
    *resp.add_connections() = node_->Describe(**it);
  }
  resp.set_total(static_cast<uint32_t>(matches.size()));
  return resp;
}

absl::StatusOr<v1::Connection> NodeControl::GetConnection(
    const v1::GetConnectionRequest& req) const {
  std::shared_ptr<Session> s = node_->Find(req.connection_id());
  if (s == nullptr) return NoConnection(req.connection_id());
  return node_->Describe(*s);
}

absl::StatusOr<v1::DisconnectResponse> NodeControl::Disconnect(
    const v1::DisconnectRequest& req) const {
  auto targets = Targets(req.connection_id(), req.user());
  if (!targets.ok()) return targets.status();
  const int code = req.code() == 0 ? kCloseNormal : static_cast<int>(req.code());
  for (const auto& s : *targets) s->Close(code, req.reason());
  v1::DisconnectResponse resp;
  resp.set_disconnected(static_cast<uint32_t>(targets->size()));
  return resp;
}

absl::StatusOr<v1::SubscribeResponse> NodeControl::Subscribe(
    const v1::SubscribeRequest& req) const {
  auto targets = Targets(req.connection_id(), req.user());
  if (!targets.ok()) return targets.status();
  v1::SubscribeResponse resp;
  for (const auto& s : *targets) {
    // A connection subscribed already is neither counted nor told again.
    if (s->IsSubscribed(req.channel())) continue;
    absl::StatusOr<bool> added = node_->Subscribe(s, req.channel(), 0);
    // One target over its limit fails a single-connection call; for a user, the others proceed.
    if (!added.ok() && !req.connection_id().empty()) return added.status();
    if (added.ok() && *added) resp.set_subscribed(resp.subscribed() + 1);
  }
  return resp;
}

absl::StatusOr<v1::UnsubscribeResponse> NodeControl::Unsubscribe(
    const v1::UnsubscribeRequest& req) const {
  auto targets = Targets(req.connection_id(), req.user());
  if (!targets.ok()) return targets.status();
  v1::UnsubscribeResponse resp;
  for (const auto& s : *targets) {
    if (node_->Unsubscribe(s, req.channel(), 0)) resp.set_unsubscribed(resp.unsubscribed() + 1);
  }
  return resp;
}

absl::StatusOr<v1::ChannelsResponse> NodeControl::Channels(const v1::ChannelsRequest& req) const {
  v1::ChannelsResponse resp;
  for (auto& [name, subscribers] : node_->ChannelsWithPrefix(req.prefix())) {
    v1::ChannelInfo* info = resp.add_channels();
    info->set_channel(name);
    info->set_subscribers(static_cast<uint32_t>(subscribers));
  }
  resp.set_total(static_cast<uint32_t>(resp.channels_size()));
  return resp;
}

absl::StatusOr<v1::ListQueuesResponse> NodeControl::ListQueues(const v1::ListQueuesRequest&) const {
  return node_->tasks().Workers();
}

absl::StatusOr<v1::StatsResponse> NodeControl::Stats(const v1::StatsRequest&) const {
  if (!local_stats_) return absl::UnimplementedError("control: no Stats on this node");
  return local_stats_();
}

}  // namespace herald::core
