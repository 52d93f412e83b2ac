#ifndef HERALD_SERVER_CORE_ORDER_JSON_H_
#define HERALD_SERVER_CORE_ORDER_JSON_H_

#include <string>

#include "herald/v1/order.pb.h"

namespace herald::core {

// The JSON of an order as subscribers receive it: exactly what protobuf's JSON mapping prints
// for it (lowerCamelCase names, 64-bit integers as strings, the status by name, fields at their
// default left out), written straight from the typed message with RapidJSON's writer instead of
// protobuf's reflection printer, which serialises to binary and re-reads it — half the CPU of a
// PublishOrder went there. tests/unit/core/order_json_test.cc holds it equal to protobuf's
// output. Pure function.
std::string OrderJson(const v1::Order& order);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_ORDER_JSON_H_
