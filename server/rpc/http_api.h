#ifndef HERALD_SERVER_RPC_HTTP_API_H_
#define HERALD_SERVER_RPC_HTTP_API_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/api_executor.h"
#include "server/core/request_rate_limiter.h"
#include "server/rpc/api_metrics.h"

namespace herald::rpc {

// One HTTP request to the control API, independent of the transport that read it. The views
// must stay valid during HttpApi::Handle (not until its reply).
struct HttpApiRequest {
  absl::string_view method;  // HTTP method: "POST"
  absl::string_view path;    // "/api/v1/PublishOrder", without the query string
  absl::string_view content_type;
  absl::string_view authorization;
  // The request's Transfer-Encoding header; non-empty means the body could not be read.
  absl::string_view transfer_encoding;
  absl::string_view body;
  // The client's "ip:port": whose request rate counts when no API key is configured.
  absl::string_view remote_address;
};

struct HttpReply {
  int status = 200;
  // The canonical code of the reply: kOk, or the error's (what ApiMetrics counts).
  absl::StatusCode code = absl::StatusCode::kOk;
  std::vector<std::pair<std::string, std::string>> headers;  // always has Content-Type
  std::string body;                                          // JSON
};

// Gets the reply to an HttpApi::Handle call.
using HttpRespond = std::function<void(HttpReply)>;

// The HTTP/JSON form of the Broker control API: `POST /api/v1/<Method>` with the protobuf JSON
// mapping of the method's request, answered with the JSON mapping of its response. Every call
// runs the very handler gRPC runs (rpc::FindUnaryMethod), after the same API-key check; errors
// come back as {"code":"INVALID_ARGUMENT","message":"..."} with an HTTP status from
// HttpStatusFromCode. Requests over --api-rate (per API key, or per client IP without one) get
// 429 with Retry-After. With ApiMetrics, every call of a known method is counted and timed, the
// refused ones too (by the code of their error). Transport-free (ws::Endpoint feeds it through
// main.cc). Immutable after construction but for the rate limiter (thread-safe); Handle() is
// thread-safe (the API executor is) and never blocks.
class HttpApi {
 public:
  static constexpr absl::string_view kPathPrefix = "/api/v1/";

  // `api` and `metrics` (optional) must outlive this object. An empty `api_key` accepts every
  // call.
  HttpApi(core::ApiExecutor* api, std::string api_key, ApiMetrics* metrics = nullptr);

  // True for paths this API answers (everything under "/api/"), even unknown methods.
  static bool Serves(absl::string_view path);
  // Runs the call and calls `respond` exactly once with its reply: before returning, or, for a
  // publish waiting for an ack, later from the thread that ends the wait (never under a lock).
  void Handle(const HttpApiRequest& request, HttpRespond respond) const;

 private:
  // The reply refusing a request before it is parsed (path, method, key, body framing), or
  // nullopt for a request to run.
  std::optional<HttpReply> Check(const HttpApiRequest& request) const;

  core::ApiExecutor* const api_;
  const std::string api_key_;
  // Buckets by API key (one: the configured key) or by client IP (no key configured).
  const std::unique_ptr<core::RequestRateLimiter> rate_;
  ApiMetrics* const metrics_;
};

// The HTTP status a canonical error code is served with (docs/api.md, "HTTP status codes").
int HttpStatusFromCode(absl::StatusCode code);

// {"code":"NOT_FOUND","message":"..."} for a non-OK status.
std::string HttpErrorBody(const absl::Status& status);

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HTTP_API_H_
