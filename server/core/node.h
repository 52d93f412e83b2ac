#ifndef HERALD_SERVER_CORE_NODE_H_
#define HERALD_SERVER_CORE_NODE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "herald/v1/client.pb.h"
#include "server/core/acks.h"
#include "server/core/broker.h"
#include "server/core/channel_index.h"
#include "server/core/connection_quota.h"
#include "server/core/connection_table.h"
#include "server/core/events.h"
#include "server/core/fan_out.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"
#include "server/core/node_counters.h"
#include "server/core/online_registry.h"
#include "server/core/presence.h"
#include "server/core/session.h"
#include "server/core/task_store.h"
#include "server/core/tasks.h"

namespace herald::core {

// One broker node, transport-free: its sessions (the connection table), their subscriptions (the
// channel index, and the join buffers of subscriptions being set up), and the local fan-out of
// the publications the broker hands it (HandlePublication: this node's own and, with a
// distributed broker, other nodes'). Also owns what lives and dies with its sessions: the event
// bus and held-back DISCONNECT events, the ack waiters of publish calls made on this node, the
// task workers (TaskDispatcher: the queues themselves are the TaskStore's), connection quotas
// and counters. Borrows the broker, the task store, the presence and online registries and the
// frame factory, which must outlive it. Every method is thread-safe and performs no network I/O:
// sending only queues frames on sessions.
class Node : public BrokerEventHandler {
 public:
  using Clock = std::function<absl::Time()>;
  // `auth_required`: sessions are announced (CONNECT) once they have a user (see Announced()).
  Node(const Limits& limits, std::string name, Broker* broker, TaskStore* tasks,
       PresenceRegistry* presence, OnlineRegistry* online, const FrameFactory* frames,
       bool auth_required, Clock clock);

  const std::string& name() const { return name_; }
  const Limits& limits() const { return limits_; }
  absl::Time Now() const { return clock_(); }
  // Fans publications out on the transport's I/O threads (see LoopExecutor) instead of the
  // delivering thread. Call before serving; `loops` must outlive the node.
  void SetLoopExecutor(LoopExecutor* loops) {
    loops_ = loops;
    fan_out_.SetLoopExecutor(loops);
  }
  // Runs `work` on the I/O thread of `loop` (a session's loop()), after what was posted there
  // before; at once without a LoopExecutor (unit tests).
  void RunOnLoop(uint32_t loop, std::function<void()> work) {
    if (loops_ == nullptr) {
      work();
    } else {
      loops_->Post(loop, std::move(work));
    }
  }

  // --- Sessions -------------------------------------------------------------------------------
  // A fresh, unique, sortable connection id ("<node>-<hex counter>").
  std::string NextConnectionId();
  absl::Status Add(std::shared_ptr<Session> session);
  // Removes a closed session from the table, its channels (node subscriptions included) and
  // task queues (its leases are given back), gives back its connection-count slots and emits
  // DISCONNECT (held back for the grace period when it has a user). Returns false when it was not
  // in the table.
  bool Remove(Session& session, int code, absl::string_view reason);
  std::shared_ptr<Session> Find(absl::string_view connection_id) const {
    return table_.Find(connection_id);
  }
  std::vector<std::shared_ptr<Session>> FindUser(absl::string_view user) const {
    return table_.FindUser(user);
  }
  std::vector<std::shared_ptr<Session>> All() const { return table_.All(); }
  // Indexes a session under the user it authenticated as (false: it closed meanwhile).
  bool IndexUser(const std::shared_ptr<Session>& session) { return table_.IndexUser(session); }
  size_t connection_count() const { return table_.size(); }
  size_t user_count() const { return table_.users(); }
  // Closes every session with `code` and `reason` (shutdown drain).
  void CloseAll(int code, absl::string_view reason);

  // Counts a WebSocket handshake from `remote_address` ("ip:port") against --max-connections
  // (UNAVAILABLE: HTTP 503), --max-connections-per-ip and, when the handshake names its user,
  // --max-connections-per-user (RESOURCE_EXHAUSTED naming the limit: HTTP 429). On success, the
  // slots the connection must hold while it is open (Session::HoldSlot). Refusals are counted.
  using ConnectionSlots = std::vector<ConnectionQuota::Slot>;
  absl::StatusOr<ConnectionSlots> AdmitConnection(absl::string_view remote_address,
                                                  absl::string_view user);
  // A slot of `user` for a session that named its user later (`connect` frame); nullopt (counted)
  // when the user is at its limit.
  std::optional<ConnectionQuota::Slot> AdmitUser(const std::string& user);
  size_t ConnectionsFromIp(absl::string_view ip) const { return ip_quota_.Count(ip); }
  size_t ConnectionsOfUser(absl::string_view user) const { return user_quota_.Count(user); }

