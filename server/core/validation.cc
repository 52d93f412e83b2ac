#include "server/core/validation.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "server/core/protocol.h"
#include "server/core/value_json.h"
#include "server/json/json_check.h"

namespace herald::core {
namespace {
bool IsChannelChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '.' ||
         c == '@' || c == '/' || c == '=' || c == '-';
}
}  // namespace

namespace {
// A channel name's checks, with the field's name ("order" + ".id") built only for an error: a
// valid order costs no allocation here.
absl::Status CheckChannel(absl::string_view field, absl::string_view suffix,
                          absl::string_view channel, size_t max_length) {
  if (channel.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, suffix, ": must not be empty"));
  }
  if (channel.size() > max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, suffix, ": longer than ", max_length, " bytes"));
  }
  for (char c : channel) {
    if (!IsChannelChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, suffix, ": invalid character; allowed are letters, digits and _ : . @ / = -"));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status ValidateChannel(absl::string_view field, absl::string_view channel,
                             const Limits& limits) {
  return CheckChannel(field, "", channel, limits.max_channel_length);
}

absl::Status ValidateOrder(absl::string_view field, const herald::v1::Order& order,
                           const Limits& limits) {
  // The ids become part of channel names (store:<id>, order:<id>, ...).
  const size_t max_id = limits.max_channel_length - 9;  // room for "customer:"
  if (absl::Status s = CheckChannel(field, ".id", order.id(), max_id); !s.ok()) return s;
  if (absl::Status s = CheckChannel(field, ".store_id", order.store_id(), max_id); !s.ok()) {
    return s;
  }
  if (!order.customer_id().empty()) {
    if (absl::Status s = CheckChannel(field, ".customer_id", order.customer_id(), max_id);
        !s.ok()) {
      return s;
    }
  }
  if (order.version() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".version: must be greater than 0"));
  }
  if (order.status() == herald::v1::ORDER_STATUS_UNSPECIFIED ||
      !herald::v1::OrderStatus_IsValid(order.status())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".status: must be set"));
  }
  return absl::OkStatus();
}

absl::Status ValidateClose(int code, absl::string_view reason) {
  if (code != 1000 && (code < 3000 || code > 4999)) {
    return absl::InvalidArgumentError("code: must be 1000 or within 3000..4999");
  }
  if (reason.size() > 123) {
    return absl::InvalidArgumentError("reason: longer than 123 bytes");
  }
  return absl::OkStatus();
}

bool OriginAllowed(absl::string_view origin, const std::vector<std::string>& allowed) {
  if (allowed.empty() || origin.empty()) return true;
  for (const std::string& a : allowed) {
    if (a == "*" || absl::EqualsIgnoreCase(a, origin)) return true;
  }
  return false;
}

std::vector<std::string> OrderChannels(const herald::v1::Order& order) {
  std::vector<std::string> out;
  out.reserve(4);
  out.emplace_back("orders");  // short enough to need no allocation of its own
  out.push_back(absl::StrCat("store:", order.store_id()));
  if (!order.customer_id().empty()) out.push_back(absl::StrCat("customer:", order.customer_id()));
  out.push_back(absl::StrCat("order:", order.id()));
  return out;
}

}  // namespace herald::core

namespace herald::core {

const HistoryPolicy& HistoryFor(const Limits& limits, const std::string& channel) {
  const HistoryPolicy* best = &limits.history;
  size_t best_len = 0;
  for (const auto& [prefix, policy] : limits.history_by_prefix) {
    if (prefix.size() >= best_len && absl::StartsWith(channel, prefix)) {
      best = &policy;
      best_len = prefix.size();
    }
  }
  return *best;
}

bool IsTerminal(herald::v1::OrderStatus status) {
  return status == herald::v1::ORDER_STATUS_DELIVERED ||
         status == herald::v1::ORDER_STATUS_CANCELLED ||
         status == herald::v1::ORDER_STATUS_REJECTED;
}

namespace {

absl::Status TooLarge(absl::string_view field, const Limits& limits) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": larger than ", limits.max_publication_bytes, " bytes"));
}

}  // namespace

absl::StatusOr<std::string> DataJson(absl::string_view field, bool has_data,
                                     const google::protobuf::Message& data, const Limits& limits) {
  if (!has_data) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  std::string json;
  const auto* value = google::protobuf::DynamicCastToGenerated<google::protobuf::Value>(&data);
  if (std::optional<std::string> fast = value != nullptr ? ValueJson(*value) : std::nullopt) {
    json = *std::move(fast);
  } else if (absl::Status st = ToJson(data, &json); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", st.message()));
  }
  if (json.size() > limits.max_publication_bytes) return TooLarge(field, limits);
  return json;
}

absl::StatusOr<std::string> DataJson(absl::string_view field, bool has_data,
                                     const google::protobuf::Message& data,
                                     absl::string_view data_json, const Limits& limits) {
  if (data_json.empty()) return DataJson(field, has_data, data, limits);
  if (has_data) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "_json: set ", field, " or ", field, "_json, not both"));
  }
  // Bounded before any work; the same bound as for `data`, whose JSON is what is published.
  if (data_json.size() > limits.max_publication_bytes) {
    return TooLarge(absl::StrCat(field, "_json"), limits);
  }
  // Kept as text, so a repeated key is refused here, as it is in `data` (and a client's data).
  if (absl::Status st = json::CheckJson(data_json, limits.max_json_depth, nullptr,
                                        /*unique_keys=*/true);
      !st.ok()) {
    if (absl::StartsWith(st.message(), "Repeated map key")) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", st.message()));
    }
    return absl::InvalidArgumentError(absl::StrCat(field, "_json: not valid JSON: ", st.message()));
  }
  return std::string(absl::StripAsciiWhitespace(data_json));
}

absl::StatusOr<std::string> RawDataJson(absl::string_view field, absl::string_view json,
                                        const Limits& limits) {
  if (json.size() > limits.max_publication_bytes) return TooLarge(field, limits);
  return std::string(absl::StripAsciiWhitespace(json));
}

bool HasPrefix(absl::string_view channel, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (absl::StartsWith(channel, prefix)) return true;
  }
  return false;
}

bool IsPresenceChannel(absl::string_view channel, const Limits& limits) {
  return HasPrefix(channel, limits.presence_prefixes);
}

}  // namespace herald::core
