#include "server/rpc/broker_service.h"

#include <atomic>
#include <functional>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/core/mutex.h"
#include "server/rpc/methods.h"
#include "server/rpc/tsan_handoff.h"

namespace herald::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

// Serves one PublishStream call: reads a request, applies its publications through the API executor
// one after another, reads the next. A publication that waits for an ack finishes later, from the
// thread that ends the wait, and that thread carries on with the rest; nothing blocks. gRPC runs
// at most one of its callbacks at a time and no callback is pending while a publication is, so
// the reactor's state has one user at a time (HandOff/TakeOver state that to TSan). It deletes
// itself when the call is done.
class PublishStreamReactor final : public grpc::ServerReadReactor<v1::PublishStreamRequest> {
 public:
  PublishStreamReactor(core::ApiExecutor* api, v1::PublishStreamSummary* summary, absl::Status auth)
      : api_(api), summary_(summary) {
    HandOff(this);
    if (!auth.ok()) {
      Finish(ToGrpcStatus(auth));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    TakeOver(this);
    if (!ok) {  // the client half-closed the stream (or the call was cancelled)
      HandOff(this);
      Finish(grpc::Status::OK);
      return;
    }
    item_ = 0;
    Continue();
  }

  void OnDone() override {
    TakeOver(this);
    delete this;
  }

 private:
  bool is_batch() const { return request_.kind_case() == v1::PublishStreamRequest::kBatch; }
  int item_count() const { return is_batch() ? request_.batch().requests_size() : 1; }

  // Applies the current request's items from item_ on, then reads the next request. Loops while
  // items finish at once; returns when one finishes later (its completion calls Resume).
  void Continue() {
    while (item_ < item_count()) {
      // Whichever of this loop and the item's completion gets here second carries on.
      handoff_.store(0, std::memory_order_relaxed);
      ApplyItem([this](absl::Status st) {
        item_status_ = std::move(st);
        if (handoff_.fetch_add(1, std::memory_order_acq_rel) == 1) Resume();
      });
      if (handoff_.fetch_add(1, std::memory_order_acq_rel) == 0) return;
      if (!Advance()) return;
    }
    ++index_;
    HandOff(this);
    StartRead(&request_);
  }

  void Resume() {
    if (Advance()) Continue();
  }

  // Ends the call on a failed item; otherwise moves to the next one.
  bool Advance() {
    if (!item_status_.ok()) {
      grpc::Status status = ToGrpcStatus(item_status_);  // read before the hand-off
      HandOff(this);
      Finish(std::move(status));
      return false;
    }
    ++item_;
    return true;
  }

  // Names the current item in errors ("requests[3]", "requests[3].batch.requests[1]"). Built
  // only for an error: index_ and item_ stay put until the item's completion has run.
  std::string Where() const {
    std::string where = absl::StrCat("requests[", index_, "]");
    if (is_batch()) absl::StrAppend(&where, ".batch.requests[", item_, "]");
    return where;
  }

  void ApplyItem(core::StatusDone done) {
    if (!is_batch()) return ApplyOne(request_, std::move(done));
    const v1::PublishStreamRequest& one = request_.batch().requests(item_);
    if (one.kind_case() == v1::PublishStreamRequest::kBatch) {
      return done(absl::InvalidArgumentError(absl::StrCat(Where(), ": batches do not nest")));
    }
    ApplyOne(one, std::move(done));
  }

  // One publish or order request.
  void ApplyOne(const v1::PublishStreamRequest& request, core::StatusDone done) {
    // A stream that goes on into a drain ends with UNAVAILABLE: what came before is applied.
    if (api_->draining()) return done(api_->RefuseDraining());
    switch (request.kind_case()) {
      case v1::PublishStreamRequest::kPublish:
        api_->Publish(request.publish(), [this, done = std::move(done)](
                                             absl::StatusOr<v1::PublishResponse> r) mutable {
          if (!r.ok()) return done(Prefixed(Where(), "publish", r.status()));
          summary_->set_publications(summary_->publications() + 1);
          summary_->set_queued(summary_->queued() + r->delivery().queued());
          done(absl::OkStatus());
        });
        return;
      case v1::PublishStreamRequest::kOrder:
        api_->PublishOrder(
            request.order(),
            [this, done = std::move(done)](absl::StatusOr<v1::PublishOrderResponse> r) mutable {
              if (!r.ok()) return done(Prefixed(Where(), "order", r.status()));
              if (r->applied()) {
                summary_->set_orders_applied(summary_->orders_applied() + 1);
              } else {
                summary_->set_orders_stale(summary_->orders_stale() + 1);
              }
              summary_->set_queued(summary_->queued() + r->queued());
              done(absl::OkStatus());
            });
        return;
      case v1::PublishStreamRequest::kBatch:
      case v1::PublishStreamRequest::KIND_NOT_SET:
        break;
    }
    done(absl::InvalidArgumentError(
        absl::StrCat(Where(), ": empty request: set publish, order or batch")));
  }

  // "channel: …" -> "requests[3].publish.channel: …", so the caller knows which request failed.
  static absl::Status Prefixed(const std::string& where, absl::string_view kind,
                               const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat(where, ".", kind, ".", st.message()));
  }

