#ifndef HERALD_SERVER_CORE_ONLINE_USERS_H_
#define HERALD_SERVER_CORE_ONLINE_USERS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/core/mutex.h"
#include "server/core/online_registry.h"

namespace herald::core {

// The OnlineRegistry of one node (MemoryEngine): online when a user's first connection is
// announced, offline when their last one has closed and none came back within the grace period
// — a user with two tabs, or one who reloads the page, stays online. Owns the per-user connection
// counts and the pending offlines (in due order: the grace period is one constant). Thread-safe;
// one mutex; completions run at once, after it is released.
class OnlineUsers : public OnlineRegistry {
 public:
  explicit OnlineUsers(absl::Duration grace) : grace_(grace) {}

  void Connected(const std::string& user, Done<bool> done) override { done(Connected(user)); }
  void Disconnected(const std::string& user, absl::Time now, Done<bool> done) override {
    done(Disconnected(user, now));
  }
  void Due(absl::Time now, Done<OnlineChanges> done) override {
    done(OnlineChanges{{}, Due(now)});  // one node: never counted gone by another
  }

  // An announced connection of `user` opened. True when the user came online with it (no other
  // connection, and none closed within the grace period).
  bool Connected(const std::string& user);
  // An announced connection of `user` closed. True when the user is offline at once (it was the
  // last one and there is no grace period); otherwise Due() reports it later, unless the user
  // connects again first.
  bool Disconnected(const std::string& user, absl::Time now);
  // The users whose grace period ended by `now` with no connection: they are offline. Costs what
  // is due, not what is held.
  std::vector<std::string> Due(absl::Time now);

 private:
  struct State {
    uint32_t connections = 0;
    // Set while the last connection is closed and the grace period runs: its end.
    absl::Time offline_at = absl::InfiniteFuture();
  };
  const absl::Duration grace_;
  Mutex mu_;
  absl::flat_hash_map<std::string, State> users_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<absl::Time, std::string>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ONLINE_USERS_H_
