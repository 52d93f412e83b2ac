// The HTTP/JSON control API (/api/v1/<Method>) against the real herald: parity with gRPC for
// every unary Broker method, and the documented status and body for every class of bad input.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/rpc/http_api.h"
#include "server/rpc/methods.h"
#include "tests/support/herald_process.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

namespace pb = google::protobuf;
using ::testing::HasSubstr;

constexpr char kApiKey[] = "http-test-key";

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor* type) {
  return std::unique_ptr<pb::Message>(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

std::string ToJson(const pb::Message& m) {
  std::string out;
  EXPECT_TRUE(pb::util::MessageToJsonString(m, &out).ok());
  return out;
}

// Clears, recursively, the fields whose values legitimately differ between two herald processes
// (or two moments) given the same requests: timing, ephemeral ports, random channel epochs, and
// bytes not yet written to a socket.
void ClearVolatileFields(pb::Message* m) {
  static const auto* volatile_fields =
      new absl::flat_hash_set<std::string>{"uptime_ms",
                                           "connected_at_ms",
                                           "remote_address",
                                           "epoch",
                                           "send_buffer_bytes",
                                           "published_at_ms",
                                           "deadline_ms",
                                           "joined_at_ms",
                                           "task_id"};  // task ids start at the node's start time
                                                        // (protocol.md, Tasks)
  const pb::Reflection* r = m->GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (volatile_fields->contains(f->name())) {
      r->ClearField(m, f);
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          ClearVolatileFields(r->MutableRepeatedMessage(m, f, i));
        }
      } else {
        ClearVolatileFields(r->MutableMessage(m, f));
      }
    }
  }
}

// A call's outcome on either transport: canonical code name, message, and the reply.
struct CallOutcome {
  std::string code;
  std::string message;
  std::unique_ptr<pb::Message> reply;
};

CallOutcome CallGrpc(const HeraldProcess& herald, const rpc::UnaryMethod& method,
                     const std::string& request_json) {
  std::unique_ptr<pb::Message> request = NewMessage(method.descriptor->input_type());
  EXPECT_TRUE(pb::util::JsonStringToMessage(request_json, request.get()).ok()) << request_json;
  CallOutcome out;
  out.reply = NewMessage(method.descriptor->output_type());
  grpc::TemplatedGenericStub<pb::Message, pb::Message> stub(herald.Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(
      &ctx,
      absl::StrCat("/", method.descriptor->service()->full_name(), "/", method.descriptor->name()),
      grpc::StubOptions(), request.get(), out.reply.get(), [&](grpc::Status s) {
        status = std::move(s);
        done.Notify();
      });
  done.WaitForNotification();
  out.code = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
  out.message = status.error_message();
  return out;
}

CallOutcome CallHttp(const HeraldProcess& herald, const rpc::UnaryMethod& method,
                     const std::string& request_json) {
  HttpResult http =
      PostJson(herald.ws_address(), absl::StrCat("/api/v1/", method.descriptor->name()),
               request_json, kApiKey);
  EXPECT_EQ(http.error, "");
  EXPECT_THAT(http.header("Content-Type"), HasSubstr("application/json"));
  CallOutcome out;
  out.reply = NewMessage(method.descriptor->output_type());
  if (http.status == 200) {
    out.code = "OK";
    EXPECT_TRUE(pb::util::JsonStringToMessage(http.body, out.reply.get()).ok()) << http.body;
  } else {
    v1::Error error;
    EXPECT_TRUE(pb::util::JsonStringToMessage(http.body, &error).ok()) << http.body;
    out.code = error.code();
    out.message = error.message();
    absl::StatusCode code = absl::StatusCode::kUnknown;
    for (int c = 0; c <= 16; ++c) {
      if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == error.code()) {
        code = static_cast<absl::StatusCode>(c);
      }
    }
    EXPECT_EQ(http.status, rpc::HttpStatusFromCode(code)) << http.body;
  }
  return out;
}

// What the WebSocket clients saw after a call: each client's frames (epochs cleared), and how
// it was closed (0: still open).
struct Effect {
  std::vector<std::vector<v1::ServerFrame>> frames;
  std::vector<int> close_codes;
  std::vector<std::string> close_reasons;
};

