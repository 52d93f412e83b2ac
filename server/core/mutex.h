#ifndef HERALD_SERVER_CORE_MUTEX_H_
#define HERALD_SERVER_CORE_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace herald::core {

#if defined(__SANITIZE_THREAD__)
// Debian's abseil libraries are not built with ThreadSanitizer, so TSan cannot see how
// absl::Mutex orders memory and reports races on data it guards. Under TSan the core therefore
// uses this std::mutex-based lock with the same interface (and the same thread-safety
// annotations), so the concurrency test checks Herald's own locking.
class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};
#else
// The core's mutex: absl::Mutex (see above for the TSan build).
using Mutex = absl::Mutex;
using MutexLock = absl::MutexLock;
#endif

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_MUTEX_H_
