#ifndef HERALD_SERVER_CORE_NODE_CONTROL_H_
#define HERALD_SERVER_CORE_NODE_CONTROL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "herald/v1/broker.pb.h"
#include "server/core/acks.h"
#include "server/core/control_bus.h"
#include "server/core/events.h"
#include "server/core/node.h"

namespace herald::core {

// This node's side of the control bus. It answers this node's part of the control calls that
// concern every node, as the ControlBus delivers them (ApiExecutor asks, then merges the nodes'
// answers): SendToUser, SendToConnection, ListConnections (this node's page of the matches, and
// their count), GetConnection, Disconnect, Subscribe, Unsubscribe on the node's own connections,
// Channels (its channels with subscribers), ListQueues (this node's task workers per queue) and
// Stats (this node's). A connection target this node does not have answers NOT_FOUND (the caller
// looks for the node that has it). Requests arrive validated. It is also the node's EventRelay:
// it shares the node's events with other nodes' watchers through the bus, and hands their events
// to this node's (dropping a user's held-back DISCONNECTs when the user connected elsewhere). And
// it is the node's AckRelay: acks of publications whose publish call waits on another node go to
// that node, and the acks other nodes forward end this node's waits.
// Borrows the node and the bus, which must outlive it; thread-safe.
class NodeControl : public ControlHandler, public EventRelay, public AckRelay {
 public:
  NodeControl(Node* node, ControlBus* bus);
  // Where the Stats survey gets this node's figures (ApiExecutor::LocalStats). Set once, before
  // serving.
  void SetLocalStats(std::function<v1::StatsResponse()> local_stats) {
    local_stats_ = std::move(local_stats);
  }

  void HandleSurvey(const std::string& method, const std::string& request,
                    Done<std::string> done) override;
  void HandleEvent(const std::string& event) override;
  void HandleAck(const std::string& ack) override;

  // AckRelay
  void ForwardAck(const std::string& node, uint64_t wait, const v1::AckOutcome& ack) override;

  // EventRelay
  bool others_watch() const override { return bus_->OthersWatch(); }
  void Relay(const v1::Event& event) override;
  void Attach(std::function<void()> attached) override;
  void Detach() override { bus_->DetachWatcher(); }

 private:
  using Local = absl::AnyInvocable<absl::StatusOr<std::string>(const std::string&) const>;
  template <typename Req, typename Resp>
  void Add(const char* method, absl::StatusOr<Resp> (NodeControl::*fn)(const Req&) const);

  absl::StatusOr<v1::SendResponse> SendToUser(const v1::SendToUserRequest& req) const;
  absl::StatusOr<v1::SendResponse> SendToConnection(const v1::SendToConnectionRequest& req) const;
  absl::StatusOr<v1::ListConnectionsResponse> ListConnections(
      const v1::ListConnectionsRequest& req) const;
  absl::StatusOr<v1::Connection> GetConnection(const v1::GetConnectionRequest& req) const;
  absl::StatusOr<v1::DisconnectResponse> Disconnect(const v1::DisconnectRequest& req) const;
  absl::StatusOr<v1::SubscribeResponse> Subscribe(const v1::SubscribeRequest& req) const;
  absl::StatusOr<v1::UnsubscribeResponse> Unsubscribe(const v1::UnsubscribeRequest& req) const;
  // This node's channels with the prefix and their subscriber counts (unordered, no limit).
  absl::StatusOr<v1::ChannelsResponse> Channels(const v1::ChannelsRequest& req) const;
  absl::StatusOr<v1::ListQueuesResponse> ListQueues(const v1::ListQueuesRequest& req) const;
  absl::StatusOr<v1::StatsResponse> Stats(const v1::StatsRequest& req) const;

  // This node's sessions named by a request's connection_id or user.
  absl::StatusOr<std::vector<std::shared_ptr<Session>>> Targets(absl::string_view connection_id,
                                                                absl::string_view user) const;
  // Queues a `push` frame with `data` on `sessions`; how many took it.
  // `data_json` when it is set, else `data` as JSON (the request's two forms of its data).
  uint32_t Push(const google::protobuf::Value& data, absl::string_view data_json,
                const std::vector<std::shared_ptr<Session>>& sessions) const;

  Node* const node_;
  ControlBus* const bus_;
  std::function<v1::StatsResponse()> local_stats_;
  absl::flat_hash_map<std::string, Local> methods_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_NODE_CONTROL_H_
