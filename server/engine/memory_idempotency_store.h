#ifndef HERALD_SERVER_ENGINE_MEMORY_IDEMPOTENCY_STORE_H_
#define HERALD_SERVER_ENGINE_MEMORY_IDEMPOTENCY_STORE_H_

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/idempotency_store.h"
#include "server/core/mutex.h"

namespace herald::engine {

// The single-process IdempotencyStore: the delivery of each (channel, key) for the window, in
// lock stripes. A repeat that arrives while the first publish is running is parked and completed
// with its result (no lock is held while publishing; nothing waits). Thread-safe; completions
// are called with no lock held.
class MemoryIdempotencyStore : public core::IdempotencyStore {
 public:
  using Clock = std::function<absl::Time()>;
  MemoryIdempotencyStore(absl::Duration window, Clock clock);

  void Run(const std::string& channel, const std::string& key, PublishFn publish,
           core::Done<Result> done) override;
  void Sweep(absl::Time now) override;
  size_t size() const;

 private:
  struct Entry {
    bool running = true;  // the first publish has not finished yet
    v1::ChannelDelivery delivery;
    absl::Time at;
    std::vector<core::Done<Result>> repeats;  // parked while running
  };
  struct Stripe {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
    std::deque<std::pair<absl::Time, std::string>> order ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kStripes = 16;
  Stripe& StripeFor(const std::string& full_key) const;
  // The first publish of `full_key` finished.
  void Finish(const std::string& full_key, absl::StatusOr<v1::ChannelDelivery> result,
              core::Done<Result> done);

  const absl::Duration window_;
  const Clock clock_;
  mutable std::array<Stripe, kStripes> stripes_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_IDEMPOTENCY_STORE_H_