// Frame by frame, as messages: JSON text would differ in the order of google.protobuf.Struct
// keys, which the JSON printer does not keep.
bool SameFrames(const std::vector<std::vector<v1::ServerFrame>>& a,
                const std::vector<std::vector<v1::ServerFrame>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (size_t j = 0; j < a[i].size(); ++j) {
      if (!pb::util::MessageDifferencer::Equals(a[i][j], b[i][j])) return false;
    }
  }
  return true;
}

std::string Describe(const std::vector<std::vector<v1::ServerFrame>>& frames) {
  std::string out;
  for (size_t i = 0; i < frames.size(); ++i) {
    for (const v1::ServerFrame& f : frames[i])
      absl::StrAppend(&out, "  client ", i + 1, ": ", ToJson(f), "\n");
  }
  return out;
}

// Two connections with deterministic ids (--node parity): parity-00000001 subscribed to
// orders, store:42 and news; parity-00000002 subscribed to news.
class World {
 public:
  World() : herald_({"--node", "parity", "--api-key", kApiKey, "--presence-prefixes", "news"}) {
    if (!herald_.ok()) return;
    EXPECT_TRUE(clients_[0].Connect(herald_.ws_url()));
    EXPECT_TRUE(clients_[1].Connect(herald_.ws_url()));
    EXPECT_EQ(clients_[0].connection_id(), "parity-00000001");
    EXPECT_EQ(clients_[1].connection_id(), "parity-00000002");
    EXPECT_TRUE(clients_[0].Subscribe("orders", 1));
    EXPECT_TRUE(clients_[0].Subscribe("store:42", 2));
    EXPECT_TRUE(clients_[0].Subscribe("news", 3));
    EXPECT_TRUE(clients_[1].Subscribe("news", 1));
    for (int i = 0; i < 2; ++i) seen_[i] = clients_[i].Frames().size();
  }

  const HeraldProcess& herald() const { return herald_; }
  // Waits (bounded) until client `i` has at least `n` frames since construction.
  bool WaitForFrames(int i, size_t n) {
    return WaitFor([&] { return clients_[i].Frames().size() >= seen_[i] + n; });
  }

  // Frames since construction, once every client has either closed or answered a ping: a reply
  // is queued after everything the call queued before it.
  Effect CollectEffect() {
    Effect effect;
    for (int i = 0; i < 2; ++i) {
      WsClient& c = clients_[i];
      if (c.open()) c.Send(R"({"id":100,"ping":{}})");
      EXPECT_TRUE(WaitFor([&c] {
        if (!c.open()) return true;
        for (const v1::ServerFrame& f : c.Frames()) {
          if (f.id() == 100 && f.has_pong()) return true;
        }
        return false;
      }));
      std::vector<v1::ServerFrame> frames = c.Frames();
      frames.erase(frames.begin(), frames.begin() + seen_[i]);
      for (v1::ServerFrame& f : frames) ClearVolatileFields(&f);
      effect.frames.push_back(std::move(frames));
      effect.close_codes.push_back(c.close_code());
      effect.close_reasons.push_back(c.close_reason());
    }
    return effect;
  }

  // The connection table after the call (once the server has dropped the connections the
  // clients saw closed), read over gRPC the same way in both worlds.
  std::string TableAfter() {
    auto stub = herald_.Stub();
    uint32_t open = 0;
    for (const WsClient& c : clients_) open += c.open() ? 1 : 0;
    v1::ListConnectionsResponse list;
    EXPECT_TRUE(WaitFor([&] {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
      list.Clear();
      return stub->ListConnections(&ctx, v1::ListConnectionsRequest(), &list).ok() &&
             list.total() == open;
    })) << list.ShortDebugString();
    ClearVolatileFields(&list);
    return ToJson(list);
  }

 private:
  HeraldProcess herald_;
  WsClient clients_[2];
  size_t seen_[2] = {0, 0};
};

