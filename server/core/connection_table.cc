#include "server/core/connection_table.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace herald::core {

ConnectionTable::IdShard& ConnectionTable::IdShardFor(absl::string_view id) const {
  return ids_[absl::HashOf(id) % kShards];
}

ConnectionTable::UserShard& ConnectionTable::UserShardFor(absl::string_view user) const {
  return users_[absl::HashOf(user) % kShards];
}

absl::Status ConnectionTable::Add(std::shared_ptr<Session> session) {
  const std::string user = session->user();
  {
    IdShard& shard = IdShardFor(session->id());
    core::MutexLock lock(&shard.mu);
    if (!shard.by_id.try_emplace(session->id(), session).second) {
      return absl::AlreadyExistsError(absl::StrCat("connection ", session->id(), " exists"));
    }
  }
  if (!user.empty()) {
    UserShard& shard = UserShardFor(user);
    core::MutexLock lock(&shard.mu);
    shard.by_user[user].push_back(std::move(session));
  }
  return absl::OkStatus();
}

std::shared_ptr<Session> ConnectionTable::Remove(absl::string_view id) {
  std::shared_ptr<Session> session;
  {
    IdShard& shard = IdShardFor(id);
    core::MutexLock lock(&shard.mu);
    auto it = shard.by_id.find(id);
    if (it == shard.by_id.end()) return nullptr;
    session = std::move(it->second);
    shard.by_id.erase(it);
  }
  const std::string user = session->user();
  if (!user.empty()) {
    UserShard& shard = UserShardFor(user);
    core::MutexLock lock(&shard.mu);
    auto it = shard.by_user.find(user);
    if (it != shard.by_user.end()) {
      auto& list = it->second;
      list.erase(std::remove(list.begin(), list.end(), session), list.end());
      if (list.empty()) shard.by_user.erase(it);
    }
  }
  return session;
}

std::shared_ptr<Session> ConnectionTable::Find(absl::string_view id) const {
  IdShard& shard = IdShardFor(id);
  core::MutexLock lock(&shard.mu);
  auto it = shard.by_id.find(id);
  return it == shard.by_id.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Session>> ConnectionTable::FindUser(absl::string_view user) const {
  UserShard& shard = UserShardFor(user);
  core::MutexLock lock(&shard.mu);
  auto it = shard.by_user.find(user);
  if (it == shard.by_user.end()) return {};
  return it->second;
}

bool ConnectionTable::IndexUser(const std::shared_ptr<Session>& session) {
  const std::string user = session->user();
  // The id shard stays locked so that a concurrent Remove() either runs before (and this returns
  // false) or after (and finds the session under its user). Nothing else nests these locks.
  IdShard& ids = IdShardFor(session->id());
  core::MutexLock id_lock(&ids.mu);
  auto it = ids.by_id.find(session->id());
  if (it == ids.by_id.end() || it->second != session) return false;
  if (user.empty()) return true;
  UserShard& shard = UserShardFor(user);
  core::MutexLock lock(&shard.mu);
  shard.by_user[user].push_back(session);
  return true;
}

std::vector<std::shared_ptr<Session>> ConnectionTable::All() const {
  std::vector<std::shared_ptr<Session>> out;
  for (IdShard& shard : ids_) {
    core::MutexLock lock(&shard.mu);
    for (const auto& [id, session] : shard.by_id) out.push_back(session);
  }
  return out;
}

size_t ConnectionTable::size() const {
  size_t n = 0;
  for (IdShard& shard : ids_) {
    core::MutexLock lock(&shard.mu);
    n += shard.by_id.size();
  }
  return n;
}

size_t ConnectionTable::users() const {
  size_t n = 0;
  for (UserShard& shard : users_) {
    core::MutexLock lock(&shard.mu);
    n += shard.by_user.size();
  }
  return n;
}

}  // namespace herald::core
