#ifndef HERALD_SERVER_CORE_ACKS_H_
#define HERALD_SERVER_CORE_ACKS_H_

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::core {

// Carries an ack of a publication that another node's publish call waits for to that node
// (NodeControl, over the engine's ControlBus). Thread-safe; never blocks.
class AckRelay {
 public:
  virtual ~AckRelay() = default;
  // `ack` (acked, connection_id, user, channel, offset) answers wait `wait` of node `node`.
  virtual void ForwardAck(const std::string& node, uint64_t wait, const v1::AckOutcome& ack) = 0;
};

// Publish calls waiting for the first client ack of their publications ("is the user online, or
// do we fall back to SMS?"). Owns every pending wait: its targets (channel, offset), the ack that
// answered it, and a deadline in an expiry queue. Nothing blocks: a wait ends by calling its
// completion, from OnAck (on the acking client's thread) or from Expire (driven by the hub's
// Tick). With several nodes, a wait also ends by an ack from another node's client (OnRemoteAck),
// and this node forwards its clients' acks of other nodes' waits to them (AddRemoteTarget, through
// the AckRelay). Thread-safe; completions and the relay are always called after the lock is
// released.
class AckWaiters {
 public:
  using WaitId = uint64_t;

  // Wait ids start at a random number, so that an ack forwarded to an earlier process with this
  // node's name cannot answer a wait of this one.
  AckWaiters();
  // Gets the outcome: the first matching ack, or acked=false when the deadline passed first.
  using Done = absl::AnyInvocable<void(v1::AckOutcome)>;

  // Starts a wait for an ack from a connection of `user` (any user when empty), ending at
  // `now + timeout`. Call AddTarget for each publication before its frames are queued, so an
  // ack can never arrive before its wait knows it; then exactly one of Await or Cancel.
  WaitId Start(std::string user, absl::Time now, absl::Duration timeout);
  // Adding a target twice is adding it once: the publish call adds its publications again when
  // they are stored (the broker only hands a publication on while the node has subscribers, and
  // a client that recovers it later may ack it too).
  void AddTarget(WaitId wait, const std::string& channel, uint64_t offset);
  // The publish is complete: `done` gets the outcome exactly once — at once when an ack already
  // came, else from OnAck or, once the deadline has passed, from Expire.
  void Await(WaitId wait, Done done);
  // The publish produced nothing to wait for (an error, a duplicate, a stale order): forgets
  // the wait without an outcome.
  void Cancel(WaitId wait);

  // Records an ack by `session` of (channel, offset): the first one for each wait of a matching
  // user answers it, completing the waits that are already awaited.
  void OnAck(const Session& session, const std::string& channel, uint64_t offset, absl::Time now);
  // Where acks of other nodes' waits go; set once, before any ack arrives. Must outlive its use.
  void SetRelay(AckRelay* relay) { relay_ = relay; }
  // A publication of another node (`origin`) whose publish call waits (`wait`) reached this node:
  // until `until`, the first ack of it by each user here is forwarded to `origin`.
  void AddRemoteTarget(const std::string& origin, WaitId wait, const std::string& channel,
                       uint64_t offset, absl::Time until);
  // An ack that another node forwarded (AckRelay): answers `wait` like OnAck when the wait is
  // still open and the ack's user matches.
  void OnRemoteAck(WaitId wait, const v1::AckOutcome& ack, absl::Time now);
  // Completes (acked=false) every awaited wait whose deadline is at or before `now`, and forgets
  // the remote targets that ended by then. Costs only the waits and targets that end.
  void Expire(absl::Time now);
  // Completes every awaited wait now, and from then on every wait as soon as it is awaited, as if
  // its deadline had passed (shutdown: no ack can come, and no Tick will expire them).
  void ExpireAll();
  // Waits started and not yet completed or cancelled.
  size_t size() const;

 private:
  struct Wait {
    std::string user;
    absl::Time started;
    absl::Time deadline;
    std::vector<std::pair<std::string, uint64_t>> targets;
    v1::AckOutcome outcome;  // acked once the first matching ack came
    Done done;               // set by Await
    bool awaited = false;
  };
  using Waits = absl::flat_hash_map<WaitId, Wait>;
  // Completions to call once the lock is released.
  using Ready = std::vector<std::pair<Done, v1::AckOutcome>>;
  using Target = std::pair<std::string, uint64_t>;  // (channel, offset)
  struct RemoteTarget {
    std::string origin;
    WaitId wait = 0;
    std::set<std::string> forwarded;  // users whose ack went to the origin already
  };
  struct Forward {
    std::string node;
    WaitId wait;
    v1::AckOutcome ack;
  };

  // Removes an awaited wait from every index and queues its completion on `ready`.
  void EndLocked(Waits::iterator it, Ready& ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the ack in the wait's outcome (the first one counts) and ends it when awaited.
  void AnswerLocked(Waits::iterator it, const v1::AckOutcome& ack, absl::Time now, Ready& ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a wait's targets from by_target_.
  void UnindexLocked(WaitId id, const Wait& wait) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Run(Ready ready);

  mutable core::Mutex mu_;
  WaitId next_id_ ABSL_GUARDED_BY(mu_);
  Waits waits_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<std::string, uint64_t>, std::vector<WaitId>> by_target_
      ABSL_GUARDED_BY(mu_);
  // Awaited waits by deadline: Expire pops the front.
  std::set<std::pair<absl::Time, WaitId>> expiry_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // ExpireAll was called
  AckRelay* relay_ = nullptr;
  absl::flat_hash_map<Target, RemoteTarget> remote_ ABSL_GUARDED_BY(mu_);
  // Remote targets by end (in the order they came: every one lasts the same max_ack_wait).
  std::deque<std::pair<absl::Time, Target>> remote_expiry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ACKS_H_
