#include "server/core/order_json.h"

#include <cstddef>
#include <cstdint>
#include <string>

#include "rapidjson/allocators.h"
#include "rapidjson/writer.h"
#include "server/core/json_writer.h"

namespace herald::core {
namespace {

// RapidJSON's output stream over the std::string that becomes the publication, reserved once, so
// the JSON is written where it stays (a StringBuffer would grow past its 256 bytes and then be
// copied out).
class StringOutput {
 public:
  using Ch = char;
  explicit StringOutput(std::string* out) : out_(out) {}
  void Put(char c) { out_->push_back(c); }
  void Flush() {}

 private:
  std::string* out_;
};

// The writer's stack of open objects and arrays lives in a pool on the caller's stack (an order
// nests four deep), not in two heap allocations per order.
using StackPool = rapidjson::MemoryPoolAllocator<>;
using Writer = rapidjson::Writer<StringOutput, rapidjson::UTF8<>, rapidjson::UTF8<>, StackPool>;
constexpr size_t kLevels = 8;

// Room for a typical order (one or two items) without growing.
constexpr size_t kReserve = 512;

using json_writer::Int64;
using json_writer::String;

void Money(Writer& w, const char* name, const v1::Money& money) {
  w.Key(name);
  w.StartObject();
  Int64(w, "minorUnits", money.minor_units());
  String(w, "currency", money.currency());
  w.EndObject();
}

}  // namespace

std::string OrderJson(const v1::Order& order) {
  std::string json;
  json.reserve(kReserve);
  StringOutput out(&json);
  alignas(std::max_align_t) char stack[512];
  StackPool pool(stack, sizeof(stack));
  Writer w(out, &pool, kLevels);
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
  return json;
}

}  // namespace herald::core
