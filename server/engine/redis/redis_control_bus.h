#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CONTROL_BUS_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CONTROL_BUS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/core/control_bus.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_options.h"

namespace herald::engine {

// The ControlBus of the nodes on one Redis (docs/architecture.md, "RedisEngine"):
//
// - Membership by heartbeat. Every `heartbeat_interval` each node runs one script (one round
//   trip) that scores its name in "<prefix>:nodes" (a sorted set) with the Redis time its
//   heartbeat lapses, kLapseIntervals intervals later, and reaps the nodes whose heartbeat
//   lapsed. A node that stops is no longer live at most DeadNodeBound() after it stopped; one
//   that shuts down cleanly leaves at once. Its name is tied to this process (an instance id):
//   a second live process with the same name is refused (joined() says ALREADY_EXISTS until the
//   other's heartbeat lapses).
// - Surveys. One script publishes the survey on "<prefix>:control" (which every node listens
//   to) with a request id and the asker's name, and returns the nodes live at that moment: the
//   ones expected to answer. Each node runs its handler and publishes the answer on the asker's
//   channel "<prefix>:node:<name>". The survey completes when every expected node answered, or
//   at its timeout with `missing` = the expected nodes that did not. Redis unreachable: it fails
//   at once with UNAVAILABLE.
// - Events. A node shares its events only while another live node has watchers (the heartbeat
//   reports it; the node that gets its first watcher also tells every node at once, by a survey
//   whose end means "attached"): on "<prefix>:events", which only nodes with watchers listen to,
//   and CONNECT events with a user on "<prefix>:events:connect", which every node listens to, so
//   the user's DISCONNECTs held back for the grace period on any node are dropped.
// - Acks. A client's ack of a publication whose publish call waits on another node goes to that
//   node's "<prefix>:acks:<name>" (ForwardAck): one PUBLISH per user and publication, only for
//   publications that asked to wait.
//
// Thread rules: the ControlBus methods may be called from any thread and post to the engine's
// io_context; everything else, all state, and every completion and handler call, is on that
// io_context's one thread. Borrows the connections, which must outlive it.
class RedisControlBus : public core::ControlBus {
 public:
  // A node's heartbeat lapses this many intervals after it was refreshed.
  static constexpr int kLapseIntervals = 3;

  // `watch_timeout` bounds the survey that attaches a first watcher (--control-timeout-ms).
  RedisControlBus(RedisOptions options, absl::Duration watch_timeout, asio::io_context* io,
                  RedisClient* commands, RedisClient* pubsub);
  ~RedisControlBus() override;

  void SetHandler(core::ControlHandler* handler) override { handler_.store(handler); }
  void Survey(const std::string& method, std::string request, absl::Duration timeout,
              core::Done<Answers> done) override;
  bool OthersWatch() const override { return others_watch_.load(std::memory_order_relaxed); }
  void ShareEvent(std::string event, EventAudience audience) override;
  void AttachWatcher(absl::AnyInvocable<void()> attached) override;
  void DetachWatcher() override;
  void ForwardAck(const std::string& node, std::string ack) override;

  // A node that stops (killed, hung, cut off from Redis) is no longer live, counted as missing by
  // surveys nor present in presence, at most this long after it stopped: kLapseIntervals
  // heartbeat intervals (its last heartbeat counted from Redis' clock, so node clocks do not
  // matter).
  absl::Duration DeadNodeBound() const { return options_.heartbeat_interval * kLapseIntervals; }
  // OK once this process is a live node; ALREADY_EXISTS while another live process has its
  // name; UNAVAILABLE before its first heartbeat. Any thread.
  absl::Status joined() const;
  const std::string& instance() const { return instance_; }

  // Keys and channels (RedisPresence uses the first three to tell live entries).
  std::string NodesKey() const;
  std::string InstancesKey() const;
  // The set listing this process's presence entries.
  std::string PresenceSetKey() const;
  // The set of the instances of dead node processes whose presence entries and online counts
  // are still in Redis (RedisPresence, RedisOnline).
  std::string GoneKey() const;