  // Lists the session again in the presence of each presence channel it is in, with its current
  // token's `info` and its original joinedAtMs: after a `refresh` replaced the token.
  void RelistPresence(const std::shared_ptr<Session>& session);

  // Whether watchers have been told about `s` (CONNECT): at Add, unless tokens are required and
  // it has none yet; then at its `connect`. A DISCONNECT follows only an announced session.
  bool Announced(const Session& s) const;
  // Emits CONNECT and drops a DISCONNECT of the same user still held back by the grace period.
  void Announce(const Session& s);
  // Drops the DISCONNECT events of `user` still held back by the grace period: the user is
  // connected again (here, or on another node: NodeControl::HandleEvent).
  void ForgetHeldDisconnects(absl::string_view user);
  // Emits now the DISCONNECT events still held back by the grace period: those of `user` (it is
  // about to be reported offline, here or by another node: NodeControl::HandleEvent), or all of
  // them when `user` is null (the node is stopping). So a user's USER_OFFLINE never comes before
  // the DISCONNECT of their last connection on this node.
  void EmitHeldDisconnects(const std::string* user);
  // DISCONNECT events are held back (a drain waits for them to come due).
  bool holds_disconnects() const;

  // --- Subscriptions --------------------------------------------------------------------------
  // Subscribes `session` to a validated channel: adds it to the session's set (counted against
  // the limit) at once, then subscribes the node (Broker::Subscribe) and joins the stream
  // (Broker::Join); when the join completes, queues `subscribed` (with `reply_id`; 0 for a
  // server-side subscribe, pushed without id), the recovered publications and snapshot when
  // `spec` asks, then what arrived meanwhile past the join's position (the join buffer), and
  // only then makes the session live for fan-out: no gap and no duplicate at the seam, however
  // late the broker answers. True when added; false when already subscribed. A join that fails
  // later replies an error with `reply_id` and drops the subscription.
  absl::StatusOr<bool> Subscribe(const std::shared_ptr<Session>& session,
                                 const std::string& channel, uint32_t reply_id, JoinSpec spec = {});
  // Removes the subscription; queues `unsubscribed` when something changed or `reply_id` is set
  // (a client's unsubscribe is answered even when it was not subscribed).
  bool Unsubscribe(const std::shared_ptr<Session>& session, const std::string& channel,
                   uint32_t reply_id);
  // Publishes a client's publication (ClientProtocol) through the broker, counted like a
  // backend's.
  void Publish(const std::string& channel, PublishSpec spec, Done<StreamPosition> done);
  size_t SubscriberCount(absl::string_view channel) const {
    return index_.SubscriberCount(channel);
  }
  Subscribers SubscribersOf(absl::string_view channel) const { return index_.Snapshot(channel); }
  size_t channel_count() const { return index_.channels(); }
  std::vector<std::pair<std::string, size_t>> ChannelsWithPrefix(absl::string_view prefix) const {
    return index_.List(prefix);
  }
  uint64_t subscription_count() const { return index_.subscriptions(); }

  // From the broker: registers the publication's ack wait when this node started it, hands the
  // publication to joins in progress, and queues its frame (encoded and framed once) on every
  // live local subscriber, on their I/O threads.
  void HandlePublication(const Publication& publication) override;
  // From the broker: the channel's live subscribers may have missed publications. Ends their
  // subscriptions with an `unsubscribed` push that says `resubscribe`: they subscribe again with
  // recovery and get what they missed or `recovered: false` — never a silent gap.
  void HandleGap(const std::string& channel) override;

