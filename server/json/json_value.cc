#include "server/json/json_value.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"

namespace herald::json {

namespace pb = google::protobuf;

absl::Status ToValue(const rapidjson::Value& in, pb::Value* out) {
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
    for (const rapidjson::Value& item : in.GetArray()) {
      if (absl::Status st = ToValue(item, list->add_values()); !st.ok()) return st;
    }
  } else {
    auto& fields = *out->mutable_struct_value()->mutable_fields();
    for (const auto& m : in.GetObject()) {
      auto [it, added] =
          fields.try_emplace(std::string(m.name.GetString(), m.name.GetStringLength()));
      if (!added) {
        return absl::InvalidArgumentError(
            absl::StrCat("Repeated map key: '", it->first, "' is already set."));
      }
      if (absl::Status st = ToValue(m.value, &it->second); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ParseValue(absl::string_view json, pb::Value* out) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat(rapidjson::GetParseError_En(doc.GetParseError()),
                                                   " at byte ", doc.GetErrorOffset()));
  }
  return ToValue(doc, out);
}

}  // namespace herald::json