// One request per unary Broker method, chosen to have a visible effect on the World above. A
// new method without an entry here fails ParityTest until one is added.
const std::map<std::string, std::string>& ParityRequests() {
  static const auto* requests = new std::map<std::string, std::string>{
      {"PublishOrder",
       R"({"order":{"id":"o-9","version":"2","status":"ORDER_STATUS_READY","storeId":"42",
           "customerId":"c-1","items":[{"sku":"s","name":"Soup","quantity":2,
           "unitPrice":{"minorUnits":"600","currency":"EUR"}}],
           "total":{"minorUnits":"1200","currency":"EUR"}}})"},
      {"Publish", R"({"channel":"news","data":{"text":"hello","n":[1,2.5,null,true]}})"},
      {"Broadcast", R"({"channels":["news","store:42","nobody"],"data":"same for all"})"},
      {"SendToUser", R"({"user":"u-1","data":{"x":1}})"},
      {"SendToConnection", R"({"connection_id":"parity-00000002","data":{"x":1}})"},
      {"ListConnections", R"({"channel":"news","pageSize":1})"},
      {"GetConnection", R"({"connectionId":"parity-00000001"})"},
      {"Disconnect", R"({"connectionId":"parity-00000002","code":4001,"reason":"bye"})"},
      {"Subscribe", R"({"connectionId":"parity-00000002","channel":"store:7"})"},
      {"Unsubscribe", R"({"connectionId":"parity-00000001","channel":"news"})"},
      {"Stats", R"({})"},
      {"History", R"({"channel":"news","limit":10})"},
      {"DispatchTask", R"({"queue":"couriers","data":{"pickup":"store 42"},"ackDeadlineMs":5000})"},
      {"ListQueues", R"({})"},
      {"Presence", R"({"channel":"news"})"},
      {"PresenceStats", R"({"channel":"news"})"},
      {"Channels", R"({"prefix":"n"})"},
  };
  return *requests;
}

TEST(HttpApiParityTest, EveryUnaryMethodHasTheSameReplyAndEffectOverHttpAndGrpc) {
  const auto& requests = ParityRequests();
  EXPECT_EQ(requests.size(), rpc::UnaryMethods().size()) << "ParityRequests has stale entries";
  for (const rpc::UnaryMethod& method : rpc::UnaryMethods()) {
    const std::string& name = method.descriptor->name();
    SCOPED_TRACE(name);
    auto it = requests.find(name);
    ASSERT_NE(it, requests.end()) << "add a request for " << name << " to ParityRequests()";

    // The same request, once per transport, in two identical fresh worlds.
    World grpc_world, http_world;
    ASSERT_TRUE(grpc_world.herald().ok() && http_world.herald().ok());
    CallOutcome via_grpc = CallGrpc(grpc_world.herald(), method, it->second);
    CallOutcome via_http = CallHttp(http_world.herald(), method, it->second);

    EXPECT_EQ(via_grpc.code, "OK") << via_grpc.message;
    EXPECT_EQ(via_http.code, via_grpc.code);
    EXPECT_EQ(via_http.message, via_grpc.message);
    ClearVolatileFields(via_grpc.reply.get());
    ClearVolatileFields(via_http.reply.get());
    EXPECT_TRUE(pb::util::MessageDifferencer::Equals(*via_http.reply, *via_grpc.reply))
        << "http: " << ToJson(*via_http.reply) << "\ngrpc: " << ToJson(*via_grpc.reply);

    Effect grpc_effect = grpc_world.CollectEffect();
    Effect http_effect = http_world.CollectEffect();
    EXPECT_TRUE(SameFrames(http_effect.frames, grpc_effect.frames))
        << "http:\n"
        << Describe(http_effect.frames) << "grpc:\n"
        << Describe(grpc_effect.frames);
    EXPECT_EQ(http_effect.close_codes, grpc_effect.close_codes);
    EXPECT_EQ(http_effect.close_reasons, grpc_effect.close_reasons);
    EXPECT_EQ(http_world.TableAfter(), grpc_world.TableAfter());
  }
}

