#ifndef HERALD_SERVER_ENGINE_MEMORY_BROKER_H_
#define HERALD_SERVER_ENGINE_MEMORY_BROKER_H_

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/broker.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"

namespace herald::engine {

// The single-process Broker: keeps each channel's epoch, offset, bounded history (size and TTL
// from Limits::history / history_by_prefix), latest publication per key and node-subscription
// count in memory. Each channel's mutex orders its publications; delivery to the event handler
// happens outside it, in offset order, by whichever publishing thread finds the channel's
// outbox idle (the others only queue). Sweep() visits only channels whose check is due (one
// pending check per channel, in a time-ordered heap per lock stripe). Completions are called
// before returning, with no lock held. Thread-safe.
class MemoryBroker : public core::Broker {
 public:
  using Clock = std::function<absl::Time()>;
  MemoryBroker(core::Limits limits, Clock clock);

  void SetEventHandler(core::BrokerEventHandler* handler) override { handler_ = handler; }
  void Publish(const std::string& channel, core::PublishSpec spec,
               core::Done<core::StreamPosition> done) override;
  void Subscribe(const std::string& channel, core::StatusDone done) override;
  void Unsubscribe(const std::string& channel) override;
  void Join(const std::string& channel, core::JoinSpec spec,
            core::Done<core::JoinResult> done) override;
  void History(const std::string& channel, core::HistoryQuery query,
               core::Done<core::HistoryResult> done) override;
  void Sweep(absl::Time now) override;

  // Publish() in two steps, for MemoryOrderStore, which must assign an order's positions in all
  // its channels while it holds the order's lock but deliver after releasing it. Append()
  // assigns the position and retains the publication under the channel's lock; Deliver() hands
  // it, and whatever other threads queued behind it meanwhile, to the handler. Call Deliver()
  // once for every Append().
  struct ChannelState;
  struct Appended {
    core::StreamPosition position;
    std::shared_ptr<ChannelState> channel;
    // Set when this call is the channel's deliverer: no other publication was on its way, so
    // this one goes to the handler without a queue. Otherwise it waits in the channel's outbox
    // for the thread delivering now.
    std::optional<core::Publication> deliver;
  };
  Appended Append(const std::string& channel, core::PublishSpec spec);
  void Deliver(Appended& appended);

  size_t channel_count() const;

 private:
  struct Keyed {
    core::StoredPublication publication;
    absl::Time expires_at = absl::InfiniteFuture();
  };
  // When Sweep() should look at a channel again.
  struct Check {
    absl::Time at;
    std::string channel;
    bool operator>(const Check& other) const { return at > other.at; }
  };
  struct Stripe {
    core::Mutex mu;
    absl::flat_hash_map<std::string, std::shared_ptr<ChannelState>> channels ABSL_GUARDED_BY(mu);
    std::vector<Check> checks ABSL_GUARDED_BY(mu);  // min-heap on `at`
  };
  static constexpr size_t kStripes = 64;

  std::shared_ptr<ChannelState> StateFor(const std::string& channel);
  Stripe& StripeFor(absl::string_view channel) const;
  static void Schedule(Stripe& stripe, absl::Time at, std::string channel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(stripe.mu);
  // Looks at one channel whose check is due: prunes it, forgets it when idle and not subscribed,
  // or schedules its next check.
  void CheckChannel(Stripe& stripe, const std::string& channel, absl::Time now);

  const core::Limits limits_;
  const Clock clock_;
  const std::string epoch_prefix_;
  core::BrokerEventHandler* handler_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  mutable std::array<Stripe, kStripes> stripes_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_BROKER_H_
