#include "server/json/json_value.h"

#include <string>

namespace herald::json {

namespace pb = google::protobuf;

void ToValue(const rapidjson::Value& in, pb::Value* out) {
  if (in.IsNull()) {
    out->set_null_value(pb::NULL_VALUE);
  } else if (in.IsBool()) {
    out->set_bool_value(in.GetBool());
  } else if (in.IsNumber()) {
    out->set_number_value(in.GetDouble());
  } else if (in.IsString()) {
    out->set_string_value(std::string(in.GetString(), in.GetStringLength()));
  } else if (in.IsArray()) {
    pb::ListValue* list = out->mutable_list_value();
    list->mutable_values()->Reserve(static_cast<int>(in.Size()));
    for (const rapidjson::Value& item : in.GetArray()) ToValue(item, list->add_values());
  } else {
    pb::Struct* object = out->mutable_struct_value();
    for (const auto& m : in.GetObject()) {
      ToValue(
          m.value,
          &(*object->mutable_fields())[std::string(m.name.GetString(), m.name.GetStringLength())]);
    }
  }
}

}  // namespace herald::json
