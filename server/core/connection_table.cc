#include "server/core/connection_table.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace herald::core {

ConnectionTable::IdStripe& ConnectionTable::IdStripeFor(absl::string_view id) const {
  return ids_[absl::HashOf(id) % kStripes];
}

ConnectionTable::UserStripe& ConnectionTable::UserStripeFor(absl::string_view user) const {
  return users_[absl::HashOf(user) % kStripes];
}

absl::Status ConnectionTable::Add(std::shared_ptr<Session> session) {
  const std::string user = session->user();
  {
    IdStripe& stripe = IdStripeFor(session->id());
    core::MutexLock lock(&stripe.mu);
    if (!stripe.by_id.try_emplace(session->id(), session).second) {
      return absl::AlreadyExistsError(absl::StrCat("connection ", session->id(), " exists"));
    }
    size_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!user.empty()) {
    UserStripe& stripe = UserStripeFor(user);
    core::MutexLock lock(&stripe.mu);
    stripe.by_user[user].insert(std::move(session));
  }
  return absl::OkStatus();
}

std::shared_ptr<Session> ConnectionTable::Remove(absl::string_view id) {
  std::shared_ptr<Session> session;
  {
    IdStripe& stripe = IdStripeFor(id);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.by_id.find(id);
    if (it == stripe.by_id.end()) return nullptr;
    session = std::move(it->second);
    stripe.by_id.erase(it);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
  const std::string user = session->user();
  if (!user.empty()) {
    UserStripe& stripe = UserStripeFor(user);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.by_user.find(user);
    if (it != stripe.by_user.end()) {
      it->second.erase(session);
      if (it->second.empty()) stripe.by_user.erase(it);
    }
  }
  return session;
}

std::shared_ptr<Session> ConnectionTable::Find(absl::string_view id) const {
  IdStripe& stripe = IdStripeFor(id);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.by_id.find(id);
  return it == stripe.by_id.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Session>> ConnectionTable::FindUser(absl::string_view user) const {
  UserStripe& stripe = UserStripeFor(user);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.by_user.find(user);
  if (it == stripe.by_user.end()) return {};
  return {it->second.begin(), it->second.end()};
}

bool ConnectionTable::IndexUser(const std::shared_ptr<Session>& session) {
  const std::string user = session->user();
  // The id stripe stays locked so that a concurrent Remove() either runs before (and this returns
  // false) or after (and finds the session under its user). Nothing else nests these locks.
  IdStripe& ids = IdStripeFor(session->id());
  core::MutexLock id_lock(&ids.mu);
  auto it = ids.by_id.find(session->id());
  if (it == ids.by_id.end() || it->second != session) return false;
  if (user.empty()) return true;
  UserStripe& stripe = UserStripeFor(user);
  core::MutexLock lock(&stripe.mu);
  stripe.by_user[user].insert(session);
  return true;
}

std::vector<std::shared_ptr<Session>> ConnectionTable::All() const {
  std::vector<std::shared_ptr<Session>> out;
  for (IdStripe& stripe : ids_) {
    core::MutexLock lock(&stripe.mu);
    for (const auto& [id, session] : stripe.by_id) out.push_back(session);
  }
  return out;
}

size_t ConnectionTable::size() const { return size_.load(std::memory_order_relaxed); }

size_t ConnectionTable::users() const {
  size_t n = 0;
  for (UserStripe& stripe : users_) {
    core::MutexLock lock(&stripe.mu);
    n += stripe.by_user.size();
  }
  return n;
}

}  // namespace herald::core
