#include "server/rpc/methods.h"

#include <openssl/crypto.h>

#include "absl/container/flat_hash_map.h"
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

// Binds a synchronous Hub member to the type-erased handler signature: done at once.
template <typename Req, typename Resp>
UnaryMethod Bind(const char* name, absl::StatusOr<Resp> (*fn)(core::Hub&, const Req&)) {
  UnaryMethod m;
  m.descriptor = Descriptor(name);
  m.call = [fn](core::Hub& hub, const pb::Message& request, pb::Message* response, UnaryDone done) {
    absl::StatusOr<Resp> result = fn(hub, static_cast<const Req&>(request));
    if (result.ok()) *static_cast<Resp*>(response) = *std::move(result);
    done(result.status());
  };
  return m;
}

// Binds a Hub member that finishes by completion (it may wait for an ack).
template <typename Req, typename Resp>
UnaryMethod BindAsync(const char* name, void (*fn)(core::Hub&, const Req&, core::Hub::Done<Resp>)) {
  UnaryMethod m;
  m.descriptor = Descriptor(name);
  m.call = [fn](core::Hub& hub, const pb::Message& request, pb::Message* response, UnaryDone done) {
    fn(hub, static_cast<const Req&>(request),
       [response, done = std::move(done)](absl::StatusOr<Resp> result) {
         if (result.ok()) *static_cast<Resp*>(response) = *std::move(result);
         done(result.status());
       });
  };
  return m;
}

#define HERALD_METHOD(Name, Req, Resp) \
  Bind<v1::Req, v1::Resp>(#Name, [](core::Hub& h, const v1::Req& r) { return h.Name(r); })
#define HERALD_ASYNC_METHOD(Name, Req, Resp)                                                     \
  BindAsync<v1::Req, v1::Resp>(#Name,                                                            \
                               [](core::Hub& h, const v1::Req& r, core::Hub::Done<v1::Resp> d) { \
                                 h.Name(r, std::move(d));                                        \
                               })

std::vector<UnaryMethod> BuildMethods() {
  return {
      HERALD_ASYNC_METHOD(PublishOrder, PublishOrderRequest, PublishOrderResponse),
      HERALD_ASYNC_METHOD(Publish, PublishRequest, PublishResponse),
      HERALD_METHOD(Broadcast, BroadcastRequest, BroadcastResponse),
      HERALD_METHOD(SendToUser, SendToUserRequest, SendResponse),
      HERALD_METHOD(SendToConnection, SendToConnectionRequest, SendResponse),
      HERALD_METHOD(ListConnections, ListConnectionsRequest, ListConnectionsResponse),
      HERALD_METHOD(GetConnection, GetConnectionRequest, Connection),
      HERALD_METHOD(Disconnect, DisconnectRequest, DisconnectResponse),
      HERALD_METHOD(Subscribe, SubscribeRequest, SubscribeResponse),
      HERALD_METHOD(Unsubscribe, UnsubscribeRequest, UnsubscribeResponse),
      HERALD_METHOD(Stats, StatsRequest, StatsResponse),
      HERALD_METHOD(History, HistoryRequest, HistoryResponse),
      HERALD_METHOD(DispatchTask, DispatchTaskRequest, DispatchTaskResponse),
      HERALD_METHOD(ListQueues, ListQueuesRequest, ListQueuesResponse),
  };
}

#undef HERALD_ASYNC_METHOD
#undef HERALD_METHOD

// During a drain every method refuses with UNAVAILABLE before doing anything, whichever
// transport the call came in on.
std::vector<UnaryMethod> RefusingWhileDraining(std::vector<UnaryMethod> methods) {
  for (UnaryMethod& m : methods) {
    m.call = [call = std::move(m.call)](core::Hub& hub, const pb::Message& request,
                                        pb::Message* response, UnaryDone done) {
      if (hub.draining()) return done(hub.RefuseDraining());
      call(hub, request, response, std::move(done));
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
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "authorization: missing API key; send the header 'authorization: Bearer <key>'");
  }
  absl::string_view given = authorization.substr(kBearer.size());
  if (given.size() != api_key.size() ||
      CRYPTO_memcmp(given.data(), api_key.data(), api_key.size()) != 0) {
    return absl::UnauthenticatedError("authorization: wrong API key");
  }
  return absl::OkStatus();
}

}  // namespace herald::rpc
