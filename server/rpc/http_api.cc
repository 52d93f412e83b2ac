#include "server/rpc/http_api.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/message.h"
#include "herald/v1/client.pb.h"
#include "server/core/connection_quota.h"
#include "server/core/protocol.h"
#include "server/json/json_check.h"
#include "server/rpc/methods.h"
#include "server/rpc/publish_json.h"

namespace herald::rpc {
namespace {

namespace pb = google::protobuf;

constexpr absl::string_view kJson = "application/json";

HttpReply ErrorReply(int http_status, const absl::Status& status) {
  HttpReply reply;
  reply.status = http_status;
  reply.code = status.code();
  reply.headers.emplace_back("Content-Type", kJson);
  reply.body = HttpErrorBody(status);
  return reply;
}

HttpReply ErrorReply(const absl::Status& status) {
  HttpReply reply = ErrorReply(HttpStatusFromCode(status.code()), status);
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return reply;
}

std::string MethodNames() {
  return absl::StrJoin(UnaryMethods(), ", ", [](std::string* out, const UnaryMethod& m) {
    out->append(m.descriptor->name());
  });
}

// Accepts "application/json", optionally with "charset=utf-8" (any case, quoted or not) and
// other parameters. An empty body may come without a Content-Type (`curl -X POST`).
absl::Status CheckContentType(absl::string_view content_type, bool body_empty) {
  if (content_type.empty()) {
    if (body_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(
        "content-type: missing; send 'Content-Type: application/json'");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(content_type, ';');
  absl::string_view media = absl::StripAsciiWhitespace(parts[0]);
  if (!absl::EqualsIgnoreCase(media, kJson)) {
    return absl::InvalidArgumentError(
        absl::StrCat("content-type: expected application/json, got '", content_type, "'"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(parts[i], '=');
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(kv.first), "charset")) continue;
    absl::string_view charset = absl::StripAsciiWhitespace(kv.second);
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
      charset = charset.substr(1, charset.size() - 2);
    }
    if (!absl::EqualsIgnoreCase(charset, "utf-8")) {
      return absl::InvalidArgumentError(
          absl::StrCat("content-type: charset must be utf-8, got '", charset, "'"));
    }
  }
  return absl::OkStatus();
}

// "PublishOrder" for "/api/v1/PublishOrder".
absl::string_view MethodName(absl::string_view path) {
  absl::ConsumePrefix(&path, HttpApi::kPathPrefix);
  return path;
}

// A request whose data may come as JSON text (`data_json` beside the google.protobuf.Value
// `data`): the `data` member of `body` is handed on as that text, as the client sent it, and
// only the rest of the body goes through protobuf's JSON parser. So a publication's data is
// read once (by the bounding pass every body gets anyway) and copied once, where building the
// Value tree and printing it again cost two more passes and an allocation per node.
absl::Status ParseBody(absl::string_view body, pb::Message* in, const core::Limits& limits) {
  const size_t max_depth = limits.max_json_depth;
  const pb::Descriptor* type = in->GetDescriptor();
  const pb::FieldDescriptor* data = type->FindFieldByName("data");
  const pb::FieldDescriptor* data_json = type->FindFieldByName("data_json");
  if (data == nullptr || data_json == nullptr ||
      data_json->type() != pb::FieldDescriptor::TYPE_STRING) {
    return core::FromJson(body, in, max_depth);
  }
  json::JsonTopLevel top;
  if (absl::Status st = json::CheckJson(body, max_depth, &top); !st.ok()) return st;
  // Only a plain {"data": …} with neither a second "data" nor a "dataJson"/"data_json" beside it;
  // anything else goes the general way, which reports what is wrong with it.
  std::optional<size_t> found;
  for (size_t i = 0; i < top.keys.size(); ++i) {
    const std::string& key = top.keys[i];
    if (key == "dataJson" || key == "data_json") return core::FromCheckedJson(body, in);
    if (key != "data") continue;
    if (found.has_value()) return core::FromCheckedJson(body, in);
    found = i;
  }
  if (!found.has_value()) return core::FromCheckedJson(body, in);
  const auto [begin, end] = top.value_spans[*found];
  // Too large to publish: the general way refuses it as "data: larger than …", as documented.
  if (end - begin > limits.max_publication_bytes) return core::FromCheckedJson(body, in);
  if (type == v1::PublishRequest::descriptor() &&
      ReadPlainPublish(body, top, static_cast<v1::PublishRequest*>(in))) {
    return absl::OkStatus();
  }
  // The rest of the body with `null` in place of the data: protobuf checks every other field
  // (unknown names, types) exactly as before.
  std::string rest;
  rest.reserve(body.size() - (end - begin) + 4);
  absl::StrAppend(&rest, body.substr(0, begin), "null", body.substr(end));
  if (absl::Status st = core::FromCheckedJson(rest, in); !st.ok()) return st;
  const pb::Reflection* reflection = in->GetReflection();
  reflection->ClearField(in, data);
  reflection->SetString(in, data_json, std::string(body.substr(begin, end - begin)));
  return absl::OkStatus();
}

}  // namespace

int HttpStatusFromCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnimplemented:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;  // client closed request (nginx's convention, as grpc-gateway uses)
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    default:
      return 500;
  }
}

