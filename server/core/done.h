#ifndef HERALD_SERVER_CORE_DONE_H_
#define HERALD_SERVER_CORE_DONE_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald::core {

// A completion: gets the result of an operation that may finish later, on another thread. Called
// exactly once, never under a lock of the code that calls it.
template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;
using StatusDone = absl::AnyInvocable<void(absl::Status)>;

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_DONE_H_
