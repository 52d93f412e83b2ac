// Fuzzes the HTTP/JSON control API request decoder: rpc::HttpApi::Handle with an arbitrary
// method, path, headers and body, against a real hub with two connections (one subscribed to
// store:42) — so every Broker method runs on whatever the body decodes to.
//
// Input, like an HTTP/1.1 request without the version: a first line "METHOD PATH", then header
// lines "Name: value" (Content-Type, Authorization and Transfer-Encoding are used; any case)
// up to an empty line, then the body. The API key is kApiKey.
// Invariants: no crash/leak/UB (sanitizers); `respond` is called exactly once (ack waits are
// ended after the call), with a JSON body and a Content-Type header.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/core/hub.h"
#include "server/engine/memory_engine.h"
#include "server/json/json_check.h"
#include "server/rpc/http_api.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/test_hub.h"

namespace herald::fuzz {
namespace {

constexpr absl::string_view kApiKey = "fuzz-key";

// Splits off the first line of `*rest` (without its '\n', and a '\r' before it).
absl::string_view NextLine(absl::string_view* rest) {
  const size_t nl = rest->find('\n');
  absl::string_view line = rest->substr(0, nl);
  rest->remove_prefix(nl == absl::string_view::npos ? rest->size() : nl + 1);
  absl::ConsumeSuffix(&line, "\r");
  return line;
}

void Run(absl::string_view input) {
  rpc::HttpApiRequest request;
  absl::string_view first = NextLine(&input);
  const size_t space = first.find(' ');
  request.method = first.substr(0, space);
  request.path = space == absl::string_view::npos ? "" : first.substr(space + 1);
  while (!input.empty()) {
    absl::string_view line = NextLine(&input);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view name = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "content-type")) request.content_type = value;
    if (absl::EqualsIgnoreCase(name, "authorization")) request.authorization = value;
    if (absl::EqualsIgnoreCase(name, "transfer-encoding")) request.transfer_encoding = value;
  }
  request.body = input;

  core::Limits limits;
  limits.max_http_body_bytes = 64 * 1024;
  engine::MemoryEngine engine(limits, FuzzNow);
  StringFrameFactory frames;
  testing::TestHub hub(limits, "n1", &engine, &frames, nullptr, FuzzNow);
  // Connection ids n1-00000001 (anonymous, on store:42) and n1-00000002 (user u1).
  auto a = std::make_shared<FuzzSession>(hub.NextConnectionId(), "");
  auto b = std::make_shared<FuzzSession>(hub.NextConnectionId(), "u1");
  if (!hub.Register(a).ok() || !hub.Register(b).ok()) Fail("Register failed");
  hub.OnClientFrame(a, R"({"id":1,"subscribe":{"channel":"store:42"}})");
  hub.OnClientFrame(b, R"({"id":1,"join":{"queue":"couriers"}})");

  rpc::HttpApi api(&hub.api(), std::string(kApiKey));
  int replies = 0;
  rpc::HttpReply reply;
  api.Handle(request, [&](rpc::HttpReply r) {
    ++replies;
    reply = std::move(r);
  });
  hub.Tick();
  hub.EndAckWaits();  // a publish waiting for an ack replies now
  Check(replies == 1, absl::StrCat("HttpApi::Handle replied ", replies, " times"));
  bool has_content_type = false;
  for (const auto& [name, value] : reply.headers) has_content_type |= name == "Content-Type";
  Check(has_content_type, "reply without Content-Type");
  absl::Status json = json::CheckJson(reply.body, 64);
  Check(json.ok(), absl::StrCat("reply body is not JSON: ", json.message(), ": ", reply.body));
  Check(reply.status >= 200 && reply.status < 600, absl::StrCat("HTTP status ", reply.status));

  hub.Unregister(*a, 1000, "fuzz");
  hub.Unregister(*b, 1000, "fuzz");
  CheckServerFrames(*a);
  CheckServerFrames(*b);
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  herald::fuzz::Run(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