std::string HttpErrorBody(const absl::Status& status) {
  v1::Error error;
  error.set_code(absl::StatusCodeToString(status.code()));
  // Messages may quote request bytes (a Content-Type, a path); JSON strings must be UTF-8.
  error.set_message(json::ValidUtf8(status.message()));
  std::string json;
  // Serialising a well-formed generated message cannot fail.
  core::ToJson(error, &json).IgnoreError();
  json.push_back('\n');
  return json;
}

HttpApi::HttpApi(core::ApiExecutor* api, std::string api_key, ApiMetrics* metrics)
    : api_(api),
      api_key_(std::move(api_key)),
      rate_(std::make_unique<core::RequestRateLimiter>(api->limits().api_rate,
                                                       api->limits().api_burst)),
      metrics_(metrics) {}

bool HttpApi::Serves(absl::string_view path) { return absl::StartsWith(path, "/api/"); }

void HttpApi::Handle(const HttpApiRequest& request, HttpRespond respond) const {
  // Known after Check(); looked up first so that refused calls of a method count too.
  const UnaryMethod* method = absl::StartsWith(request.path, kPathPrefix)
                                  ? FindUnaryMethod(MethodName(request.path))
                                  : nullptr;
  if (metrics_ != nullptr && method != nullptr) {
    // Counted by the canonical code of the reply, whichever step produced it.
    UnaryDone count = metrics_->Track(*method, ApiMetrics::Transport::kHttp, [](absl::Status) {});
    respond = [count = std::move(count), respond = std::move(respond)](HttpReply reply) {
      count(absl::Status(reply.code, ""));
      respond(std::move(reply));
    };
  }
  std::optional<HttpReply> refused = Check(request);
  if (refused.has_value()) {
    respond(*std::move(refused));
    return;
  }
  pb::MessageFactory* factory = pb::MessageFactory::generated_factory();
  std::unique_ptr<pb::Message> in(factory->GetPrototype(method->descriptor->input_type())->New());
  absl::string_view body = request.body.empty() ? absl::string_view("{}") : request.body;
  if (absl::Status st = ParseBody(body, in.get(), api_->limits()); !st.ok()) {
    respond(ErrorReply(absl::InvalidArgumentError(absl::StrCat(
        "body: not a valid ", in->GetDescriptor()->full_name(), " in JSON: ", st.message()))));
    return;
  }
  // The response lives until the call is done, which for a publish waiting for an ack is after
  // Handle() has returned.
  std::shared_ptr<pb::Message> out(factory->GetPrototype(method->descriptor->output_type())->New());
  method->call(*api_, *in, out.get(), [out, respond = std::move(respond)](absl::Status status) {
    if (!status.ok()) return respond(ErrorReply(status));
    HttpReply reply;
    reply.headers.emplace_back("Content-Type", kJson);
    // Zero values are printed too, so callers in dynamic languages can read every
    // field.
    const bool plain =
        out->GetDescriptor() == v1::PublishResponse::descriptor() &&
        WritePlainPublishResponse(static_cast<const v1::PublishResponse&>(*out), &reply.body);
    if (absl::Status st =
            plain ? absl::OkStatus() : core::ToJson(*out, &reply.body, /*print_defaults=*/true);
        !st.ok()) {
      return respond(ErrorReply(st));
    }
    reply.body.push_back('\n');
    respond(std::move(reply));
  });
}

