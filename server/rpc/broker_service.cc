#include "server/rpc/broker_service.h"

#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/rpc/methods.h"

namespace herald::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

BrokerService::BrokerService(core::Hub* hub, std::string api_key)
    : hub_(hub), api_key_(std::move(api_key)) {}

grpc::ServerUnaryReactor* BrokerService::Handle(grpc::CallbackServerContext* ctx,
                                                const char* method,
                                                const google::protobuf::Message& request,
                                                google::protobuf::Message* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::string_view authorization;
  const auto& metadata = ctx->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  absl::Status status = CheckApiKey(authorization, api_key_);
  if (status.ok()) status = FindUnaryMethod(method)->call(*hub_, request, response);
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

RpcServer::RpcServer(core::Hub* hub, std::string api_key) : service_(hub, std::move(api_key)) {}

RpcServer::~RpcServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

absl::StatusOr<int> RpcServer::Start(const std::string& address) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  // gRPC sets SO_REUSEPORT by default, which would let a second herald share a busy port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " (address in use or invalid)"));
  }
  return port;
}

void RpcServer::Shutdown(absl::Duration deadline) {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + deadline));
  server_->Wait();
  server_.reset();
}

}  // namespace herald::rpc
