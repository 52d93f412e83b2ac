#ifndef HERALD_SERVER_CORE_CONNECTION_QUOTA_H_
#define HERALD_SERVER_CORE_CONNECTION_QUOTA_H_

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "server/core/mutex.h"

namespace herald::core {

// Counts open connections per key (a client IP, a user) against one maximum
// (Limits::max_connections_per_ip, max_connections_per_user). A connection holds a Slot for each
// key it counts under; the count drops when the slot is released or destroyed, so no path that
// ends a connection can leak a count. A key's entry is erased when its count reaches zero.
// Thread-safe: striped by key, one core::Mutex per stripe, held only for a map operation. Slots
// share the counts with the quota, so a slot may outlive the quota object.
class ConnectionQuota {
 public:
  static constexpr size_t kStripes = 16;

  // One counted connection under one key. Move-only; empty when default-constructed or when the
  // quota has no limit (nothing is counted then).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { Release(); }
    // Gives the count back (idempotent).
    void Release();
    bool held() const { return counts_ != nullptr; }

   private:
    friend class ConnectionQuota;
    struct Counts;
    Slot(std::shared_ptr<Counts> counts, std::string key)
        : counts_(std::move(counts)), key_(std::move(key)) {}
    std::shared_ptr<Counts> counts_;
    std::string key_;
  };

  // `max_per_key` 0: no limit (and no counting).
  explicit ConnectionQuota(size_t max_per_key);

  size_t max_per_key() const { return max_per_key_; }
  // A slot for `key`, or nullopt when `key` already holds max_per_key slots.
  std::optional<Slot> TryAcquire(absl::string_view key);
  // Slots held for `key`.
  size_t Count(absl::string_view key) const;
  // Keys holding at least one slot.
  size_t keys() const;

 private:
  const size_t max_per_key_;
  std::shared_ptr<Slot::Counts> counts_;
};

struct ConnectionQuota::Slot::Counts {
  struct Stripe {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, size_t> by_key ABSL_GUARDED_BY(mu);
  };
  Stripe& StripeFor(absl::string_view key);
  std::array<Stripe, kStripes> stripes;
};

// The IP of a remote address: "10.0.0.1" for "10.0.0.1:5000", "::1" for "[::1]:5000"; the
// address itself when it has no port.
absl::string_view ClientIp(absl::string_view remote_address);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CONNECTION_QUOTA_H_
