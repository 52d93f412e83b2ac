#ifndef HERALD_SERVER_CORE_IDEMPOTENCY_STORE_H_
#define HERALD_SERVER_CORE_IDEMPOTENCY_STORE_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/done.h"

namespace herald::core {

// Makes a Publish with an idempotency key happen at most once per (channel, key) within
// Limits::idempotency_window, for the whole cluster. Implementations are thread-safe and never
// block the caller.
class IdempotencyStore {
 public:
  struct Result {
    v1::ChannelDelivery delivery;
    bool duplicate = false;
  };
  // Starts the publish; calls its argument with the outcome.
  using PublishFn = absl::AnyInvocable<void(Done<v1::ChannelDelivery>)>;

  virtual ~IdempotencyStore() = default;
  // Runs `publish` unless (channel, key) was published within the window. A repeat — also one
  // that arrives while the first is still running — gets the first call's delivery with
  // duplicate=true and queued=0. A failed publish is not remembered (a retry publishes).
  virtual void Run(const std::string& channel, const std::string& key, PublishFn publish,
                   Done<Result> done) = 0;
  // Forgets keys older than the window. Called periodically.
  virtual void Sweep(absl::Time now) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_IDEMPOTENCY_STORE_H_
