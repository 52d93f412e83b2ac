#ifndef HERALD_SERVER_CORE_CONTROL_BUS_H_
#define HERALD_SERVER_CORE_CONTROL_BUS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/done.h"

namespace herald::core {

// Runs this node's part of a control call that concerns every node (core::NodeControl).
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  // `method` names a Broker RPC ("ListConnections"); `request` is its serialized, validated
  // request; `done` gets this node's serialized answer, or an error.
  virtual void HandleSurvey(const std::string& method, const std::string& request,
                            Done<std::string> done) = 0;
};

// Carries control calls between the nodes of a cluster: a survey asks every node (this one
// included) and collects their answers — commands (disconnect a user, send to a user, subscribe a
// connection) are surveys whose answers say what each node did. MemoryControlBus: this node
// only; a Redis bus: every live node. Never blocks; thread-safe.
class ControlBus {
 public:
  struct Answers {
    // One per node that answered in time (errors included), in no particular order.
    std::vector<absl::StatusOr<std::string>> replies;
    // Nodes known to be alive that did not answer within the timeout.
    int missing = 0;
  };

  virtual ~ControlBus() = default;
  // Where this node's surveys go; set once, before any other call. Must outlive the bus's use.
  virtual void SetHandler(ControlHandler* handler) = 0;
  // Asks every node; `done` gets the answers when all have answered or `timeout` has passed.
  virtual void Survey(const std::string& method, std::string request, absl::Duration timeout,
                      Done<Answers> done) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CONTROL_BUS_H_
