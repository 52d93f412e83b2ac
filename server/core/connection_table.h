#ifndef HERALD_SERVER_CORE_CONNECTION_TABLE_H_
#define HERALD_SERVER_CORE_CONNECTION_TABLE_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::core {

// The shared table of live sessions, by connection id and by user. Owns a shared_ptr to every
// registered session. Thread-safe: striped, one core::Mutex per stripe; lookups return
// shared_ptrs so callers never touch a session while holding a table lock.
class ConnectionTable {
 public:
  static constexpr size_t kStripes = 32;

  absl::Status Add(std::shared_ptr<Session> session);  // ALREADY_EXISTS on a duplicate id
  // Removes and returns the session (nullptr when absent).
  std::shared_ptr<Session> Remove(absl::string_view id);
  std::shared_ptr<Session> Find(absl::string_view id) const;
  std::vector<std::shared_ptr<Session>> FindUser(absl::string_view user) const;
  std::vector<std::shared_ptr<Session>> All() const;
  // Adds a registered session that was anonymous to the index of its (new) Session::user().
  // False when the session is no longer in the table.
  bool IndexUser(const std::shared_ptr<Session>& session);

  size_t size() const;
  size_t users() const;

 private:
  struct IdStripe {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, std::shared_ptr<Session>> by_id ABSL_GUARDED_BY(mu);
  };
  struct UserStripe {
    mutable core::Mutex mu;
    // A set, not a list: a user may hold thousands of connections (a service account, a load
    // test), and each one leaving must not scan the others.
    absl::flat_hash_map<std::string, absl::flat_hash_set<std::shared_ptr<Session>>> by_user
        ABSL_GUARDED_BY(mu);
  };
  IdStripe& IdStripeFor(absl::string_view id) const;
  UserStripe& UserStripeFor(absl::string_view user) const;

  mutable std::array<IdStripe, kStripes> ids_;
  mutable std::array<UserStripe, kStripes> users_;
  // Entries of ids_, kept beside them: size() is read on every handshake (--max-connections).
  std::atomic<size_t> size_{0};
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CONNECTION_TABLE_H_
