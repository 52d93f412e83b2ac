#ifndef HERALD_SERVER_JSON_JSON_VALUE_H_
#define HERALD_SERVER_JSON_JSON_VALUE_H_

#include <google/protobuf/struct.pb.h>

#include "rapidjson/document.h"

namespace herald::json {

// `in` as a google.protobuf.Value, as protobuf's JSON mapping reads it (numbers as doubles; a
// repeated object key: the last one). Recursive: `in` must be bounded in depth (CheckJson).
void ToValue(const rapidjson::Value& in, google::protobuf::Value* out);

}  // namespace herald::json

#endif  // HERALD_SERVER_JSON_JSON_VALUE_H_