  // Engine thread only.
  // Starts the heartbeat timer.
  void Start();
  // Called after a heartbeat that found this process was not a live node (its first, after a
  // lapse or a Redis restart) or after the command connection came back: what this node keeps
  // in Redis may be gone, and is written again (RedisPresence::Restore).
  void SetRejoinHandler(absl::AnyInvocable<void()> on_rejoin) { on_rejoin_ = std::move(on_rejoin); }
  void OnCommandsReady();
  void OnPubSubReady();
  void OnPubSubDown();
  // A pub/sub message; false when it is not on one of the bus's channels.
  bool OnMessage(const RedisReply& message);
  // Stops heartbeats and fails the pending surveys with UNAVAILABLE; with `leave`, this node
  // first leaves the live nodes (its presence entries go with it). `then` runs after.
  void Stop(bool leave, absl::AnyInvocable<void()> then);

 private:
  enum class JoinState { kJoining, kJoined, kNameTaken };
  enum class AttachState { kDetached, kAttaching, kAttached };
  struct PendingSurvey {
    core::Done<Answers> done;
    // The nodes live when the survey was published; unknown until the script answers.
    std::optional<std::vector<std::string>> expected;
    absl::flat_hash_map<std::string, absl::StatusOr<std::string>> answers;  // by node
    std::unique_ptr<asio::steady_timer> timer;
  };

  std::string ControlChannel() const;
  std::string NodeChannel(const std::string& node) const;
  std::string EventsChannel() const;
  std::string ConnectChannel() const;
  std::string AcksChannel(const std::string& node) const;
  std::string WatchingKey() const;

  void Tick();
  // Sends a heartbeat now, or right after the one in flight; `then` (may be empty) runs once a
  // heartbeat sent after this call has answered (or could not be sent).
  void RequestHeartbeat(absl::AnyInvocable<void()> then);
  void SendHeartbeat();
  void OnHeartbeat(uint64_t seq, absl::StatusOr<RedisReply> reply);

  void StartSurvey(const std::string& method, std::string request, absl::Duration timeout,
                   core::Done<Answers> done);
  void CheckSurvey(uint64_t id);
  // Completes survey `id` with the answers so far (at its timeout, or when all are in).
  void CompleteSurvey(uint64_t id);
  void FailSurveys(const absl::Status& status);
  void OnSurveyMessage(absl::string_view payload);
  void OnAnswerMessage(absl::string_view payload);
  void Answer(uint64_t id, const std::string& asker, const absl::StatusOr<std::string>& reply);

  void StartAttach();
  void FinishAttach();
  void SubscribeEvents(absl::AnyInvocable<void()> then);

  const RedisOptions options_;
  const absl::Duration watch_timeout_;
  asio::io_context* const io_;
  RedisClient* const commands_;
  RedisClient* const pubsub_;
  const std::string instance_;
  // Set by the Hub while the engine thread may already read it.
  std::atomic<core::ControlHandler*> handler_{nullptr};
  std::atomic<bool> others_watch_{false};
  std::atomic<JoinState> join_state_{JoinState::kJoining};

  // Engine thread only.
  asio::steady_timer heartbeat_timer_;
  absl::AnyInvocable<void()> on_rejoin_;
  bool stopped_ = false;
  bool restore_pending_ = false;
  bool heartbeat_in_flight_ = false;
  bool heartbeat_again_ = false;
  uint64_t heartbeats_sent_ = 0;
  // heartbeats_sent_ when another node announced its first watcher: heartbeats sent until then
  // may predate the announcement and cannot say that nobody watches.
  uint64_t watch_notice_seq_ = 0;
  std::vector<absl::AnyInvocable<void()>> after_this_heartbeat_;
  std::vector<absl::AnyInvocable<void()>> after_next_heartbeat_;
  // The pub/sub connection listens to the control, answer, acks and connect channels.
  bool listening_ = false;
  uint64_t pubsub_generation_ = 0;
  uint64_t next_survey_id_;
  absl::flat_hash_map<uint64_t, PendingSurvey> surveys_;
  int local_watchers_ = 0;
  AttachState attach_state_ = AttachState::kDetached;
  std::vector<absl::AnyInvocable<void()>> attach_waiters_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_CONTROL_BUS_H_
