#ifndef HERALD_SERVER_CORE_HUB_H_
#define HERALD_SERVER_CORE_HUB_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "herald/v1/client.pb.h"
#include "server/auth/jwt.h"
#include "server/core/acks.h"
#include "server/core/channel_index.h"
#include "server/core/connection_quota.h"
#include "server/core/connection_table.h"
#include "server/core/engine.h"
#include "server/core/events.h"
#include "server/core/idempotency.h"
#include "server/core/limits.h"
#include "server/core/order_book.h"
#include "server/core/session.h"
#include "server/core/tasks.h"

namespace herald::core {

// The broker's domain logic, shared by the WebSocket edge (client frames) and the control API
// (one method per Broker RPC, taking and returning the proto messages of broker.proto). Owns the
// connection table, channel index, order book, task queues, event bus, idempotency cache and
// ack waiters; borrows the engine and the frame factory, which must outlive it. Every method is
// thread-safe and never performs network I/O while holding a lock: sends only queue frames on
// sessions. Time-driven work (ack deadlines, TTLs, grace periods) happens in Tick().
class Hub {
 public:
  using Clock = std::function<absl::Time()>;
  // With a `verifier`, every connection must authenticate with a token (handshake `?token=` or a
  // first `connect` frame); without one, clients are anonymous (development mode). The verifier
  // must outlive the hub.
  Hub(
      Limits limits, std::string node, Engine* engine, const FrameFactory* frames,
      const auth::JwtVerifier* verifier = nullptr, Clock clock = [] { return absl::Now(); });

  const Limits& limits() const { return limits_; }
  // Fans publications out on the transport's I/O threads (see ShardExecutor) instead of the
  // publishing thread. Call before serving; `shards` must outlive the hub.
  void SetShardExecutor(ShardExecutor* shards) { shards_ = shards; }
  const std::string& node() const { return node_; }
  // The hub's clock (injected; tests move it), for the transport's timestamps and timers.
  absl::Time Now() const { return clock_(); }

  // --- WebSocket edge -------------------------------------------------------------------------
  // A fresh, unique, sortable connection id ("<node>-<hex counter>").
  std::string NextConnectionId();
  // Adds an open session to the table and sends it `welcome`.
  absl::Status Register(std::shared_ptr<Session> session);
  // Removes a closed session from the table, every channel and every task queue, and gives back
  // its connection-count slots; `code` and `reason` describe how it closed (for the DISCONNECT
  // event).
  void Unregister(Session& session, int code = 1006, absl::string_view reason = "");
  // Handles one text frame from a client; replies go back on the session.
  void OnClientFrame(const std::shared_ptr<Session>& session, absl::string_view text);

  // --- Connection limits (hub_limits.cc) -----------------------------------------------------
  // Counts a WebSocket handshake from `remote_address` ("ip:port") against --max-connections
  // (UNAVAILABLE: HTTP 503), --max-connections-per-ip and, when the handshake names its user
  // (`?token=`; empty otherwise), --max-connections-per-user (RESOURCE_EXHAUSTED naming the
  // limit: HTTP 429). On success, the slots the connection must hold while it is open
  // (Session::HoldSlot); dropping them gives the counts back. Every refusal is counted in Stats.
  using ConnectionSlots = std::vector<ConnectionQuota::Slot>;
  absl::StatusOr<ConnectionSlots> AdmitConnection(absl::string_view remote_address,
                                                  absl::string_view user);
  // Counted by the HTTP API when it refuses a request over --api-rate.
  void CountApiRateRefusal() { api_rate_refusals_.fetch_add(1, std::memory_order_relaxed); }
  // Slots held per client IP and per user (tests: back to zero once connections close).
  size_t ConnectionsFromIp(absl::string_view ip) const { return ip_quota_.Count(ip); }
  size_t ConnectionsOfUser(absl::string_view user) const { return user_quota_.Count(user); }

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
  // A completion: gets the reply of a call that may finish later.
  template <typename T>
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  // Publish now and call `done` with the reply: at once, or, when the request waits for an ack
  // (ack.wait_ms > 0) and something was published, when the first matching ack arrives (on the
  // acking client's thread) or the wait ends (in Tick) — never by blocking, never under a lock.
  void PublishOrder(const v1::PublishOrderRequest& req, Done<v1::PublishOrderResponse> done);
  void Publish(const v1::PublishRequest& req, Done<v1::PublishResponse> done);
  // The same for in-process callers that have no completion to give (tests, tools): a request
  // that waits for an ack is refused (INVALID_ARGUMENT naming ack.wait_ms).
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
  absl::StatusOr<v1::HistoryResponse> History(const v1::HistoryRequest& req);
  absl::StatusOr<v1::DispatchTaskResponse> DispatchTask(const v1::DispatchTaskRequest& req);
  absl::StatusOr<v1::ListQueuesResponse> ListQueues(const v1::ListQueuesRequest& req) const;
  // Attaches a WatchEvents watcher (validated request); detach with Unwatch().
  absl::StatusOr<std::shared_ptr<EventWatcher>> Watch(const v1::WatchEventsRequest& req,
                                                      std::function<void()> on_ready);
  void Unwatch(const EventWatcher* watcher) { events_.Unwatch(watcher); }

