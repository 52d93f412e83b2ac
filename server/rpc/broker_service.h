#ifndef HERALD_SERVER_RPC_BROKER_SERVICE_H_
#define HERALD_SERVER_RPC_BROKER_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "herald/v1/broker.grpc.pb.h"
#include "server/core/api_executor.h"
#include "server/rpc/api_metrics.h"

namespace herald::rpc {

// gRPC adapter of the Broker service: checks the API key, runs the method's UnaryMethod handler
// and maps absl::Status to grpc::Status; with ApiMetrics, counts and times each unary call.
// Nothing else. Stateless besides its borrowed API executor and metrics;
// called concurrently from gRPC's threads. Unary calls finish by completion: a publish waiting
// for an ack finishes its reactor from the thread that ends the wait.
class BrokerService final : public v1::Broker::CallbackService {
 public:
  // `api` and `metrics` (optional) must outlive the service.
  BrokerService(core::ApiExecutor* api, std::string api_key, ApiMetrics* metrics = nullptr);

#define HERALD_UNARY(Name, Req, Resp)                                                      \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, const v1::Req* request, \
                                 v1::Resp* response) override {                            \
    return Handle(ctx, #Name, *request, response);                                         \
  }
  HERALD_UNARY(PublishOrder, PublishOrderRequest, PublishOrderResponse)
  HERALD_UNARY(Publish, PublishRequest, PublishResponse)
  HERALD_UNARY(Broadcast, BroadcastRequest, BroadcastResponse)
  HERALD_UNARY(SendToUser, SendToUserRequest, SendResponse)
  HERALD_UNARY(SendToConnection, SendToConnectionRequest, SendResponse)
  HERALD_UNARY(ListConnections, ListConnectionsRequest, ListConnectionsResponse)
  HERALD_UNARY(GetConnection, GetConnectionRequest, Connection)
  HERALD_UNARY(Disconnect, DisconnectRequest, DisconnectResponse)
  HERALD_UNARY(Subscribe, SubscribeRequest, SubscribeResponse)
  HERALD_UNARY(Unsubscribe, UnsubscribeRequest, UnsubscribeResponse)
  HERALD_UNARY(Stats, StatsRequest, StatsResponse)
  HERALD_UNARY(History, HistoryRequest, HistoryResponse)
  HERALD_UNARY(DispatchTask, DispatchTaskRequest, DispatchTaskResponse)
  HERALD_UNARY(ListQueues, ListQueuesRequest, ListQueuesResponse)
  HERALD_UNARY(Presence, PresenceRequest, PresenceResponse)
  HERALD_UNARY(PresenceStats, PresenceStatsRequest, PresenceStatsResponse)
  HERALD_UNARY(Channels, ChannelsRequest, ChannelsResponse)
#undef HERALD_UNARY

  grpc::ServerWriteReactor<v1::Event>* WatchEvents(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchEventsRequest* request) override;
  // Client-streaming publish: each request goes through ApiExecutor::Publish /
  // ApiExecutor::PublishOrder, in order; one that waits for an ack holds back the next read until
  // its wait ends (by completion, not by blocking a thread).
  grpc::ServerReadReactor<v1::PublishStreamRequest>* PublishStream(
      grpc::CallbackServerContext* ctx, v1::PublishStreamSummary* summary) override;

 private:
  absl::Status Authorize(grpc::CallbackServerContext* ctx) const;

  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx, const char* method,
                                   const google::protobuf::Message& request,
                                   google::protobuf::Message* response);

  core::ApiExecutor* const api_;
  const std::string api_key_;
  ApiMetrics* const metrics_;
};

grpc::Status ToGrpcStatus(const absl::Status& status);

// TLS for the gRPC port: PEM file names (cert_file empty: plaintext). With client_ca_file,
// clients must present a certificate signed by one of its CAs (mTLS).
struct RpcTls {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
};

// The gRPC server: Broker, grpc.health.v1.Health and server reflection on one port. Start() and
// Shutdown() are called from the control thread.
class RpcServer {
 public:
  RpcServer(core::ApiExecutor* api, std::string api_key, ApiMetrics* metrics = nullptr);
  ~RpcServer();

  // Binds "host:port" (port 0 picks a free one) and starts serving; returns the bound port.
  // With `tls.cert_file`, the port speaks TLS only; gRPC re-reads the files every
  // kTlsRefreshSeconds (its FileWatcherCertificateProvider), so a renewed certificate is picked
  // up without a restart, and a broken file is logged by gRPC while the old identity stays.
  absl::StatusOr<int> Start(const std::string& address, const RpcTls& tls = {});
  static constexpr unsigned int kTlsRefreshSeconds = 5;
  // The start of a drain: gRPC health answers NOT_SERVING, so load balancers and health-checking
  // clients move away while calls are refused with UNAVAILABLE (ApiExecutor::BeginDrain).
  void BeginDrain();
  // gRPC health for what the node depends on (main.cc: the Redis engine): NOT_SERVING while
  // `serving` is false. Has no effect after BeginDrain(). Any thread.
  void SetServing(bool serving);
  // Stops accepting calls, lets in-flight ones finish until `deadline`, then cancels the rest.
  void Shutdown(absl::Duration deadline);

 private:
  BrokerService service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> draining_{false};
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_BROKER_SERVICE_H_
