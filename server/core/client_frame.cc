#include "server/core/client_frame.h"

#include <google/protobuf/struct.pb.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"
#include "server/json/json_value.h"

namespace herald::core {

namespace pb = google::protobuf;

namespace {

// The field of ClientFrame a top-level key names (its JSON or proto name), when it is a message
// with a google.protobuf.Value `data`; that `data` field in `*data`.
const pb::FieldDescriptor* KindWithData(absl::string_view key, const pb::FieldDescriptor** data) {
  const pb::Descriptor* type = v1::ClientFrame::descriptor();
  const pb::FieldDescriptor* kind = nullptr;
  for (int i = 0; i < type->field_count() && kind == nullptr; ++i) {
    const pb::FieldDescriptor* f = type->field(i);
    if (f->name() == key || f->json_name() == key) kind = f;
  }
  if (kind == nullptr || kind->message_type() == nullptr) return nullptr;
  const pb::FieldDescriptor* field = kind->message_type()->FindFieldByName("data");
  if (field == nullptr || field->message_type() != pb::Value::descriptor()) return nullptr;
  *data = field;
  return kind;
}

absl::Status TooLarge() {
  return absl::InvalidArgumentError(
      absl::StrCat("frame: larger than ", kMaxFrameBytesOutsideData, " bytes outside its data"));
}

}  // namespace

absl::Status ParseClientFrame(absl::string_view text, const json::JsonTopLevel& top,
                              v1::ClientFrame* frame, absl::string_view* data_text) {
  if (data_text != nullptr) *data_text = {};
  // The first key that is a kind whose message has a `data`, given once. Other keys (unknown
  // ones, a second kind) stay in the rest, where protobuf says what is wrong with them.
  const pb::FieldDescriptor* kind = nullptr;
  const pb::FieldDescriptor* data = nullptr;
  const json::JsonTopLevel::Data* member = nullptr;
  for (size_t i = 0; i < top.keys.size() && member == nullptr; ++i) {
    if (top.keys[i] == "id") continue;
    kind = KindWithData(top.keys[i], &data);
    if (kind != nullptr && top.data[i].count == 1) member = &top.data[i];
  }
  if (member != nullptr) {
    const auto [begin, end] = member->span;
    if (text.size() - (end - begin) > kMaxFrameBytesOutsideData) return TooLarge();
    std::string rest;
    rest.reserve(text.size() - (end - begin) + 4);
    absl::StrAppend(&rest, text.substr(0, begin), "null", text.substr(end));
    if (absl::Status st = FromCheckedJson(rest, frame); !st.ok()) return st;
    pb::Message* holder = frame->GetReflection()->MutableMessage(frame, kind);
    auto* value = static_cast<pb::Value*>(holder->GetReflection()->MutableMessage(holder, data));
    value->Clear();
    if (absl::Status st = json::ParseValue(text.substr(begin, end - begin), value); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(kind->json_name(), ".data: ", st.message()));
    }
    if (data_text != nullptr) *data_text = text.substr(begin, end - begin);
    return absl::OkStatus();
  }
  if (text.size() > kMaxFrameBytesOutsideData) return TooLarge();
  return FromCheckedJson(text, frame);
}

}  // namespace herald::core