  // Periodic work: ack-wait deadlines, task deadlines and TTLs, held-back DISCONNECT events,
  // expiry of history, idempotency keys and terminal orders. Call every few tens of
  // milliseconds: an ack wait ends at most one period after its deadline.
  void Tick();
  // Ends every pending ack wait now (acked=false), and every later one as soon as its publish
  // is done: for shutdown, when no client will ack and Tick no longer runs.
  void EndAckWaits() { acks_.ExpireAll(); }

  // Closes every session with `code` and `reason` (shutdown drain).
  void CloseAll(int code, absl::string_view reason);
  // From now on the node is draining: control calls are refused with UNAVAILABLE (the code
  // clients retry on, elsewhere) instead of racing the shutdown.
  void BeginDrain();
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  // The refusal of a call during a drain; notes when it was made, so the drain can wait for
  // callers to stop coming before the control API goes away (the drain's start counts as one).
  absl::Status RefuseDraining();
  absl::Time last_drain_refusal() const {
    return absl::FromUnixNanos(last_drain_refusal_ns_.load(std::memory_order_relaxed));
  }
  size_t connection_count() const { return table_.size(); }
  // Counted by the transport when it closes a slow consumer.
  void CountSlowConsumerClose() { slow_consumer_closes_.fetch_add(1, std::memory_order_relaxed); }
  // Counted by the transport when a newer order update replaced a held one.
  void CountConflated() { conflated_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> last_drain_refusal_ns_{0};
  // Subscribes `session` to a validated channel; replies `subscribed` (with recovery/snapshot
  // when asked) with `reply_id` (0 for a server-side subscribe, which pushes the frame without
  // id). False when already subscribed.
  absl::StatusOr<bool> SubscribeSession(const std::shared_ptr<Session>& session,
                                        const std::string& channel, uint32_t reply_id,
                                        const JoinSpec& spec = {});
  bool UnsubscribeSession(const std::shared_ptr<Session>& session, const std::string& channel,
                          uint32_t reply_id);
  // How to publish: ack request, ack wait, snapshot key.
  struct PublishOptions {
    bool ack_requested = false;
    AckWaiters::WaitId ack_wait = 0;  // 0: the call does not wait
    std::string key;
    bool key_final = false;
  };
  // Publishes already-encoded JSON data to a validated channel.
  absl::StatusOr<v1::ChannelDelivery> PublishJson(const std::string& channel,
                                                  std::shared_ptr<const std::string> data_json,
                                                  const PublishOptions& options);
  // Starts an ack wait for a publish request (0 when it did not ask to wait).
  absl::StatusOr<AckWaiters::WaitId> StartAckWait(const v1::AckRequest& ack, bool has_ack);
  // Ends a publish call: with `status` when it failed; otherwise with `resp`, at once or, when
  // the call started an ack wait and `published` something (a duplicate or stale update did
  // not), once the wait ends, with its outcome. A wait that is not awaited is cancelled.
  template <typename Resp>
  void FinishPublish(AckWaiters::WaitId wait, bool published, const absl::Status& status, Resp resp,
                     Done<Resp> done);
  void HandleAck(const std::shared_ptr<Session>& session, uint32_t id, const v1::ClientAck& ack);
  // An event about `session`, stamped with the hub's clock.
  v1::Event SessionEvent(v1::EventType type, const Session& session) const;
  void EmitSessionEvent(v1::EventType type, const Session& session, const std::string& channel);
  // Sessions named by a request's connection_id / user target.
  absl::StatusOr<std::vector<std::shared_ptr<Session>>> Targets(absl::string_view connection_id,
                                                                absl::string_view user,
                                                                bool has_target) const;
  // Limit hooks (hub_limits.cc). False (after replying, and closing with 4029 when the client
  // keeps going) when `session` is over its frame rate; the frame must not be acted on.
  bool AdmitFrameRate(const std::shared_ptr<Session>& session, uint32_t id);
  // Takes a slot of `user` for a session that authenticated with a `connect` frame; false
  // (after replying RESOURCE_EXHAUSTED and closing with 4030) when the user is at its limit.
  bool AdmitUser(const std::shared_ptr<Session>& session, uint32_t id, const std::string& user);
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
  // Whether watchers have been told about `s` (CONNECT): at Register, unless tokens are required
  // and it has none yet; then at its `connect`. A DISCONNECT follows only an announced session.
  bool Announced(const Session& s) const;
  // Emits CONNECT and drops a DISCONNECT of the same user still held back by the grace period.
  void Announce(const Session& s);
  // Sends `frame` to the subscribers of `channel` (on their I/O threads when a ShardExecutor is
  // set); returns how many were handed the frame.
  uint32_t FanOut(const std::string& channel, Subscribers subscribers, OutFramePtr frame);
  absl::StatusOr<std::string> DataJson(bool has_data, const google::protobuf::Message& data) const;
  void Reply(Session& session, const v1::ServerFrame& frame);
  void ReplyError(Session& session, uint32_t id, const absl::Status& status);
  v1::Connection Describe(const Session& session) const;

  const Limits limits_;
  const std::string node_;
  Engine* const engine_;
  const FrameFactory* const frames_;
  const Clock clock_;
  const absl::Time started_at_;
  const auth::JwtVerifier* const verifier_;
  ShardExecutor* shards_ = nullptr;

  ConnectionTable table_;
  ChannelIndex index_;
  OrderBook orders_;
  EventBus events_;
  TaskDispatcher tasks_;
  IdempotencyCache idempotency_;
  AckWaiters acks_;
  ConnectionQuota ip_quota_;
  ConnectionQuota user_quota_;

  // DISCONNECT events held back for Limits::disconnect_grace, by user.
  struct HeldDisconnect {
    v1::Event event;
    absl::Time due;
  };
  core::Mutex held_mu_;
  std::vector<HeldDisconnect> held_disconnects_ ABSL_GUARDED_BY(held_mu_);

  std::atomic<uint64_t> next_connection_{0};
  std::atomic<uint64_t> connections_total_{0};
  std::atomic<uint64_t> publications_{0};
  std::atomic<uint64_t> deliveries_{0};
  std::atomic<uint64_t> stale_orders_{0};
  std::atomic<uint64_t> client_errors_{0};
  std::atomic<uint64_t> slow_consumer_closes_{0};
  std::atomic<uint64_t> messages_from_clients_{0};
  std::atomic<uint64_t> conflated_{0};
  // Refusals by limit (Stats, /metrics `herald_limit_refusals_total{reason=...}`).
  std::atomic<uint64_t> rate_limited_frames_{0};
  std::atomic<uint64_t> rate_limit_closes_{0};
  std::atomic<uint64_t> refused_per_ip_{0};
  std::atomic<uint64_t> refused_per_user_{0};
  std::atomic<uint64_t> refused_max_connections_{0};
  std::atomic<uint64_t> api_rate_refusals_{0};
  // Counters of sessions that have closed, so Stats totals survive disconnects.
  std::atomic<uint64_t> closed_frames_in_{0};
  std::atomic<uint64_t> closed_frames_out_{0};
  std::atomic<uint64_t> closed_bytes_in_{0};
  std::atomic<uint64_t> closed_bytes_out_{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_HUB_H_
