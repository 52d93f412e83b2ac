#include "server/core/value_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "server/core/json_writer.h"

namespace herald::core {
namespace {

namespace pb = google::protobuf;
using json_writer::Writer;

bool Write(Writer& w, const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kNullValue:
      return w.Null();
    case pb::Value::kBoolValue:
      return w.Bool(v.bool_value());
    case pb::Value::kStringValue:
      return w.String(v.string_value().data(),
                      static_cast<rapidjson::SizeType>(v.string_value().size()));
    case pb::Value::kNumberValue: {
      const double d = v.number_value();
      if (!std::isfinite(d)) return false;
      // Integral values as integers (protobuf prints 3, not 3.0), exactly representable ones only.
      if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
        return w.Int64(static_cast<int64_t>(d));
      }
      // The shortest form that reads back as the same double (std::to_chars; RapidJSON's Grisu2
      // is not always the shortest: 0.1 + 0.2 came out as 0.30000000000000007).
      char digits[32];
      const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, d);
      return ec == std::errc() &&
             w.RawValue(digits, static_cast<size_t>(end - digits), rapidjson::kNumberType);
    }
    case pb::Value::kStructValue: {
      w.StartObject();
      for (const auto& [key, field] : v.struct_value().fields()) {
        w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        if (!Write(w, field)) return false;
      }
      return w.EndObject();
    }
    case pb::Value::kListValue: {
      w.StartArray();
      for (const pb::Value& item : v.list_value().values()) {
        if (!Write(w, item)) return false;
      }
      return w.EndArray();
    }
    case pb::Value::KIND_NOT_SET:
      break;
  }
  return false;
}

}  // namespace

std::optional<std::string> ValueJson(const pb::Value& value) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  if (!Write(w, value)) return std::nullopt;
  return json_writer::Text(buffer);
}

}  // namespace herald::core
