#ifndef HERALD_SERVER_RPC_PUBLISH_JSON_H_
#define HERALD_SERVER_RPC_PUBLISH_JSON_H_

#include <string>

#include "absl/strings/string_view.h"
#include "herald/v1/broker.pb.h"
#include "server/json/json_check.h"

namespace herald::rpc {

// The HTTP API's most frequent call, `Publish`, read and answered without protobuf's JSON
// mapping (a type resolver, a converter stream and an allocation per node each way) for the
// plain shapes it nearly always has; every other shape returns false and takes the general way,
// so the results and the errors are the same. Pure functions.

// Reads a body that CheckJson accepted (`top` is what it noted) when it is exactly
// {"channel": <string without escapes>, "data": <any JSON>}, in either order: the channel, and
// the bytes of `data` as `data_json`. False for anything else (nothing is set then).
bool ReadPlainPublish(absl::string_view body, const json::JsonTopLevel& top,
                      v1::PublishRequest* req);

// Sets `out` to what core::ToJson(resp, out, /*print_defaults=*/true) gives, when `resp` has a
// delivery, no ack outcome, and its channel and epoch are made of [A-Za-z0-9_:.@/=-] (nothing to
// escape). False otherwise (`out` untouched).
bool WritePlainPublishResponse(const v1::PublishResponse& resp, std::string* out);

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_PUBLISH_JSON_H_
