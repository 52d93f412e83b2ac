#include "server/core/client_frame.h"

#include <google/protobuf/struct.pb.h>

#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"

namespace herald::core {

namespace pb = google::protobuf;

namespace {

// Whether a top-level key names a kind of ClientFrame (by its JSON or proto name) whose message
// has a google.protobuf.Value `data`.
bool HasData(absl::string_view key) {
  const pb::Descriptor* type = v1::ClientFrame::descriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* kind = type->field(i);
    if (kind->name() != key && kind->json_name() != key) continue;
    if (kind->message_type() == nullptr) return false;
    const pb::FieldDescriptor* data = kind->message_type()->FindFieldByName("data");
    return data != nullptr && data->message_type() == pb::Value::descriptor();
  }
  return false;
}

}  // namespace

absl::Status ParseClientFrame(absl::string_view text, const json::JsonTopLevel& top,
                              v1::ClientFrame* frame) {
  // The bytes outside the data of the one kind besides "id", when that kind has a `data` given
  // once; otherwise the whole frame counts.
  size_t outside = text.size();
  const json::JsonTopLevel::Data* member = nullptr;
  for (size_t i = 0; i < top.keys.size(); ++i) {
    if (top.keys[i] == "id") continue;
    if (member != nullptr || !HasData(top.keys[i]) || top.data[i].count != 1) {
      member = nullptr;  // a second kind, or none with data: protobuf says what is wrong
      break;
    }
    member = &top.data[i];
  }
  if (member != nullptr) outside -= member->span.second - member->span.first;
  if (outside > kMaxFrameBytesOutsideData) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame: larger than ", kMaxFrameBytesOutsideData, " bytes outside its data"));
  }
  return FromCheckedJson(text, frame);
}

}  // namespace herald::core
