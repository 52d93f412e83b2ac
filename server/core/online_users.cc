#include "server/core/online_users.h"

namespace herald::core {

bool OnlineUsers::Connected(const std::string& user) {
  MutexLock lock(&mu_);
  State& state = users_[user];
  const bool came_online = state.connections == 0 && state.offline_at == absl::InfiniteFuture();
  ++state.connections;
  state.offline_at = absl::InfiniteFuture();  // back within the grace period: not news
  return came_online;
}

bool OnlineUsers::Disconnected(const std::string& user, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = users_.find(user);
  if (it == users_.end() || it->second.connections == 0) return false;
  if (--it->second.connections > 0) return false;
  if (grace_ <= absl::ZeroDuration()) {
    users_.erase(it);
    return true;
  }
  it->second.offline_at = now + grace_;
  pending_.emplace_back(it->second.offline_at, user);
  return false;
}

std::vector<std::string> OnlineUsers::Due(absl::Time now) {
  std::vector<std::string> offline;
  MutexLock lock(&mu_);
  while (!pending_.empty() && pending_.front().first <= now) {
    auto [at, user] = std::move(pending_.front());
    pending_.pop_front();
    auto it = users_.find(user);
    // Still the same pending offline (no reconnect, and no later close that set a new one).
    if (it != users_.end() && it->second.connections == 0 && it->second.offline_at == at) {
      users_.erase(it);
      offline.push_back(std::move(user));
    }
  }
  return offline;
}

}  // namespace herald::core
