#include "server/core/order_json.h"

#include <cstdint>
#include <string>

#include "server/core/json_writer.h"

namespace herald::core {
namespace {

using json_writer::Int64;
using json_writer::String;
using json_writer::Writer;

void Money(Writer& w, const char* name, const v1::Money& money) {
  w.Key(name);
  w.StartObject();
  Int64(w, "minorUnits", money.minor_units());
  String(w, "currency", money.currency());
  w.EndObject();
}

}  // namespace

std::string OrderJson(const v1::Order& order) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  String(w, "id", order.id());
  Int64(w, "version", order.version());
  if (order.status() != 0) {
    w.Key("status");
    if (v1::OrderStatus_IsValid(order.status())) {
      w.String(v1::OrderStatus_Name(order.status()).c_str());
    } else {
      w.Int(order.status());  // a value this build does not know: protobuf prints the number
    }
  }
  String(w, "storeId", order.store_id());
  String(w, "customerId", order.customer_id());
  if (order.items_size() > 0) {
    w.Key("items");
    w.StartArray();
    for (const v1::OrderItem& item : order.items()) {
      w.StartObject();
      String(w, "sku", item.sku());
      String(w, "name", item.name());
      json_writer::Uint32(w, "quantity", item.quantity());
      if (item.has_unit_price()) Money(w, "unitPrice", item.unit_price());
      w.EndObject();
    }
    w.EndArray();
  }
  if (order.has_total()) Money(w, "total", order.total());
  Int64(w, "createdAtMs", order.created_at_ms());
  Int64(w, "updatedAtMs", order.updated_at_ms());
  if (!order.attributes().empty()) {
    w.Key("attributes");
    w.StartObject();
    for (const auto& [key, value] : order.attributes()) {
      w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    }
    w.EndObject();
  }
  w.EndObject();
  return json_writer::Text(buffer);
}

}  // namespace herald::core
