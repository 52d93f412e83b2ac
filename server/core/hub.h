#ifndef HERALD_SERVER_CORE_HUB_H_
#define HERALD_SERVER_CORE_HUB_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "herald/v1/client.pb.h"
#include "server/auth/jwt.h"
#include "server/core/channel_index.h"
#include "server/core/connection_table.h"
#include "server/core/engine.h"
#include "server/core/limits.h"
#include "server/core/order_book.h"
#include "server/core/session.h"

namespace herald::core {

// The broker's domain logic, shared by the WebSocket edge (client frames) and the control API
// (one method per Broker RPC, taking and returning the proto messages of broker.proto). Owns the
// connection table, the channel index and the order book; borrows the engine and the frame
// factory, which must outlive it. Every method is thread-safe and never performs network I/O
// while holding a lock: sends only queue frames on sessions.
class Hub {
 public:
  // With a `verifier`, every connection must authenticate with a token (handshake `?token=` or a
  // first `connect` frame); without one, clients are anonymous (development mode). The verifier
  // must outlive the hub.
  Hub(Limits limits, std::string node, Engine* engine, const FrameFactory* frames,
      const auth::JwtVerifier* verifier = nullptr);

  const Limits& limits() const { return limits_; }
  const std::string& node() const { return node_; }

  // --- WebSocket edge -------------------------------------------------------------------------
  // A fresh, unique, sortable connection id ("<node>-<hex counter>").
  std::string NextConnectionId();
  // Adds an open session to the table and sends it `welcome`.
  absl::Status Register(std::shared_ptr<Session> session);
  // Removes a closed session from the table and every channel.
  void Unregister(const Session& session);
  // Handles one text frame from a client; replies go back on the session.
  void OnClientFrame(const std::shared_ptr<Session>& session, absl::string_view text);

  // --- Authentication (hub_auth.cc) -----------------------------------------------------------
  bool auth_required() const { return verifier_ != nullptr; }
  // Verifies a client token (UNAUTHENTICATED naming the bad part); FAILED_PRECONDITION when no
  // verifier is configured.
  absl::StatusOr<auth::Claims> VerifyToken(absl::string_view token) const;
  // Called by the transport when a deadline requested with Session::ScheduleAuthDeadline has
  // passed: closes a session that never authenticated (4003) or whose token expired without a
  // refresh (4001); otherwise schedules the next check.
  void CheckAuthDeadline(const std::shared_ptr<Session>& session);

  // --- Control API (validated here; errors name the bad field) --------------------------------
  absl::StatusOr<v1::PublishOrderResponse> PublishOrder(const v1::PublishOrderRequest& req);
  absl::StatusOr<v1::PublishResponse> Publish(const v1::PublishRequest& req);
  absl::StatusOr<v1::BroadcastResponse> Broadcast(const v1::BroadcastRequest& req);
  absl::StatusOr<v1::SendResponse> SendToUser(const v1::SendToUserRequest& req);
  absl::StatusOr<v1::SendResponse> SendToConnection(const v1::SendToConnectionRequest& req);
  absl::StatusOr<v1::ListConnectionsResponse> ListConnections(
      const v1::ListConnectionsRequest& req) const;
  absl::StatusOr<v1::Connection> GetConnection(const v1::GetConnectionRequest& req) const;
  absl::StatusOr<v1::DisconnectResponse> Disconnect(const v1::DisconnectRequest& req);
  absl::StatusOr<v1::SubscribeResponse> Subscribe(const v1::SubscribeRequest& req);
  absl::StatusOr<v1::UnsubscribeResponse> Unsubscribe(const v1::UnsubscribeRequest& req);
  absl::StatusOr<v1::StatsResponse> Stats(const v1::StatsRequest& req) const;

  // Closes every session with `code` and `reason` (shutdown drain).
  void CloseAll(int code, absl::string_view reason);
  size_t connection_count() const { return table_.size(); }
  // Counted by the transport when it closes a slow consumer.
  void CountSlowConsumerClose() { slow_consumer_closes_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // Subscribes `session` to a validated channel; replies `subscribed` with `reply_id` (0 for a
  // server-side subscribe, which pushes the frame without id). False when already subscribed.
  absl::StatusOr<bool> SubscribeSession(const std::shared_ptr<Session>& session,
                                        const std::string& channel, uint32_t reply_id);
  bool UnsubscribeSession(const std::shared_ptr<Session>& session, const std::string& channel,
                          uint32_t reply_id);
  // Publishes already-encoded JSON data to a validated channel.
  absl::StatusOr<v1::ChannelDelivery> PublishJson(const std::string& channel,
                                                  absl::string_view data_json);
  // Sessions named by a request's connection_id / user target.
  absl::StatusOr<std::vector<std::shared_ptr<Session>>> Targets(absl::string_view connection_id,
                                                                absl::string_view user,
                                                                bool has_target) const;
  // Authentication hooks (hub_auth.cc).
  void ArmAuthDeadline(Session& session);
  // False (after replying and closing) when an unauthenticated session sends anything but
  // `connect` while tokens are required.
  bool AdmitFrame(const std::shared_ptr<Session>& session, const v1::ClientFrame& frame);
  void OnConnect(const std::shared_ptr<Session>& session, uint32_t id, const std::string& token);
  void OnRefresh(const std::shared_ptr<Session>& session, uint32_t id, const std::string& token);
  // PERMISSION_DENIED (naming `field`) when the session's token does not allow `channel`.
  absl::Status CheckChannelPermission(const Session& session, absl::string_view field,
                                      absl::string_view channel) const;
  absl::StatusOr<std::string> DataJson(bool has_data, const google::protobuf::Message& data) const;
  void Reply(Session& session, const v1::ServerFrame& frame);
  void ReplyError(Session& session, uint32_t id, const absl::Status& status);
  v1::Connection Describe(const Session& session) const;

  const Limits limits_;
  const std::string node_;
  Engine* const engine_;
  const FrameFactory* const frames_;
  const absl::Time started_at_;
  const auth::JwtVerifier* const verifier_;

  ConnectionTable table_;
  ChannelIndex index_;
  OrderBook orders_;

  std::atomic<uint64_t> next_connection_{0};
  std::atomic<uint64_t> connections_total_{0};
  std::atomic<uint64_t> publications_{0};
  std::atomic<uint64_t> deliveries_{0};
  std::atomic<uint64_t> stale_orders_{0};
  std::atomic<uint64_t> client_errors_{0};
  std::atomic<uint64_t> slow_consumer_closes_{0};
  std::atomic<uint64_t> messages_from_clients_{0};
  // Counters of sessions that have closed, so Stats totals survive disconnects.
  std::atomic<uint64_t> closed_frames_in_{0};
  std::atomic<uint64_t> closed_frames_out_{0};
  std::atomic<uint64_t> closed_bytes_in_{0};
  std::atomic<uint64_t> closed_bytes_out_{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_HUB_H_
