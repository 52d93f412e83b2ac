#include "server/core/hub.h"

#include <utility>

namespace herald::core {

Hub::Hub(Limits limits, std::string node, Engine* engine, const FrameFactory* frames,
         const auth::JwtVerifier* verifier, Clock clock, Proxy* proxy)
    : limits_(std::move(limits)),
      clock_(std::move(clock)),
      engine_(engine),
      webhooks_(proxy != nullptr
                    ? std::make_unique<Webhooks>(node, proxy, &engine->presence(), clock_)
                    : nullptr),
      node_(limits_, std::move(node), &engine->broker(), &engine->tasks(),
            webhooks_ != nullptr ? &webhooks_->presence() : &engine->presence(), &engine->online(),
            frames,
            verifier != nullptr || (proxy != nullptr && proxy->Routes(ProxyEvent::kConnect, "")),
            clock_),
      control_(&node_, &engine->control()),
      protocol_(&node_, verifier, proxy),
      api_(&node_, engine) {
  control_.SetLocalStats([this] { return api_.LocalStats(); });
  node_.events().SetRelay(&control_);
  node_.acks().SetRelay(&control_);
  engine->control().SetHandler(&control_);
  if (webhooks_ != nullptr) webhooks_->Watch(&node_.events());
}

Hub::~Hub() {
  if (webhooks_ != nullptr) webhooks_->Stop();
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
