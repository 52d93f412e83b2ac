#include "server/core/protocol.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "rapidjson/allocators.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "server/core/json_writer.h"

namespace herald::core {

namespace {
// One herald.v1.Publication object, around data that is already JSON.
void AppendPublication(std::string* out, absl::string_view channel, uint64_t offset,
                       absl::string_view data_json, bool ack_requested = false) {
  absl::StrAppend(out, R"({"channel":")", channel, R"(","offset":")", offset, R"(","data":)",
                  data_json, ack_requested ? R"(,"ackRequested":true})" : "}");
}

void AppendPublications(std::string* out, absl::string_view name, absl::string_view channel,
                        const std::vector<StoredPublication>* publications) {
  if (publications == nullptr) return;
  absl::StrAppend(out, R"(,")", name, R"(":[)");
  for (size_t i = 0; i < publications->size(); ++i) {
    const StoredPublication& p = (*publications)[i];
    if (i > 0) out->push_back(',');
    AppendPublication(out, channel, p.offset, *p.data_json, p.ack_requested);
  }
  out->push_back(']');
}
}  // namespace

std::string EncodePublication(absl::string_view channel, uint64_t offset,
                              absl::string_view data_json, bool ack_requested) {
  std::string out = R"({"pub":)";
  out.reserve(out.size() + channel.size() + data_json.size() + 64);
  AppendPublication(&out, channel, offset, data_json, ack_requested);
  out.push_back('}');
  return out;
}

std::string EncodeMemberEvent(bool joined, absl::string_view channel,
                              absl::string_view member_json) {
  return absl::StrCat(joined ? R"({"memberJoined":{"channel":")" : R"({"memberLeft":{"channel":")",
                      channel, R"(","member":)", member_json, "}}");
}

std::string EncodeSubscribed(uint32_t id, absl::string_view channel, const StreamPosition& position,
                             std::optional<bool> recovered,
                             const std::vector<StoredPublication>* publications,
                             const std::vector<StoredPublication>* snapshot) {
  std::string out = "{";
  if (id != 0) absl::StrAppend(&out, R"("id":)", id, ",");
  // The epoch is the engine's own token (hex), so it needs no escaping either.
  absl::StrAppend(&out, R"("subscribed":{"channel":")", channel, R"(","epoch":")", position.epoch,
                  R"(","offset":")", position.offset, R"(")");
  if (recovered.has_value())
    absl::StrAppend(&out, R"(,"recovered":)", *recovered ? "true" : "false");
  AppendPublications(&out, "publications", channel, publications);
  AppendPublications(&out, "snapshot", channel, snapshot);
  out.append("}}");
  return out;
}

std::string EncodeWelcome(const herald::v1::Welcome& welcome) {
  // Sent on every handshake: the buffer and the writer's stack take their memory from a pool on
  // the stack, not from two mallocs.
  char pool_buffer[1024];
  rapidjson::MemoryPoolAllocator<> pool(pool_buffer, sizeof pool_buffer);
  rapidjson::GenericStringBuffer<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>> buffer(&pool);
  rapidjson::Writer<decltype(buffer), rapidjson::UTF8<>, rapidjson::UTF8<>,
                    rapidjson::MemoryPoolAllocator<>>
      w(buffer, &pool);
  w.StartObject();
  w.Key("welcome");
  w.StartObject();
  json_writer::String(w, "connectionId", welcome.connection_id());
  json_writer::String(w, "node", welcome.node());
  json_writer::Uint32(w, "pingIntervalMs", welcome.ping_interval_ms());
  json_writer::Uint32(w, "maxFrameBytes", welcome.max_frame_bytes());
  json_writer::Uint32(w, "maxSubscriptions", welcome.max_subscriptions());
  json_writer::Bool(w, "connectRequired", welcome.connect_required());
  w.EndObject();
  w.EndObject();
  return json_writer::Text(buffer);
}

std::string EncodePush(absl::string_view data_json) {
  return absl::StrCat(R"({"push":{"data":)", data_json, "}}");
}

absl::Status ToJson(const google::protobuf::Message& message, std::string* out,
                    bool print_defaults) {
  out->clear();
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = print_defaults;
  auto status = google::protobuf::util::MessageToJsonString(message, out, options);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  return absl::OkStatus();
}

absl::Status FromJson(absl::string_view json, google::protobuf::Message* message,
                      size_t max_depth) {
  if (absl::Status st = json::CheckJson(json, max_depth); !st.ok()) return st;
  return FromCheckedJson(json, message);
}

absl::Status FromCheckedJson(absl::string_view json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (!status.ok()) return absl::InvalidArgumentError(std::string(status.message()));
  return absl::OkStatus();
}

std::string EncodeFrame(const herald::v1::ServerFrame& frame) {
  std::string out;
  // Serialising a well-formed generated message cannot fail. A reply (it has an id) carries its
  // false and zero fields too (a member's empty user, `recovered: false`): clients test them.
  ToJson(frame, &out, /*print_defaults=*/frame.id() != 0).IgnoreError();
  return out;
}

std::string EncodeError(uint32_t id, const absl::Status& status) {
  herald::v1::ServerFrame frame;
  frame.set_id(id);
  frame.mutable_error()->set_code(absl::StatusCodeToString(status.code()));
  frame.mutable_error()->set_message(json::ValidUtf8(status.message()));
  return EncodeFrame(frame);
}

}  // namespace herald::core
