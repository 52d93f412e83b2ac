// Fuzzes what the WebSocket edge does with a client's text frames:
// core::ClientProtocol::OnClientFrame, i.e. json::CheckJson, the protobuf JSON mapping into
// herald.v1.ClientFrame and the whole dispatch (subscribe with recovery/snapshot, message,
// ack/nack, join/leave, connect/refresh with JWTs).
//
// Input: the first byte picks the mode (bit 0: the hub requires tokens, HS256 secret
// kHs256Secret); the rest is split at '\n' into frames, sent in order on one connection of a
// fresh hub (so every input is reproducible on its own). A line "!server" (and the end of the
// input) makes the control API act: publish with an ack request to every channel the connection
// is on and dispatch a task to the queue "couriers" (so later frames can ack or nack them), then
// Tick. At the end both connections unregister.
// Invariants: no crash/leak/UB (sanitizers), every frame sent back is a valid ServerFrame.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/auth/jwt.h"
#include "server/core/hub.h"
#include "server/engine/memory_engine.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/test_hub.h"

namespace herald::fuzz {
namespace {

core::Limits FuzzLimits() {
  core::Limits limits;
  limits.max_subscriptions_per_connection = 16;
  limits.max_tasks_per_worker = 4;
  return limits;
}

void Run(absl::string_view input) {
  if (input.empty()) return;
  const bool auth = (static_cast<uint8_t>(input[0]) & 1) != 0;
  input.remove_prefix(1);

  static const auth::JwtVerifier* const verifier =
      auth::JwtVerifier::Create({std::string(kHs256Secret), ""})->release();
  const core::Limits limits = FuzzLimits();
  engine::MemoryEngine engine(limits, FuzzNow);
  StringFrameFactory frames;
  testing::TestHub hub(limits, "n1", &engine, &frames, auth ? verifier : nullptr, FuzzNow);

  auto session = std::make_shared<FuzzSession>(hub.NextConnectionId(), "");
  // A second connection of a user, so that fan-out, presence and tasks have someone else.
  auto other = std::make_shared<FuzzSession>(hub.NextConnectionId(), auth ? "" : "u2");
  if (!hub.Register(session).ok() || !hub.Register(other).ok()) Fail("Register failed");

  auto server_acts = [&] {
    for (const std::string& channel : session->Subscriptions()) {
      v1::PublishRequest pub;
      pub.set_channel(channel);
      pub.mutable_data()->set_string_value("fuzz");
      pub.mutable_ack();  // ask subscribers to ack
      (void)hub.Publish(pub);
    }
    v1::DispatchTaskRequest task;
    task.set_queue("couriers");
    task.mutable_data()->set_number_value(1);
    (void)hub.DispatchTask(task);
    hub.Tick();
  };
  for (absl::string_view frame : absl::StrSplit(input, '\n')) {
    if (frame == "!server") {
      server_acts();
    } else {
      hub.OnClientFrame(session, frame);
    }
  }
  server_acts();
  hub.Unregister(*session, 1000, "fuzz");
  hub.Unregister(*other, 1000, "fuzz");
  hub.Tick();

  CheckServerFrames(*session);
  CheckServerFrames(*other);
  Check(hub.connection_count() == 0, "connections left in the table after Unregister");
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::fuzz::Run(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
