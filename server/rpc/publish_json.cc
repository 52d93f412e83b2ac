#include "server/rpc/publish_json.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace herald::rpc {
namespace {

// The characters of a channel name (core::ValidateChannel), which protobuf's printer writes as
// they are.
bool Plain(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':' && c != '.' &&
        c != '@' && c != '/' && c != '=' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ReadPlainPublish(absl::string_view body, const json::JsonTopLevel& top,
                      v1::PublishRequest* req) {
  if (top.keys.size() != 2 || top.value_spans.size() != 2) return false;
  std::optional<std::pair<size_t, size_t>> channel, data;
  for (size_t i = 0; i < 2; ++i) {
    if (top.keys[i] == "channel" && !channel.has_value()) {
      channel = top.value_spans[i];
    } else if (top.keys[i] == "data" && !data.has_value()) {
      data = top.value_spans[i];
    } else {
      return false;
    }
  }
  if (!channel.has_value() || !data.has_value()) return false;
  absl::string_view name = body.substr(channel->first, channel->second - channel->first);
  // A JSON string with no escape in it is its own text between the quotes.
  if (name.size() < 2 || name.front() != '"' || name.back() != '"') return false;
  name = name.substr(1, name.size() - 2);
  if (name.find('\\') != absl::string_view::npos) return false;
  req->set_channel(std::string(name));
  req->set_data_json(std::string(body.substr(data->first, data->second - data->first)));
  return true;
}

bool WritePlainPublishResponse(const v1::PublishResponse& resp, std::string* out) {
  if (resp.has_ack() || !resp.has_delivery()) return false;
  const v1::ChannelDelivery& d = resp.delivery();
  if (!Plain(d.channel()) || !Plain(d.epoch())) return false;
  out->clear();
  // Field order and zero values as protobuf prints them: uint64 as a string, uint32 a number.
  absl::StrAppend(out, R"({"delivery":{"channel":")", d.channel(), R"(","epoch":")", d.epoch(),
                  R"(","offset":")", d.offset(), R"(","queued":)", d.queued(), R"(},"duplicate":)",
                  resp.duplicate() ? "true" : "false", "}");
  return true;
}

}  // namespace herald::rpc
