#ifndef HERALD_SERVER_CORE_IDEMPOTENCY_H_
#define HERALD_SERVER_CORE_IDEMPOTENCY_H_

#include <array>
#include <deque>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/mutex.h"

namespace herald::core {

// Remembers the delivery of each (channel, idempotency key) for a window, so a retried Publish
// is not published twice. Thread-safe, sharded; the shard lock is held while the first publish
// with a key runs, so concurrent repeats wait for it and then get its result.
class IdempotencyCache {
 public:
  static constexpr size_t kShards = 16;
  explicit IdempotencyCache(absl::Duration window) : window_(window) {}

  struct Result {
    v1::ChannelDelivery delivery;
    bool duplicate = false;
  };
  absl::StatusOr<Result> Run(const std::string& channel, const std::string& key, absl::Time now,
                             absl::FunctionRef<absl::StatusOr<v1::ChannelDelivery>()> publish);
  // Forgets keys older than the window.
  void Sweep(absl::Time now);
  size_t size() const;

 private:
  struct Shard {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, std::pair<v1::ChannelDelivery, absl::Time>> entries
        ABSL_GUARDED_BY(mu);
    std::deque<std::pair<absl::Time, std::string>> order ABSL_GUARDED_BY(mu);
  };
  const absl::Duration window_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_IDEMPOTENCY_H_