std::optional<HttpReply> HttpApi::Check(const HttpApiRequest& request) const {
  absl::string_view name = request.path;
  if (!absl::ConsumePrefix(&name, kPathPrefix)) {
    return ErrorReply(absl::NotFoundError(
        absl::StrCat("path: the control API is served at POST ", kPathPrefix, "<Method>")));
  }
  // Like gRPC, an unknown method is reported before the API key is looked at.
  if (FindUnaryMethod(name) == nullptr) {
    return ErrorReply(absl::UnimplementedError(absl::StrCat(
        "method: herald.v1.Broker has no unary method '", name, "'; one of ", MethodNames())));
  }
  if (request.method != "POST") {
    HttpReply reply = ErrorReply(
        405, absl::UnimplementedError(absl::StrCat("http method: ", request.method,
                                                   " is not allowed; call POST ", request.path)));
    reply.headers.emplace_back("Allow", "POST");
    return reply;
  }
  if (absl::Status st = CheckApiKey(request.authorization, api_key_); !st.ok()) {
    return ErrorReply(st);
  }
  // After the key check, so that callers without the key cannot use up its budget. With a key,
  // every caller that has it shares one bucket; without one, each client IP has its own.
  const absl::string_view caller =
      api_key_.empty() ? core::ClientIp(request.remote_address) : absl::string_view("api-key");
  if (const absl::Duration wait = rate_->Take(caller, api_->Now()); wait > absl::ZeroDuration()) {
    api_->CountApiRateRefusal();
    const core::Limits& limits = api_->limits();
    HttpReply reply = ErrorReply(absl::ResourceExhaustedError(absl::StrFormat(
        "rate limit: more than %g requests per second (burst %g, --api-rate) %s; retry later",
        limits.api_rate, limits.api_burst,
        api_key_.empty() ? "from this address" : "per API key")));
    // Whole seconds (RFC 9110 §10.2.3), rounded up so that a retry at that time succeeds.
    reply.headers.emplace_back("Retry-After",
                               absl::StrCat(std::max<int64_t>(
                                   1, absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))))));
    return reply;
  }
  if (!request.transfer_encoding.empty()) {
    // websocketpp reads only bodies with a Content-Length.
    return ErrorReply(411, absl::InvalidArgumentError(
                               absl::StrCat("transfer-encoding: '", request.transfer_encoding,
                                            "' is not supported; send a Content-Length")));
  }
  const size_t max_body = api_->limits().max_http_body_bytes;
  if (request.body.size() > max_body) {
    // Normally refused by the transport before the body is read; checked again here so the
    // limit holds whatever transport feeds this API.
    return ErrorReply(413, absl::ResourceExhaustedError(absl::StrCat(
                               "body: ", request.body.size(), " bytes is more than the limit of ",
                               max_body, " (--max-http-body-bytes)")));
  }
  if (absl::Status st = CheckContentType(request.content_type, request.body.empty()); !st.ok()) {
    return ErrorReply(415, st);
  }
  return std::nullopt;
}

}  // namespace herald::rpc