// The requests must not be no-ops, or the parity above would prove little.
TEST(HttpApiParityTest, ParityRequestsHaveVisibleEffects) {
  World world;
  ASSERT_TRUE(world.herald().ok());
  for (const char* name : {"Publish", "SendToConnection", "Subscribe"}) {
    CallOutcome out =
        CallHttp(world.herald(), *rpc::FindUnaryMethod(name), ParityRequests().at(name));
    EXPECT_EQ(out.code, "OK") << name << ": " << out.message;
  }
  // Publications and server-side subscriptions may follow the calls' replies (with --engine
  // redis they come back through Redis): wait for them before the ping that ends the collection.
  EXPECT_TRUE(world.WaitForFrames(0, 1));
  EXPECT_TRUE(world.WaitForFrames(1, 3));
  Effect effect = world.CollectEffect();
  // Client 1: the publication and a pong. Client 2: publication, push, subscribed, pong.
  ASSERT_EQ(effect.frames.size(), 2u);
  EXPECT_EQ(effect.frames[0].size(), 2u) << Describe(effect.frames);
  ASSERT_EQ(effect.frames[1].size(), 4u) << Describe(effect.frames);
  EXPECT_EQ(effect.frames[1][0].pub().channel(), "news");
  EXPECT_TRUE(effect.frames[1][1].has_push());
  EXPECT_EQ(effect.frames[1][2].subscribed().channel(), "store:7");
}

// Every method, called with an empty request on both transports: the same code and message
// (most fail validation, naming the field), and HTTP's status follows the documented table.
TEST(HttpApiParityTest, EmptyRequestsSucceedOrFailAlike) {
  World world;
  ASSERT_TRUE(world.herald().ok());
  for (const rpc::UnaryMethod& method : rpc::UnaryMethods()) {
    SCOPED_TRACE(method.descriptor->name());
    CallOutcome via_grpc = CallGrpc(world.herald(), method, "{}");
    CallOutcome via_http = CallHttp(world.herald(), method, "{}");
    EXPECT_EQ(via_http.code, via_grpc.code);
    EXPECT_EQ(via_http.message, via_grpc.message);
    if (via_grpc.code == "INVALID_ARGUMENT") {
      // Validation errors start with the bad field's name.
      absl::string_view field = via_http.message;
      field = field.substr(0, field.find(": "));
      EXPECT_TRUE(!field.empty() && field.size() < via_http.message.size() &&
                  field.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.[]0123456789") ==
                      absl::string_view::npos)
          << via_http.message;
    }
  }
}

// --- Bad input ---------------------------------------------------------------------------------

struct BadInputCase {
  std::string what;
  HttpCall call;  // url is a path here; the test prefixes the address
  int status;
  std::string code;
  std::string message_has;
  std::pair<std::string, std::string> header;  // a header the reply must carry, if any
};

HttpCall Post(const std::string& path, const std::string& body,
              std::vector<std::string> headers = {"Authorization: Bearer http-test-key"}) {
  HttpCall call;
  call.url = path;
  call.body = body;
  call.headers = std::move(headers);
  return call;
}

