#ifndef HERALD_SERVER_CORE_API_EXECUTOR_H_
#define HERALD_SERVER_CORE_API_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/done.h"
#include "server/core/engine.h"
#include "server/core/events.h"
#include "server/core/node.h"

namespace herald::core {

// The control API (broker.proto's Broker service), transport-free: validates each request (errors
// name the bad field), runs it on the node and the engine — calls about connections on every
// node of the cluster, through the engine's ControlBus and NodeControl — and finishes it by
// completion — at
// once, or later when the engine answers or an ack wait ends — never by blocking the calling
// thread (a gRPC reactor's or an I/O thread's). Also refuses calls during a drain. Owns only its
// drain state; borrows the node and the engine, which must outlive it. Thread-safe.
class ApiExecutor {
 public:
  // Combines the nodes' answers to one control call into its reply; `missing` live nodes did
  // not answer in time.
  template <typename Resp>
  using Merge =
      absl::AnyInvocable<absl::StatusOr<Resp>(std::vector<absl::StatusOr<Resp>>, int missing)>;

  ApiExecutor(Node* node, Engine* engine);

  const Limits& limits() const { return node_->limits(); }
  absl::Time Now() const { return node_->Now(); }

  // Publish now and call `done` with the reply: when the engine has published, or, when the
  // request waits for an ack (ack.wait_ms > 0) and something was published, when the first
  // matching ack arrives (on the acking client's thread) or the wait ends (in Tick).
  void PublishOrder(const v1::PublishOrderRequest& req, Done<v1::PublishOrderResponse> done);
  void Publish(const v1::PublishRequest& req, Done<v1::PublishResponse> done);
  void Broadcast(const v1::BroadcastRequest& req, Done<v1::BroadcastResponse> done);
  void SendToUser(const v1::SendToUserRequest& req, Done<v1::SendResponse> done);
  void SendToConnection(const v1::SendToConnectionRequest& req, Done<v1::SendResponse> done);
  void ListConnections(const v1::ListConnectionsRequest& req,
                       Done<v1::ListConnectionsResponse> done);
  void GetConnection(const v1::GetConnectionRequest& req, Done<v1::Connection> done);
  void Disconnect(const v1::DisconnectRequest& req, Done<v1::DisconnectResponse> done);
  void Subscribe(const v1::SubscribeRequest& req, Done<v1::SubscribeResponse> done);
  void Unsubscribe(const v1::UnsubscribeRequest& req, Done<v1::UnsubscribeResponse> done);
  // Every node's figures and their totals.
  void Stats(const v1::StatsRequest& req, Done<v1::StatsResponse> done);
  // This node's Stats (its entry in Stats; /metrics renders it).
  v1::StatsResponse LocalStats() const;
  void History(const v1::HistoryRequest& req, Done<v1::HistoryResponse> done);
  void DispatchTask(const v1::DispatchTaskRequest& req, Done<v1::DispatchTaskResponse> done);
  void ListQueues(const v1::ListQueuesRequest& req, Done<v1::ListQueuesResponse> done);
  void Presence(const v1::PresenceRequest& req, Done<v1::PresenceResponse> done);
  void PresenceStats(const v1::PresenceStatsRequest& req, Done<v1::PresenceStatsResponse> done);
  void Channels(const v1::ChannelsRequest& req, Done<v1::ChannelsResponse> done);
  // The filter of a WatchEvents request (types, channel, user), validated.
  absl::StatusOr<EventWatcher::Filter> WatchFilter(const v1::WatchEventsRequest& req) const;
  // Attaches a WatchEvents watcher (validated request); detach with Unwatch(). `on_attached`
  // (optional) is called, from any thread and possibly before this returns, once the watcher gets
  // the events of every node of the cluster.
  absl::StatusOr<std::shared_ptr<EventWatcher>> Watch(const v1::WatchEventsRequest& req,
                                                      std::function<void()> on_ready,
                                                      std::function<void()> on_attached = nullptr);
  void Unwatch(const EventWatcher* watcher) { node_->events().Unwatch(watcher); }

  // Counted by the HTTP API when it refuses a request over --api-rate.
  void CountApiRateRefusal() { NodeCounters::Bump(node_->counters().api_rate_refusals); }

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

 private:
  // How to publish: ack request, ack wait, snapshot key.
  struct PublishOptions {
    bool ack_requested = false;
    AckWaiters::WaitId ack_wait = 0;  // 0: the call does not wait
    std::string key;
    bool key_final = false;
  };
  PublishSpec Spec(std::shared_ptr<const std::string> data_json,
                   const PublishOptions& options) const;
  // Publishes already-encoded JSON to a validated channel.
  void PublishJson(const std::string& channel, PublishSpec spec, Done<v1::ChannelDelivery> done);
  // Publishes to each channel; `done` gets the deliveries in the channels' order, or the first
  // error.
  void PublishEach(std::vector<std::string> channels, PublishSpec spec,
                   Done<std::vector<v1::ChannelDelivery>> done);
  // Where a publication landed, with the node's subscriber count.
  v1::ChannelDelivery Delivery(std::string channel, StreamPosition position);
  // Starts an ack wait for a publish request (0 when it did not ask to wait).
  absl::StatusOr<AckWaiters::WaitId> StartAckWait(const v1::AckRequest& ack, bool has_ack);
  // Ends a publish call: with `status` when it failed; otherwise with `resp`, at once or, when
  // the call started an ack wait and `published` something (a duplicate or stale update did
  // not), once the wait ends, with its outcome. A wait that is not awaited is cancelled.
  template <typename Resp>
  void FinishPublish(AckWaiters::WaitId wait, bool published, const absl::Status& status, Resp resp,
                     Done<Resp> done);
  // OK for a valid presence channel; INVALID_ARGUMENT or FAILED_PRECONDITION (not a presence
  // channel) otherwise.
  absl::Status ValidatePresenceChannel(const std::string& channel) const;
  // Asks every node (ControlBus::Survey) to run its part of `method` (NodeControl) and answers
  // with `merge` of their answers.
  template <typename Req, typename Resp>
  void AskEveryNode(const char* method, const Req& req, Merge<Resp> merge, Done<Resp> done);

  Node* const node_;
  Engine* const engine_;
  const Limits& limits_;
  const absl::Time started_at_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> last_drain_refusal_ns_{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_API_EXECUTOR_H_
