#ifndef HERALD_SERVER_CORE_VALUE_JSON_H_
#define HERALD_SERVER_CORE_VALUE_JSON_H_

#include <optional>
#include <string>

#include "google/protobuf/struct.pb.h"

namespace herald::core {

// The JSON of a google.protobuf.Value (a publication's `data` given as a Value over gRPC), as
// protobuf's JSON mapping reads it back: written with RapidJSON's writer instead of protobuf's
// reflection printer, which serialises to binary and re-reads it (a seventh of a unary
// Publish's CPU). Integral numbers print without a fraction, others in their shortest
// round-trip form. Returns nullopt for what protobuf's printer refuses (a NaN or infinite
// number, a Value with no kind): the caller then asks protobuf for its error.
// tests/unit/core/value_json_test.cc holds it equal to protobuf's output. Pure function.
std::optional<std::string> ValueJson(const google::protobuf::Value& value);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_VALUE_JSON_H_