std::vector<BadInputCase> BadInputCases() {
  std::vector<BadInputCase> cases;
  cases.push_back({"malformed JSON", Post("/api/v1/Publish", R"({"channel": "news", )"), 400,
                   "INVALID_ARGUMENT", "body: not a valid herald.v1.PublishRequest in JSON"});
  cases.push_back({"JSON that is not an object", Post("/api/v1/Publish", "[1,2]"), 400,
                   "INVALID_ARGUMENT", "body: not a valid herald.v1.PublishRequest"});
  cases.push_back({"unknown field", Post("/api/v1/Publish", R"({"channel":"news","colour":1})"),
                   400, "INVALID_ARGUMENT", "colour"});
  cases.push_back({"wrong field type", Post("/api/v1/ListConnections", R"({"pageSize":"many"})"),
                   400, "INVALID_ARGUMENT", "page_size"});
  cases.push_back({"invalid field value",
                   Post("/api/v1/Publish", R"({"channel":"no spaces","data":1})"), 400,
                   "INVALID_ARGUMENT", "channel: "});
  cases.push_back({"missing required field", Post("/api/v1/Publish", R"({"channel":"news"})"), 400,
                   "INVALID_ARGUMENT", "data: "});
  cases.push_back({"unknown connection", Post("/api/v1/GetConnection", R"({"connectionId":"x"})"),
                   404, "NOT_FOUND", "connection_id: "});
  {
    BadInputCase c{"wrong content type", Post("/api/v1/Stats", "{}"), 415, "INVALID_ARGUMENT",
                   "content-type: expected application/json, got 'text/plain'"};
    c.call.content_type = "text/plain";
    cases.push_back(c);
  }
  {
    BadInputCase c{"wrong charset", Post("/api/v1/Stats", "{}"), 415, "INVALID_ARGUMENT",
                   "charset must be utf-8"};
    c.call.content_type = "application/json; charset=latin1";
    cases.push_back(c);
  }
  {
    BadInputCase c{"body without content type", Post("/api/v1/Stats", "{}"), 415,
                   "INVALID_ARGUMENT", "content-type: missing"};
    c.call.content_type = "";
    cases.push_back(c);
  }
  {
    BadInputCase c{"GET",
                   Post("/api/v1/Stats", ""),
                   405,
                   "UNIMPLEMENTED",
                   "GET is not allowed; call POST /api/v1/Stats",
                   {"allow", "POST"}};
    c.call.method = "GET";
    cases.push_back(c);
  }
  {
    BadInputCase c{
        "PUT", Post("/api/v1/Publish", "{}"), 405, "UNIMPLEMENTED", "PUT", {"allow", "POST"}};
    c.call.method = "PUT";
    cases.push_back(c);
  }
  cases.push_back({"unknown method", Post("/api/v1/DispatchLlama", "{}"), 404, "UNIMPLEMENTED",
                   "no unary method 'DispatchLlama'; one of PublishOrder, Publish"});
  cases.push_back({"unknown API version", Post("/api/v2/Publish", "{}"), 404, "NOT_FOUND",
                   "path: the control API is served at POST /api/v1/<Method>"});
  cases.push_back({"missing API key",
                   Post("/api/v1/Stats", "{}", {}),
                   401,
                   "UNAUTHENTICATED",
                   "authorization: missing API key",
                   {"www-authenticate", "Bearer"}});
  cases.push_back({"wrong API key", Post("/api/v1/Stats", "{}", {"Authorization: Bearer nope"}),
                   401, "UNAUTHENTICATED", "authorization: wrong API key"});
  // The scheme is case-insensitive: a lower-case "bearer" gets as far as the key.
  cases.push_back({"wrong API key, lower-case scheme",
                   Post("/api/v1/Stats", "{}", {"Authorization: bearer nope"}), 401,
                   "UNAUTHENTICATED", "authorization: wrong API key"});
  cases.push_back({"chunked body",
                   Post("/api/v1/Stats", "{}",
                        {"Authorization: Bearer http-test-key", "Transfer-Encoding: chunked",
                         "Expect: 100-continue"}),
                   411, "INVALID_ARGUMENT", "transfer-encoding: 'chunked' is not supported"});
  return cases;
}

class HttpApiBadInputTest : public ::testing::Test {
 protected:
  static constexpr size_t kMaxBody = 4096;

  void SetUp() override {
    ASSERT_TRUE(herald_.ok());
    ASSERT_TRUE(bystander_.Connect(herald_.ws_url()));
    ASSERT_TRUE(bystander_.Subscribe("news"));
  }

  // A publication made through the HTTP API after the bad input still reaches the bystander.
  void ExpectStillServing(const std::string& marker) {
    HttpResult ok =
        PostJson(herald_.ws_address(), "/api/v1/Publish",
                 absl::StrCat(R"({"channel":"news","data":")", marker, R"("})"), kApiKey);
    ASSERT_EQ(ok.status, 200) << ok.body << ok.error;
    EXPECT_THAT(ok.body, HasSubstr(R"("queued":1)"));
    v1::ServerFrame pub = bystander_.WaitFrame(
        [&](const v1::ServerFrame& f) {
          return f.has_pub() && f.pub().data().string_value() == marker;
        },
        marker);
    EXPECT_EQ(pub.pub().channel(), "news");
    EXPECT_TRUE(bystander_.open());
  }

