#include "server/rpc/methods.h"

#include <openssl/crypto.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "herald/v1/broker.pb.h"

namespace herald::rpc {
namespace {

namespace pb = google::protobuf;

const pb::MethodDescriptor* Descriptor(const char* name) {
  return pb::DescriptorPool::generated_pool()
      ->FindServiceByName("herald.v1.Broker")
      ->FindMethodByName(name);
}

// Binds an ApiExecutor method (every one finishes by completion) to the type-erased handler
// signature.
template <typename Req, typename Resp>
UnaryMethod Bind(const char* name, void (core::ApiExecutor::*fn)(const Req&, core::Done<Resp>)) {
  UnaryMethod m;
  m.descriptor = Descriptor(name);
  m.call = [fn](core::ApiExecutor& api, const pb::Message& request, pb::Message* response,
                UnaryDone done) {
    (api.*fn)(static_cast<const Req&>(request),
              [response, done = std::move(done)](absl::StatusOr<Resp> result) {
                if (result.ok()) *static_cast<Resp*>(response) = *std::move(result);
                done(result.status());
              });
  };
  return m;
}

#define HERALD_METHOD(Name) Bind(#Name, &core::ApiExecutor::Name)

std::vector<UnaryMethod> BuildMethods() {
  return {
      HERALD_METHOD(PublishOrder),
      HERALD_METHOD(Publish),
      HERALD_METHOD(Broadcast),
      HERALD_METHOD(SendToUser),
      HERALD_METHOD(SendToConnection),
      HERALD_METHOD(ListConnections),
      HERALD_METHOD(GetConnection),
      HERALD_METHOD(Disconnect),
      HERALD_METHOD(Subscribe),
      HERALD_METHOD(Unsubscribe),
      HERALD_METHOD(Stats),
      HERALD_METHOD(History),
      HERALD_METHOD(DispatchTask),
      HERALD_METHOD(ListQueues),
      HERALD_METHOD(Presence),
      HERALD_METHOD(PresenceStats),
      HERALD_METHOD(Channels),
  };
}

#undef HERALD_METHOD

// During a drain every method refuses with UNAVAILABLE before doing anything, whichever
// transport the call came in on.
std::vector<UnaryMethod> RefusingWhileDraining(std::vector<UnaryMethod> methods) {
  for (UnaryMethod& m : methods) {
    m.call = [call = std::move(m.call)](core::ApiExecutor& api, const pb::Message& request,
                                        pb::Message* response, UnaryDone done) {
      if (api.draining()) return done(api.RefuseDraining());
      call(api, request, response, std::move(done));
    };
  }
  return methods;
}

}  // namespace

const std::vector<UnaryMethod>& UnaryMethods() {
  static const auto* methods = new std::vector<UnaryMethod>(RefusingWhileDraining(BuildMethods()));
  return *methods;
}

const UnaryMethod* FindUnaryMethod(absl::string_view name) {
  static const auto* by_name = [] {
    auto* map = new absl::flat_hash_map<std::string, const UnaryMethod*>();
    for (const UnaryMethod& m : UnaryMethods()) (*map)[m.descriptor->name()] = &m;
    return map;
  }();
  auto it = by_name->find(name);
  return it == by_name->end() ? nullptr : it->second;
}

absl::Status CheckApiKey(absl::string_view authorization, const std::string& api_key) {
  if (api_key.empty()) return absl::OkStatus();
  // The scheme is case-insensitive (RFC 9110 §11.1): "bearer KEY" is as good.
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "authorization: missing API key; send the header 'authorization: Bearer <key>'");
  }
  // One or more spaces separate the scheme from the credentials (RFC 9110 §11.4: 1*SP).
  absl::string_view given = absl::StripLeadingAsciiWhitespace(authorization.substr(kBearer.size()));
  if (given.size() != api_key.size() ||
      CRYPTO_memcmp(given.data(), api_key.data(), api_key.size()) != 0) {
    return absl::UnauthenticatedError("authorization: wrong API key");
  }
  return absl::OkStatus();
}

}  // namespace herald::rpc