  core::ApiExecutor* const api_;
  v1::PublishStreamSummary* const summary_;
  v1::PublishStreamRequest request_;
  uint64_t index_ = 0;  // of request_ in the stream
  int item_ = 0;        // of the publication being applied in request_
  absl::Status item_status_;
  std::atomic<int> handoff_{0};
};

}  // namespace

BrokerService::BrokerService(core::ApiExecutor* api, std::string api_key, ApiMetrics* metrics)
    : api_(api), api_key_(std::move(api_key)), metrics_(metrics) {}

absl::Status BrokerService::Authorize(grpc::CallbackServerContext* ctx) const {
  absl::string_view authorization;
  const auto& metadata = ctx->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return CheckApiKey(authorization, api_key_);
}

grpc::ServerUnaryReactor* BrokerService::Handle(grpc::CallbackServerContext* ctx,
                                                const char* method,
                                                const google::protobuf::Message& request,
                                                google::protobuf::Message* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const UnaryMethod& unary = *FindUnaryMethod(method);
  UnaryDone done = [reactor](absl::Status st) { reactor->Finish(ToGrpcStatus(st)); };
  if (metrics_ != nullptr)
    done = metrics_->Track(unary, ApiMetrics::Transport::kGrpc, std::move(done));
  if (absl::Status st = Authorize(ctx); !st.ok()) {
    done(std::move(st));
    return reactor;
  }
  // Most methods finish before `call` returns; a publish waiting for an ack finishes from the
  // thread that ends the wait. gRPC keeps `response` (and the reactor) until Finish.
  unary.call(*api_, request, response, std::move(done));
  return reactor;
}

namespace {

// Streams one watcher's events to a WatchEvents caller, one write at a time; deletes itself
// when the call is done. The node calls `on_ready` from any thread, possibly after the call has
// ended, so the write state lives in a shared State (under its mutex, with `self` cleared in
// OnDone); StartWrite is called under that mutex, which only queues the write.
class EventStream final : public grpc::ServerWriteReactor<v1::Event> {
 public:
  EventStream(core::ApiExecutor* api, const v1::WatchEventsRequest& request)
      : api_(api), state_(std::make_shared<State>()) {
    state_->self = this;
    auto watcher = api_->Watch(
        request, [state = state_] { Pump(*state); },
        [state = state_] {
          core::MutexLock lock(&state->mu);
          state->attached = true;
          StartIfReady(*state);
        });
    if (!watcher.ok()) {
      {
        core::MutexLock lock(&state_->mu);
        state_->finished = true;
      }
      HandOff(this);
      Finish(ToGrpcStatus(watcher.status()));
      return;
    }
    // Headers go out once the watcher gets every node's events (at once with one node), so a
    // client that has them knows it is attached, before the first event.
    core::MutexLock lock(&state_->mu);
    state_->watcher = *std::move(watcher);
    StartIfReady(*state_);
  }

  void OnSendInitialMetadataDone(bool ok) override {
    TakeOver(this);
    if (!ok) return Stop(grpc::Status::CANCELLED);
    Pump(*state_);
  }

  void OnWriteDone(bool ok) override {
    TakeOver(this);
    {
      core::MutexLock lock(&state_->mu);
      state_->writing = false;
    }
    if (!ok) return Stop(grpc::Status::CANCELLED);
    Pump(*state_);
  }

