#ifndef HERALD_SERVER_RPC_TSAN_HANDOFF_H_
#define HERALD_SERVER_RPC_TSAN_HANDOFF_H_

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace herald::rpc {

// gRPC's callback API guarantees that what a thread did before it started an operation on a
// reactor (StartRead, StartWrite, Finish…) happens before the operation's callback (OnReadDone,
// OnDone…), which may run on another thread. gRPC keeps that promise with synchronisation inside
// Debian's libgrpc, which is not built with ThreadSanitizer, so under TSan the reactor's own
// state (and what it points to, such as a PublishStream summary) looks raced between the two
// threads. These calls state the hand-off to TSan in the TSan build (no-ops otherwise): HandOff
// right before starting an operation, TakeOver first thing in each callback. gRPC also runs a
// reactor's callbacks one after another (OnDone last), so TakeOver passes on what the callback's
// thread did before it too (gRPC's own reads of the completed operation). They do not hide
// Herald's accesses: a race with anything outside that hand-off is still reported.
inline void HandOff([[maybe_unused]] const void* reactor) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(const_cast<void*>(reactor));
#endif
}

inline void TakeOver([[maybe_unused]] const void* reactor) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<void*>(reactor));
  __tsan_release(const_cast<void*>(reactor));
#endif
}

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_TSAN_HANDOFF_H_
