#ifndef HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_
#define HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_

#include <functional>

#include "absl/time/clock.h"
#include "server/core/engine.h"
#include "server/core/limits.h"
#include "server/core/online_users.h"
#include "server/engine/memory_broker.h"
#include "server/engine/memory_control_bus.h"
#include "server/engine/memory_idempotency_store.h"
#include "server/engine/memory_order_store.h"
#include "server/engine/memory_presence.h"
#include "server/engine/memory_task_store.h"

namespace herald::engine {

// The single-node engine (the default): MemoryBroker, MemoryOrderStore, MemoryIdempotencyStore,
// MemoryTaskStore, MemoryControlBus, MemoryPresence and core::OnlineUsers, all in this process,
// on one injected clock. Owns them;
// thread-safe as they are.
class MemoryEngine : public core::Engine {
 public:
  using Clock = std::function<absl::Time()>;
  explicit MemoryEngine(
      const core::Limits& limits, Clock clock = [] { return absl::Now(); })
      : broker_(limits, clock),
        orders_(limits, &broker_, clock),
        idempotency_(limits.idempotency_window, clock),
        tasks_(limits, clock),
        online_(limits.disconnect_grace) {}

  MemoryBroker& broker() override { return broker_; }
  core::OrderStore& orders() override { return orders_; }
  core::IdempotencyStore& idempotency() override { return idempotency_; }
  MemoryTaskStore& tasks() override { return tasks_; }
  core::ControlBus& control() override { return control_; }
  core::PresenceRegistry& presence() override { return presence_; }
  core::OnlineRegistry& online() override { return online_; }

 private:
  MemoryBroker broker_;
  MemoryOrderStore orders_;
  MemoryIdempotencyStore idempotency_;
  MemoryTaskStore tasks_;
  MemoryControlBus control_;
  MemoryPresence presence_;
  core::OnlineUsers online_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_MEMORY_ENGINE_H_
