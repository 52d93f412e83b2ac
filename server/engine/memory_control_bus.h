#ifndef HERALD_SERVER_ENGINE_MEMORY_CONTROL_BUS_H_
#define HERALD_SERVER_ENGINE_MEMORY_CONTROL_BUS_H_

#include <string>

#include "server/core/control_bus.h"

namespace herald::engine {

// The single-process ControlBus: the cluster is this node, so a survey is answered by its own
// handler, before Survey returns when the handler answers at once. Owns nothing; thread-safe.
class MemoryControlBus : public core::ControlBus {
 public:
  void SetHandler(core::ControlHandler* handler) override { handler_ = handler; }
  void Survey(const std::string& method, std::string request, absl::Duration timeout,
              core::Done<Answers> done) override;

 private:
  core::ControlHandler* handler_ = nullptr;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_CONTROL_BUS_H_
