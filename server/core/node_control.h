#ifndef HERALD_SERVER_CORE_NODE_CONTROL_H_
#define HERALD_SERVER_CORE_NODE_CONTROL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "herald/v1/broker.pb.h"
#include "server/core/control_bus.h"
#include "server/core/node.h"

namespace herald::core {

// This node's part of the control calls that concern every node, as the ControlBus delivers them
// (ApiExecutor asks, then merges the nodes' answers): SendToUser, SendToConnection,
// ListConnections (every match, unpaged), GetConnection, Disconnect, Subscribe, Unsubscribe on
// the node's own connections, Channels (its channels with subscribers) and ListQueues (this
// node's task workers per queue). A connection target this node does not have answers NOT_FOUND
// (the caller looks for the node that has it). Requests arrive validated. Borrows the node, which
// must outlive it; stateless otherwise and thread-safe.
class NodeControl : public ControlHandler {
 public:
  explicit NodeControl(Node* node);

  void HandleSurvey(const std::string& method, const std::string& request,
                    Done<std::string> done) override;

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

  // This node's sessions named by a request's connection_id or user.
  absl::StatusOr<std::vector<std::shared_ptr<Session>>> Targets(absl::string_view connection_id,
                                                                absl::string_view user) const;
  // Queues a `push` frame with `data` on `sessions`; how many took it.
  uint32_t Push(const google::protobuf::Value& data,
                const std::vector<std::shared_ptr<Session>>& sessions) const;

  Node* const node_;
  absl::flat_hash_map<std::string, Local> methods_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_NODE_CONTROL_H_
