#ifndef HERALD_TESTS_SUPPORT_AWAIT_H_
#define HERALD_TESTS_SUPPORT_AWAIT_H_

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald::testing {

// Runs an operation that completes through a core::Done<T> (possibly later, on another thread):
// `start` gets the completion. Waits at most `timeout` for it (DEADLINE_EXCEEDED otherwise; a
// completion that comes after that is dropped safely). For tests only: it blocks the caller.
template <typename T, typename Start>
absl::StatusOr<T> Await(Start start, absl::Duration timeout = absl::Seconds(5)) {
  struct State {
    absl::Notification done;
    std::optional<absl::StatusOr<T>> result;
  };
  auto state = std::make_shared<State>();
  start([state](absl::StatusOr<T> r) {
    state->result = std::move(r);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no completion within ", absl::FormatDuration(timeout)));
  }
  return *std::move(state->result);
}

// Calls `pred` every `interval` until it holds (true) or `timeout` passes (false): the loop behind
// the tests' Eventually helpers. For tests only: it blocks the caller.
template <typename Pred>
bool PollUntil(Pred pred, absl::Duration timeout, absl::Duration interval) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(interval);
  }
  return true;
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_AWAIT_H_
