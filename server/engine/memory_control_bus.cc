#include "server/engine/memory_control_bus.h"

#include <utility>

namespace herald::engine {

void MemoryControlBus::Survey(const std::string& method, std::string request, absl::Duration,
                              core::Done<Answers> done) {
  // No other node can be late: the timeout has nothing to bound.
  handler_->HandleSurvey(method, request,
                         [done = std::move(done)](absl::StatusOr<std::string> reply) mutable {
                           Answers answers;
                           answers.replies.push_back(std::move(reply));
                           done(std::move(answers));
                         });
}

}  // namespace herald::engine
