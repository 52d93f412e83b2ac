#ifndef HERALD_SERVER_CORE_ENGINE_H_
#define HERALD_SERVER_CORE_ENGINE_H_

#include "server/core/broker.h"
#include "server/core/control_bus.h"
#include "server/core/idempotency_store.h"
#include "server/core/online_registry.h"
#include "server/core/order_store.h"
#include "server/core/presence.h"
#include "server/core/task_store.h"

namespace herald::core {

// The state a node shares with the other nodes of its cluster, behind asynchronous interfaces:
// the Broker (publications: order, history, fan-out between nodes), the OrderStore (the
// stale-version guard), the IdempotencyStore, the TaskStore (task queues and leases), the
// ControlBus (control calls every node answers), the PresenceRegistry (who is in the presence
// channels) and the OnlineRegistry (which users are online: USER_ONLINE / USER_OFFLINE).
// engine::MemoryEngine keeps it all in this process (one node, the default). The engine must
// outlive the node using it.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual Broker& broker() = 0;
  virtual OrderStore& orders() = 0;
  virtual IdempotencyStore& idempotency() = 0;
  virtual TaskStore& tasks() = 0;
  virtual ControlBus& control() = 0;
  virtual PresenceRegistry& presence() = 0;
  virtual OnlineRegistry& online() = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ENGINE_H_