  // One subscription per connection, so a limit is easy to reach (the bystander is at it).
  HeraldProcess herald_{{"--api-key", kApiKey, "--max-http-body-bytes", std::to_string(kMaxBody),
                         "--max-subscriptions", "1"}};
  WsClient bystander_;
};

TEST_F(HttpApiBadInputTest, EachClassGetsItsStatusAndJsonErrorAndTheServerKeepsServing) {
  for (BadInputCase& c : BadInputCases()) {
    SCOPED_TRACE(c.what);
    c.call.url = absl::StrCat("http://", herald_.ws_address(), c.call.url);
    HttpResult r = Http(c.call);
    EXPECT_EQ(r.status, c.status) << r.body << r.error;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    v1::Error error;
    ASSERT_TRUE(pb::util::JsonStringToMessage(r.body, &error).ok()) << r.body;
    EXPECT_EQ(error.code(), c.code);
    EXPECT_THAT(error.message(), HasSubstr(c.message_has));
    if (!c.header.first.empty()) EXPECT_EQ(r.header(c.header.first), c.header.second);
    ExpectStillServing(absl::StrCat("after ", c.what));
  }
  // Nothing else reached the bystander: one publication per case.
  EXPECT_EQ(bystander_.Publications().size(), BadInputCases().size());
}

TEST_F(HttpApiBadInputTest, OversizeBodyGets413BeforeItIsRead) {
  HttpCall call =
      Post("/api/v1/Publish",
           absl::StrCat(R"({"channel":"news","data":")", std::string(kMaxBody, 'x'), R"("})"),
           // A client that waits for the go-ahead never sends the body at all.
           {"Authorization: Bearer http-test-key", "Expect: 100-continue"});
  call.url = absl::StrCat("http://", herald_.ws_address(), call.url);
  HttpResult r = Http(call);
  EXPECT_EQ(r.status, 413) << r.body << r.error;
  ExpectStillServing("after 413");
  EXPECT_EQ(bystander_.Publications().size(), 1u);
}

TEST_F(HttpApiBadInputTest, BodyAtTheLimitIsAccepted) {
  const std::string prefix = R"({"channel":"news","data":")";
  std::string body = absl::StrCat(prefix, std::string(kMaxBody - prefix.size() - 2, 'y'), R"("})");
  ASSERT_EQ(body.size(), kMaxBody);
  HttpResult r = PostJson(herald_.ws_address(), "/api/v1/Publish", body, kApiKey);
  EXPECT_EQ(r.status, 200) << r.body << r.error;
  bystander_.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "publication");
}

TEST_F(HttpApiBadInputTest, AcceptsProtoFieldNamesCharsetAndEmptyBodies) {
  // proto field names as well as lowerCamelCase
  HttpResult r = PostJson(herald_.ws_address(), "/api/v1/ListConnections",
                          R"({"page_size":1,"channel":"news"})", kApiKey);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("total":1)"));
  EXPECT_THAT(r.body, HasSubstr(absl::StrCat(R"("id":")", bystander_.connection_id())));
  // charset=utf-8 in any spelling
  HttpCall call = Post(absl::StrCat("http://", herald_.ws_address(), "/api/v1/Stats"), "{}");
  call.content_type = "Application/JSON; Charset=\"UTF-8\"";
  r = Http(call);
  EXPECT_EQ(r.status, 200) << r.body;
  // Zero values are printed: callers need not test for absent fields.
  EXPECT_THAT(r.body, HasSubstr(R"("publications":"0")"));
  EXPECT_THAT(r.body, HasSubstr(R"("connections":1)"));
  // An empty body without a Content-Type is the empty request
  call.body = "";
  call.content_type = "";
  r = Http(call);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("subscriptions":"1")"));
  // The authorization scheme in any case (RFC 9110 §11.1).
  call = Post(absl::StrCat("http://", herald_.ws_address(), "/api/v1/Stats"), "{}",
              {absl::StrCat("Authorization: BEARER ", kApiKey)});
  r = Http(call);
  EXPECT_EQ(r.status, 200) << r.body;
  // One or more spaces after the scheme (RFC 9110 §11.4: 1*SP).
  call = Post(absl::StrCat("http://", herald_.ws_address(), "/api/v1/Stats"), "{}",
              {absl::StrCat("Authorization: Bearer   ", kApiKey)});
  r = Http(call);
  EXPECT_EQ(r.status, 200) << r.body;
}

// As in a client's publish frame: data whose object repeats a key is refused, never published
// (with nothing, or with one of the values).
TEST_F(HttpApiBadInputTest, DataWithARepeatedKeyIs400AndNotPublished) {
  for (const std::string body : {R"({"channel":"news","data":{"k":1,"k":2}})",
                                 R"({"channel":"news","data":{"a":[{"k":1,"x":0,"k":2}]}})",
                                 R"({"channel":"news","dataJson":"{\"k\":1,\"k\":2}"})"}) {
    SCOPED_TRACE(body);
    HttpResult r = PostJson(herald_.ws_address(), "/api/v1/Publish", body, kApiKey);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_THAT(r.body, HasSubstr(R"("code":"INVALID_ARGUMENT")"));
    EXPECT_THAT(r.body, HasSubstr(R"(data: Repeated map key: 'k' is already set.)"));
  }
  ExpectStillServing("after repeated keys");
  // The marker was the first publication the bystander got.
  std::vector<v1::ServerFrame> pubs = bystander_.Publications();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].pub().data().string_value(), "after repeated keys");
}

