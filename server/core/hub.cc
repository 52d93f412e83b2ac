#include "server/core/hub.h"

#include <utility>

namespace herald::core {

Hub::Hub(Limits limits, std::string node, Engine* engine, const FrameFactory* frames,
         const auth::JwtVerifier* verifier, Clock clock)
    : limits_(std::move(limits)),
      clock_(std::move(clock)),
      engine_(engine),
      node_(limits_, std::move(node), &engine->broker(), &engine->tasks(), &engine->presence(),
            frames, verifier != nullptr, clock_),
      control_(&node_, &engine->control()),
      protocol_(&node_, verifier),
      api_(&node_, engine) {
  control_.SetLocalStats([this] { return api_.LocalStats(); });
  node_.events().SetRelay(&control_);
  engine->control().SetHandler(&control_);
}

void Hub::Tick() {
  const absl::Time now = clock_();
  node_.Tick(now);
  engine_->idempotency().Sweep(now);
  engine_->orders().Sweep(now);
  engine_->broker().Sweep(now);
  engine_->tasks().Sweep(now);
}

}  // namespace herald::core
