#ifndef HERALD_TESTS_SUPPORT_TEST_HUB_H_
#define HERALD_TESTS_SUPPORT_TEST_HUB_H_

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/hub.h"

namespace herald::testing {

// A core::Hub for unit tests and fuzzers, with its parts' calls under one name: client-protocol
// and node calls forwarded, and every control API call in two forms — with a completion, as the
// transports call it, and "now", returning the result of a call that completed before returning
// (every call on a MemoryEngine does; a publish that asks to wait for an ack is refused).
// Thread-safe as the hub is.
class TestHub : public core::Hub {
 public:
  using core::Hub::Hub;
  template <typename T>
  using Done = core::Done<T>;

  // ClientProtocol
  absl::Status Register(std::shared_ptr<core::Session> s) {
    return protocol().Register(std::move(s));
  }
  void Unregister(core::Session& s, int code = 1006, absl::string_view reason = "") {
    protocol().Unregister(s, code, reason);
  }
  void OnClientFrame(const std::shared_ptr<core::Session>& s, absl::string_view text) {
    protocol().OnClientFrame(s, text);
  }
  void CheckAuthDeadline(const std::shared_ptr<core::Session>& s) {
    protocol().CheckAuthDeadline(s);
  }
  absl::StatusOr<auth::Claims> VerifyToken(absl::string_view token) {
    return protocol().VerifyToken(token);
  }

  // Node
  std::string NextConnectionId() { return node().NextConnectionId(); }
  absl::StatusOr<core::Node::ConnectionSlots> AdmitConnection(absl::string_view remote,
                                                              absl::string_view user) {
    return node().AdmitConnection(remote, user);
  }
  size_t ConnectionsFromIp(absl::string_view ip) { return node().ConnectionsFromIp(ip); }
  size_t ConnectionsOfUser(absl::string_view user) { return node().ConnectionsOfUser(user); }
  size_t connection_count() { return node().connection_count(); }
  void SetLoopExecutor(core::LoopExecutor* loops) { node().SetLoopExecutor(loops); }
  void CloseAll(int code, absl::string_view reason) { node().CloseAll(code, reason); }

  // ApiExecutor
#define HERALD_TEST_HUB_METHOD(Name, Req, Resp)                                            \
  void Name(const v1::Req& req, Done<v1::Resp> done) { api().Name(req, std::move(done)); } \
  absl::StatusOr<v1::Resp> Name(const v1::Req& req) { return Now(&core::ApiExecutor::Name, req); }
  HERALD_TEST_HUB_METHOD(PublishOrder, PublishOrderRequest, PublishOrderResponse)
  HERALD_TEST_HUB_METHOD(Publish, PublishRequest, PublishResponse)
  HERALD_TEST_HUB_METHOD(Broadcast, BroadcastRequest, BroadcastResponse)
  HERALD_TEST_HUB_METHOD(SendToUser, SendToUserRequest, SendResponse)
  HERALD_TEST_HUB_METHOD(SendToConnection, SendToConnectionRequest, SendResponse)
  HERALD_TEST_HUB_METHOD(ListConnections, ListConnectionsRequest, ListConnectionsResponse)
  HERALD_TEST_HUB_METHOD(GetConnection, GetConnectionRequest, Connection)
  HERALD_TEST_HUB_METHOD(Disconnect, DisconnectRequest, DisconnectResponse)
  HERALD_TEST_HUB_METHOD(Subscribe, SubscribeRequest, SubscribeResponse)
  HERALD_TEST_HUB_METHOD(Unsubscribe, UnsubscribeRequest, UnsubscribeResponse)
  HERALD_TEST_HUB_METHOD(Stats, StatsRequest, StatsResponse)
  HERALD_TEST_HUB_METHOD(History, HistoryRequest, HistoryResponse)
  HERALD_TEST_HUB_METHOD(DispatchTask, DispatchTaskRequest, DispatchTaskResponse)
  HERALD_TEST_HUB_METHOD(ListQueues, ListQueuesRequest, ListQueuesResponse)
  HERALD_TEST_HUB_METHOD(Presence, PresenceRequest, PresenceResponse)
  HERALD_TEST_HUB_METHOD(PresenceStats, PresenceStatsRequest, PresenceStatsResponse)
  HERALD_TEST_HUB_METHOD(Channels, ChannelsRequest, ChannelsResponse)
#undef HERALD_TEST_HUB_METHOD
  absl::StatusOr<std::shared_ptr<core::EventWatcher>> Watch(const v1::WatchEventsRequest& req,
                                                            std::function<void()> on_ready) {
    return api().Watch(req, std::move(on_ready));
  }
  void Unwatch(const core::EventWatcher* watcher) { api().Unwatch(watcher); }

 private:
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Now(void (core::ApiExecutor::*fn)(const Req&, Done<Resp>), const Req& req) {
    if constexpr (std::is_same_v<Req, v1::PublishRequest> ||
                  std::is_same_v<Req, v1::PublishOrderRequest>) {
      // The "now" form has nowhere to deliver a later reply, so it refuses to wait.
      if (req.has_ack() && req.ack().wait_ms() > 0) {
        return absl::InvalidArgumentError(
            "ack.wait_ms: this in-process call cannot wait for an ack; pass a completion");
      }
    }
    auto result = std::make_shared<std::optional<absl::StatusOr<Resp>>>();
    (api().*fn)(req, [result](absl::StatusOr<Resp> r) { *result = std::move(r); });
    if (!result->has_value()) {
      return absl::InternalError("the call did not complete at once (it waits for an ack)");
    }
    return **std::move(result);
  }
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_TEST_HUB_H_
