#ifndef HERALD_SERVER_CORE_ACKS_H_
#define HERALD_SERVER_CORE_ACKS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::core {

// Publish calls waiting for the first client ack of their publications ("is the user online, or
// do we fall back to SMS?"). Thread-safe.
class AckWaiters {
 public:
  // One waiting call. The publish registers each (channel, offset) it produced before queueing
  // the frames, so an ack can never arrive before its waiter exists.
  class Waiter {
   public:
    explicit Waiter(std::string user, absl::Time started)
        : user_(std::move(user)), started_(started) {}
    // Blocks until an ack or `timeout`; the outcome (acked=false on timeout).
    v1::AckOutcome Wait(absl::Duration timeout);

   private:
    friend class AckWaiters;
    const std::string user_;
    const absl::Time started_;
    absl::Notification done_;
    core::Mutex mu_;
    v1::AckOutcome outcome_ ABSL_GUARDED_BY(mu_);
    std::vector<std::pair<std::string, uint64_t>> targets_;  // written before any ack can match
  };

  std::shared_ptr<Waiter> Start(std::string user, absl::Time now);
  void AddTarget(const std::shared_ptr<Waiter>& waiter, const std::string& channel,
                 uint64_t offset);
  void Finish(const std::shared_ptr<Waiter>& waiter);
  // Completes the waiters of (channel, offset) whose user matches `session`.
  void OnAck(const Session& session, const std::string& channel, uint64_t offset, absl::Time now);

 private:
  core::Mutex mu_;
  absl::flat_hash_map<std::pair<std::string, uint64_t>, std::vector<std::shared_ptr<Waiter>>>
      by_target_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ACKS_H_
