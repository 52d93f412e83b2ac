#ifndef HERALD_SERVER_RPC_METHODS_H_
#define HERALD_SERVER_RPC_METHODS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "server/core/api_executor.h"

namespace herald::rpc {

// Finishes a call: OK once the response is filled in, or the error.
using UnaryDone = std::function<void(absl::Status)>;

// One unary method of herald.v1.Broker: its descriptor and the single handler that serves it,
// whichever transport the call came in on. Immutable after start-up; thread-safe.
struct UnaryMethod {
  const google::protobuf::MethodDescriptor* descriptor;
  // Runs the call and then calls `done` exactly once: before returning, or later (an engine that
  // answers later, a Publish / PublishOrder waiting for an ack) from whichever thread finishes
  // it, never under a lock. `request` and `response` are of the descriptor's input and output
  // types; `request` need only live during the call, `response` until `done` is called.
  std::function<void(core::ApiExecutor& api, const google::protobuf::Message& request,
                     google::protobuf::Message* response, UnaryDone done)>
      call;
};

// Every unary Broker method, in the order of broker.proto.
const std::vector<UnaryMethod>& UnaryMethods();
// The method called `name` ("PublishOrder"), or nullptr.
const UnaryMethod* FindUnaryMethod(absl::string_view name);

// Checks an `authorization` value against the configured API key: OK when no key is configured
// or the value is exactly "Bearer <key>"; UNAUTHENTICATED otherwise.
absl::Status CheckApiKey(absl::string_view authorization, const std::string& api_key);

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_METHODS_H_
