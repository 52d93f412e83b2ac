#ifndef HERALD_SERVER_CORE_CONTROL_BUS_H_
#define HERALD_SERVER_CORE_CONTROL_BUS_H_

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
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
  // An event another node emitted (a serialized v1::Event), for this node: see
  // ControlBus::ShareEvent. None arrive on a one-node bus.
  virtual void HandleEvent(const std::string& /*event*/) {}
  // An ack a client of another node sent for a publication whose publish call waits on this
  // node: see ControlBus::ForwardAck. None arrive on a one-node bus.
  virtual void HandleAck(const std::string& /*ack*/) {}
};

// Carries control calls between the nodes of a cluster: a survey asks every node (this one
// included) and collects their answers — commands (disconnect a user, send to a user, subscribe a
// connection) are surveys whose answers say what each node did. Also carries the nodes' events
// to the WatchEvents watchers of every node. MemoryControlBus: this node only; a Redis bus: every
// live node. Never blocks; thread-safe.
class ControlBus {
 public:
  // Which nodes a shared event is for.
  enum class EventAudience {
    kWatchers,   // the nodes that have watchers
    kEveryNode,  // all: a CONNECT with a user ends that user's DISCONNECTs held back anywhere
  };
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

  // WatchEvents across nodes. The defaults are the one-node bus's: no other node watches, and
  // attaching is immediate.
  //
  // True while another node has watchers: this node then shares its events (ShareEvent). Cheap;
  // any thread.
  virtual bool OthersWatch() const { return false; }
  // Hands a serialized v1::Event of this node to the other nodes of `audience`, whose handlers
  // get it (ControlHandler::HandleEvent); never back to this node. Events one node shares reach
  // each other node in the order they were shared.
  virtual void ShareEvent(std::string /*event*/, EventAudience /*audience*/) {}
  // A watcher attached on this node (counted): other nodes share their events with it from now
  // on. `attached` is called (once, any thread, possibly before this returns) when every live
  // node does, or when that could not be done (Redis down): the watcher still gets this node's
  // events.
  virtual void AttachWatcher(absl::AnyInvocable<void()> attached) { attached(); }
  // A watcher detached; with the last one, other nodes stop sharing with this one.
  virtual void DetachWatcher() {}

  // Hands `ack` (opaque bytes) to node `node`'s handler (ControlHandler::HandleAck), at most
  // once, in the order forwarded; dropped when that node or Redis is unreachable (the wait then
  // ends at its deadline). Never called on a one-node bus: every publication starts there.
  virtual void ForwardAck(const std::string& /*node*/, std::string /*ack*/) {}
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CONTROL_BUS_H_