TEST_F(HttpApiBadInputTest, LimitReachedIs429) {
  HttpResult r = PostJson(
      herald_.ws_address(), "/api/v1/Subscribe",
      absl::StrCat(R"({"connectionId":")", bystander_.connection_id(), R"(","channel":"more"})"),
      kApiKey);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("code":"RESOURCE_EXHAUSTED")"));
  ExpectStillServing("after 429");
}

TEST_F(HttpApiBadInputTest, OtherHttpRoutesAreUnchanged) {
  HttpCall call;
  call.method = "GET";
  call.content_type = "";
  call.url = absl::StrCat("http://", herald_.ws_address(), "/healthz");
  EXPECT_EQ(Http(call).status, 200);
  call.url = absl::StrCat("http://", herald_.ws_address(), "/nothing-here");
  EXPECT_EQ(Http(call).status, 404);
}

// --- Raw JSON data
// --------------------------------------------------------------------------------

// A publication's data is carried as the client wrote it, over HTTP (`data` or `dataJson`) and
// over gRPC (`data_json`): the subscriber's frame holds the same bytes.
class HttpApiRawDataTest : public ::testing::Test {
 protected:
  static constexpr size_t kMaxPublication = 256;

  void SetUp() override {
    ASSERT_TRUE(herald_.ok());
    ASSERT_TRUE(subscriber_.Connect(herald_.ws_url()));
    ASSERT_TRUE(subscriber_.Subscribe("raw"));
  }

  // The text of the next publication frame the subscriber gets.
  std::string NextPublicationText() {
    const size_t want = ++taken_;
    std::string found;
    EXPECT_TRUE(WaitFor([&] {
      size_t n = 0;
      for (const std::string& text : subscriber_.Texts()) {
        if (absl::StartsWith(text, R"({"pub":)") && ++n == want) {
          found = text;
          return true;
        }
      }
      return false;
    })) << "publication "
        << want;
    return found;
  }

  std::string Frame(int offset, const std::string& data) {
    return absl::StrCat(R"({"pub":{"channel":"raw","offset":")", offset, R"(","data":)", data,
                        "}}");
  }

  HeraldProcess herald_{{"--api-key", kApiKey, "--max-json-depth", "8", "--max-publication-bytes",
                         std::to_string(kMaxPublication)}};
  WsClient subscriber_;
  size_t taken_ = 0;
};

// Digits a double cannot hold, key order, spacing and escapes: a google.protobuf.Value would
// change every one of them.
constexpr char kData[] = R"({"z": 12345678901234567890, "a":[1.50,"\u00e9", {}]})";