  void OnCancel() override {
    TakeOver(this);
    Stop(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    TakeOver(this);
    {
      core::MutexLock lock(&state_->mu);
      state_->self = nullptr;
    }
    Detach();
    delete this;
  }

 private:
  struct State {
    core::Mutex mu;  // core::Mutex: visible to TSan (server/core/mutex.h)
    EventStream* self ABSL_GUARDED_BY(mu) = nullptr;
    std::shared_ptr<core::EventWatcher> watcher ABSL_GUARDED_BY(mu);
    bool writing ABSL_GUARDED_BY(mu) = false;
    bool finished ABSL_GUARDED_BY(mu) = false;
    bool attached ABSL_GUARDED_BY(mu) = false;  // the watcher gets every node's events
    bool started ABSL_GUARDED_BY(mu) = false;   // initial metadata sent
    v1::Event current;
  };

  // Sends the initial metadata once the watcher is stored and attached everywhere, unless the
  // call ended meanwhile.
  static void StartIfReady(State& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
    if (state.started || !state.attached || state.watcher == nullptr || state.self == nullptr ||
        state.finished) {
      return;
    }
    state.started = true;
    HandOff(state.self);
    state.self->StartSendInitialMetadata();
  }

  static void Pump(State& state) {
    core::MutexLock lock(&state.mu);
    if (state.self == nullptr || !state.started || state.writing || state.finished ||
        state.watcher == nullptr) {
      return;
    }
    std::optional<v1::Event> next = state.watcher->Pop();
    if (!next.has_value()) return;
    state.current = *std::move(next);
    state.writing = true;
    HandOff(state.self);
    state.self->StartWrite(&state.current);
  }

  void Stop(const grpc::Status& status) {
    {
      core::MutexLock lock(&state_->mu);
      if (state_->finished) return;
      state_->finished = true;
    }
    Detach();
    HandOff(this);
    Finish(status);
  }

  void Detach() {
    std::shared_ptr<core::EventWatcher> watcher;
    {
      core::MutexLock lock(&state_->mu);
      watcher = std::move(state_->watcher);
    }
    if (watcher != nullptr) api_->Unwatch(watcher.get());
  }

  core::ApiExecutor* const api_;
  const std::shared_ptr<State> state_;
};

// A stream that fails at once (bad key or request).
class FailedStream final : public grpc::ServerWriteReactor<v1::Event> {
 public:
  explicit FailedStream(const grpc::Status& status) {
    HandOff(this);
    Finish(status);
  }
  void OnDone() override {
    TakeOver(this);
    delete this;
  }
};

}  // namespace

grpc::ServerWriteReactor<v1::Event>* BrokerService::WatchEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* request) {
  if (absl::Status st = Authorize(ctx); !st.ok()) return new FailedStream(ToGrpcStatus(st));
  return new EventStream(api_, *request);
}

grpc::ServerReadReactor<v1::PublishStreamRequest>* BrokerService::PublishStream(
    grpc::CallbackServerContext* ctx, v1::PublishStreamSummary* summary) {
  return new PublishStreamReactor(api_, summary, Authorize(ctx));
}

RpcServer::RpcServer(core::ApiExecutor* api, std::string api_key, ApiMetrics* metrics)
    : service_(api, std::move(api_key), metrics) {}

RpcServer::~RpcServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

absl::StatusOr<int> RpcServer::Start(const std::string& address, const RpcTls& tls) {
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!tls.cert_file.empty()) {
    using grpc::experimental::FileWatcherCertificateProvider;
    // gRPC's defaults are modern: TLS 1.2 and 1.3, ECDHE with AEAD ciphers.
    auto provider = tls.client_ca_file.empty()
                        ? std::make_shared<FileWatcherCertificateProvider>(
                              tls.key_file, tls.cert_file, kTlsRefreshSeconds)
                        : std::make_shared<FileWatcherCertificateProvider>(
                              tls.key_file, tls.cert_file, tls.client_ca_file, kTlsRefreshSeconds);
    grpc::experimental::TlsServerCredentialsOptions options(provider);
    options.watch_identity_key_cert_pairs();
    if (tls.client_ca_file.empty()) {
      options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    } else {
      options.watch_root_certs();
      options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    }
    credentials = grpc::experimental::TlsServerCredentials(options);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  // gRPC sets SO_REUSEPORT by default, which would let a second herald share a busy port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, credentials, &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " (address in use or invalid)"));
  }
  // Health answers for the service's own name too (a load balancer configured with it), not
  // only for "": SetServingStatus(bool) then moves both.
  server_->GetHealthCheckService()->SetServingStatus(v1::Broker::service_full_name(), true);
  return port;
}

void RpcServer::BeginDrain() {
  draining_ = true;
  if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus(false);
}

void RpcServer::SetServing(bool serving) {
  if (server_ != nullptr && !draining_) {
    server_->GetHealthCheckService()->SetServingStatus(serving);
  }
}

void RpcServer::Shutdown(absl::Duration deadline) {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + deadline));
  server_->Wait();
  server_.reset();
}

}  // namespace herald::rpc