  // --- Replies and events ---------------------------------------------------------------------
  OutFramePtr MakeFrame(std::string payload) const { return frames_->Make(std::move(payload)); }
  void Reply(Session& session, const v1::ServerFrame& frame);
  // Sends a frame already encoded (a protocol.h encoder's output).
  void Send(Session& session, std::string frame_json);
  void ReplyError(Session& session, uint32_t id, const absl::Status& status);
  // An event about `session`, stamped with the node's clock.
  v1::Event SessionEvent(v1::EventType type, const Session& session) const;
  void EmitSessionEvent(v1::EventType type, const Session& session, const std::string& channel);
  EventBus& events() { return events_; }
  const EventBus& events() const { return events_; }
  AckWaiters& acks() { return acks_; }
  TaskDispatcher& tasks() { return tasks_; }
  PresenceRegistry& presence() { return *presence_; }
  const TaskDispatcher& tasks() const { return tasks_; }
  NodeCounters& counters() { return counters_; }
  const NodeCounters& counters() const { return counters_; }
  // Traffic of open and closed sessions (Stats).
  SessionCounters Traffic() const;
  v1::Connection Describe(const Session& session) const;

  // Periodic work: ack-wait deadlines, held-back DISCONNECT events, users whose grace ended.
  void Tick(absl::Time now);

 private:
  // A subscription waiting for its join: publications that arrive meanwhile are kept here.
  struct PendingJoin {
    uint64_t id;
    std::shared_ptr<Session> session;
    uint32_t reply_id;
    bool report_recovered;
    bool report_snapshot;
    std::vector<Publication> arrived;
  };
  struct JoinStripe {
    core::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<PendingJoin>> pending ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kJoinStripes = 64;
  JoinStripe& JoinStripeFor(absl::string_view channel);
  void StartJoin(const std::string& channel, uint64_t join_id, JoinSpec spec);
  // The broker answered join `join_id` of `channel`.
  void FinishJoin(const std::string& channel, uint64_t join_id, absl::StatusOr<JoinResult> joined);
  // Presence of a subscriber of a presence channel (Limits::presence_prefixes), kept when its
  // subscription goes live and ends.
  // A subscription went live / ended: the presence registry (Limits::presence_prefixes) and the
  // member notices (Limits::join_leave_prefixes), where the channel has them.
  void MemberJoined(const std::shared_ptr<Session>& session, const std::string& channel);
  void MemberLeft(const Session& session, const std::string& channel);
  // Adds (or replaces) the session's entry in `channel`'s presence; takes it out again when the
  // session left the channel while the entry was on its way.
  void ListInPresence(const std::shared_ptr<Session>& session, const std::string& channel,
                      v1::ClientInfo client);
  // Publishes a memberJoined/memberLeft notice about `client` to `channel`'s subscribers on
  // every node.
  void NotifyMembers(PublicationKind kind, const v1::ClientInfo& client,
                     const std::string& channel);
  // A USER_ONLINE or USER_OFFLINE event about `user` that no connection of this node brought.
  void EmitUserEvent(v1::EventType type, const std::string& user);
  // Forgets the pending joins of `session` to `channel` (unsubscribed or closed).
  void DropJoins(const std::string& channel, const Session* session);
  // The `subscribed` reply to a join: the position; when the subscribe asked to recover
  // (`report_recovered`), `recovered` and the missed publications; when it asked for a snapshot
  // (`report_snapshot`), the snapshot.
  OutFramePtr SubscribedFrame(uint32_t reply_id, const std::string& channel,
                              const JoinResult& joined, bool report_recovered,
                              bool report_snapshot) const;
  OutFramePtr PublicationFrame(const Publication& publication) const;

  const Limits limits_;
  const std::string name_;
  Broker* const broker_;
  PresenceRegistry* const presence_;
  const FrameFactory* const frames_;
  const bool auth_required_;
  const Clock clock_;
  LoopExecutor* loops_ = nullptr;
  FanOut fan_out_;

  ConnectionTable table_;
  ChannelIndex index_;
  std::array<JoinStripe, kJoinStripes> joins_;
  std::atomic<uint64_t> next_join_{0};
  EventBus events_;
  AckWaiters acks_;
  TaskDispatcher tasks_;
  ConnectionQuota ip_quota_;
  ConnectionQuota user_quota_;
  NodeCounters counters_;
  OnlineRegistry* const online_;
  std::atomic<uint64_t> next_connection_{0};

  // DISCONNECT events held back for Limits::disconnect_grace, by user.
  struct HeldDisconnect {
    v1::Event event;
    absl::Time due;
  };
  mutable core::Mutex held_mu_;
  std::vector<HeldDisconnect> held_disconnects_ ABSL_GUARDED_BY(held_mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_NODE_H_