TEST_F(HttpApiRawDataTest, HttpDataReachesSubscribersByteForByte) {
  HttpResult r = PostJson(herald_.ws_address(), "/api/v1/Publish",
                          absl::StrCat(R"({"channel":"raw", "data" :  )", kData, " }"), kApiKey);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(NextPublicationText(), Frame(1, kData));
  // dataJson: the same text as a JSON string.
  std::string quoted;
  for (const char* p = kData; *p != 0; ++p) {
    if (*p == '"' || *p == '\\') quoted.push_back('\\');
    quoted.push_back(*p);
  }
  r = PostJson(herald_.ws_address(), "/api/v1/Publish",
               absl::StrCat(R"({"channel":"raw","dataJson":")", quoted, R"("})"), kApiKey);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(NextPublicationText(), Frame(2, kData));
  // Broadcast takes the same way.
  r = PostJson(herald_.ws_address(), "/api/v1/Broadcast",
               absl::StrCat(R"({"data":)", kData, R"(,"channels":["raw"]})"), kApiKey);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(NextPublicationText(), Frame(3, kData));
}

TEST_F(HttpApiRawDataTest, GrpcDataJsonReachesSubscribersByteForByte) {
  auto stub = herald_.Stub();
  v1::PublishRequest req;
  req.set_channel("raw");
  req.set_data_json(kData);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  v1::PublishResponse resp;
  grpc::Status st = stub->Publish(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(NextPublicationText(), Frame(1, kData));
  // Both forms at once, and text that is not JSON: INVALID_ARGUMENT naming the field.
  for (const char* bad : {"{\"a\":", "[[[[[[[[[1]]]]]]]]]"}) {
    grpc::ClientContext c;
    c.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
    req.set_data_json(bad);
    st = stub->Publish(&c, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("data_json: not valid JSON")) << bad;
  }
  grpc::ClientContext c;
  c.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  req.set_data_json("1");
  req.mutable_data()->set_number_value(1);
  st = stub->Publish(&c, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("data_json: set data or data_json, not both"));
}

TEST_F(HttpApiRawDataTest, BadDataGetsItsDocumentedErrorAndNothingIsPublished) {
  struct Case {
    std::string body;
    std::string message_has;
  };
  const std::string deep = std::string(9, '[') + std::string(9, ']');
  const Case cases[] = {
      {R"({"channel":"raw","data":[1,]})", "body: not a valid herald.v1.PublishRequest in JSON: "},
      {absl::StrCat(R"({"channel":"raw","data":)", deep, "}"),
       "body: not a valid herald.v1.PublishRequest in JSON: nested deeper than 8 levels"},
      {R"({"channel":"raw","dataJson":"{\"a\":"})", "data_json: not valid JSON: "},
      {absl::StrCat(R"({"channel":"raw","dataJson":")", deep, R"("})"),
       "data_json: not valid JSON: nested deeper than 8 levels"},
      {R"({"channel":"raw","data":1,"dataJson":"1"})", "data_json: set data or data_json"},
      {absl::StrCat(R"({"channel":"raw","data":")", std::string(kMaxPublication, 'x'), R"("})"),
       absl::StrCat("data: larger than ", kMaxPublication, " bytes")},
      {absl::StrCat(R"({"channel":"raw","dataJson":")", std::string(kMaxPublication + 1, '['),
                    R"("})"),
       absl::StrCat("data_json: larger than ", kMaxPublication, " bytes")},
      {R"({"channel":"raw","data":1,"colour":1})", "colour"},
      {R"({"channel":"no spaces","data":1})", "channel: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    HttpResult r = PostJson(herald_.ws_address(), "/api/v1/Publish", c.body, kApiKey);
    EXPECT_EQ(r.status, 400) << r.body;
    v1::Error error;
    ASSERT_TRUE(pb::util::JsonStringToMessage(r.body, &error).ok()) << r.body;
    EXPECT_EQ(error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(error.message(), HasSubstr(c.message_has));
  }
  // Then a good one: it is the first publication the subscriber sees.
  HttpResult r =
      PostJson(herald_.ws_address(), "/api/v1/Publish", R"({"channel":"raw","data":7})", kApiKey);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(NextPublicationText(), Frame(1, "7"));
}

}  // namespace
}  // namespace herald::testing
