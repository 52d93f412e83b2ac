#ifndef HERALD_SERVER_ENGINE_MEMORY_PRESENCE_H_
#define HERALD_SERVER_ENGINE_MEMORY_PRESENCE_H_

#include <array>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/mutex.h"
#include "server/core/presence.h"

namespace herald::engine {

// The single-process PresenceRegistry: channel -> connection id -> client, in lock stripes by
// channel; a channel with nobody present takes no memory. Completions are called before
// returning, with no lock held. Thread-safe.
class MemoryPresence : public core::PresenceRegistry {
 public:
  void Add(const std::string& channel, v1::ClientInfo client, core::StatusDone done) override;
  void Remove(const std::string& channel, const std::string& connection_id,
              core::StatusDone done) override;
  void Get(const std::string& channel, core::Done<std::vector<v1::ClientInfo>> done) override;
  void Count(const std::string& channel, core::Done<Counts> done) override;

 private:
  struct Stripe {
    core::Mutex mu;
    // Ordered by connection id, as Get answers.
    absl::flat_hash_map<std::string, std::map<std::string, v1::ClientInfo>> channels
        ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kStripes = 16;
  Stripe& StripeFor(const std::string& channel);

  std::array<Stripe, kStripes> stripes_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_PRESENCE_H_
