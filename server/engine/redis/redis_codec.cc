#include "server/engine/redis/redis_codec.h"

#include <algorithm>
#include <cstdint>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace herald::engine {
namespace {

// Splits off the text before the next space of `*in`.
bool Token(absl::string_view* in, absl::string_view* token) {
  const size_t space = in->find(' ');
  if (space == absl::string_view::npos) return false;
  *token = in->substr(0, space);
  in->remove_prefix(space + 1);
  return true;
}

template <typename Int>
bool Number(absl::string_view* in, Int* out) {
  absl::string_view token;
  return Token(in, &token) && absl::SimpleAtoi(token, out);
}

}  // namespace

std::string EncodePublicationHead(const core::PublishSpec& spec) {
  const int flags = (spec.ack_requested ? 1 : 0) | (spec.key_final ? 2 : 0) |
                    (spec.kind == core::PublicationKind::kMemberJoined ? 4 : 0) |
                    (spec.kind == core::PublicationKind::kMemberLeft ? 8 : 0);
  return absl::StrCat(flags, " ", spec.ack_wait, " ", spec.origin_node.size(), " ", spec.key.size(),
                      " ", spec.origin_node, spec.key);
}

std::optional<core::Publication> DecodePublicationMessage(const std::string& channel,
                                                          absl::string_view message,
                                                          absl::Time* published_at) {
  core::Publication p;
  p.channel = channel;
  absl::string_view epoch;
  int64_t ms = 0;
  int flags = 0;
  size_t origin_len = 0, key_len = 0;
  if (!Token(&message, &epoch) || !Number(&message, &p.position.offset) || !Number(&message, &ms) ||
      !Number(&message, &flags) || !Number(&message, &p.spec.ack_wait) ||
      !Number(&message, &origin_len) || !Number(&message, &key_len) ||
      message.size() < origin_len + key_len) {
    return std::nullopt;
  }
  p.position.epoch = std::string(epoch);
  p.spec.ack_requested = (flags & 1) != 0;
  p.spec.key_final = (flags & 2) != 0;
  if ((flags & 4) != 0) p.spec.kind = core::PublicationKind::kMemberJoined;
  if ((flags & 8) != 0) p.spec.kind = core::PublicationKind::kMemberLeft;
  p.spec.origin_node = std::string(message.substr(0, origin_len));
  p.spec.key = std::string(message.substr(origin_len, key_len));
  p.spec.data_json = std::make_shared<const std::string>(message.substr(origin_len + key_len));
  if (published_at != nullptr) *published_at = absl::FromUnixMillis(ms);
  return p;
}

std::optional<core::StoredPublication> DecodeHistoryEntry(const RedisReply& entry) {
  const RedisReply& fields = entry.at(1);
  core::StoredPublication p;
  int64_t ms = 0;
  absl::string_view id = entry.at(0).str;
  if (fields.elements.size() < 4 || !absl::SimpleAtoi(id.substr(0, id.find('-')), &p.offset) ||
      !absl::SimpleAtoi(fields.at(1).str, &ms)) {
    return std::nullopt;
  }
  p.published_at = absl::FromUnixMillis(ms);
  p.data_json = std::make_shared<const std::string>(fields.at(3).str);
  p.ack_requested = fields.elements.size() >= 6 && fields.at(4).str == "a";
  return p;
}

std::optional<core::StoredPublication> DecodeKeyedValue(absl::string_view value) {
  core::StoredPublication p;
  int64_t ms = 0;
  if (!Number(&value, &p.offset) || !Number(&value, &ms)) return std::nullopt;
  // "a " before the data (which is JSON, so never starts with it): the publication asked for acks.
  p.ack_requested = absl::ConsumePrefix(&value, "a ");
  p.published_at = absl::FromUnixMillis(ms);
  p.data_json = std::make_shared<const std::string>(value);
  return p;
}

std::optional<core::Lease> DecodeLease(absl::string_view encoded, bool with_data) {
  core::Lease lease;
  int64_t granted_ms = 0, deadline_ms = 0;
  size_t queue_len = 0, id_len = 0, holder_len = 0, previous_len = 0;
  if (!Number(&encoded, &lease.attempt) || !Number(&encoded, &granted_ms) ||
      !Number(&encoded, &deadline_ms) || !Number(&encoded, &queue_len) ||
      !Number(&encoded, &id_len) || !Number(&encoded, &holder_len) ||
      !Number(&encoded, &previous_len) ||
      encoded.size() < queue_len + id_len + holder_len + previous_len) {
    return std::nullopt;
  }
  auto take = [&encoded](size_t n) {
    std::string out(encoded.substr(0, n));
    encoded.remove_prefix(n);
    return out;
  };
  lease.queue = take(queue_len);
  lease.task_id = take(id_len);
  lease.holder = take(holder_len);
  lease.previous_holder = take(previous_len);
  if (lease.attempt > 0) lease.delivery_id = absl::StrCat(lease.task_id, ".", lease.attempt);
  if (with_data) lease.data_json = std::make_shared<const std::string>(encoded);
  lease.ack_deadline = absl::Milliseconds(granted_ms);
  lease.deadline = absl::FromUnixMillis(deadline_ms);
  return lease;
}

std::string Millis(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

absl::Status Malformed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("redis: malformed ", what, " reply"));
}

namespace {

// Splits `length` bytes off the front of `*in`.
bool Take(absl::string_view* in, size_t length, std::string* out) {
  if (in->size() < length) return false;
  *out = std::string(in->substr(0, length));
  in->remove_prefix(length);
  return true;
}

}  // namespace

std::string EncodeSurvey(const SurveyMessage& survey) {
  return absl::StrCat(survey.id, " ", survey.asker.size(), " ", survey.method.size(), " ",
                      survey.asker, survey.method, survey.request);
}

std::optional<SurveyMessage> DecodeSurvey(absl::string_view message) {
  SurveyMessage survey;
  size_t asker_len = 0, method_len = 0;
  if (!Number(&message, &survey.id) || !Number(&message, &asker_len) ||
      !Number(&message, &method_len) || !Take(&message, asker_len, &survey.asker) ||
      !Take(&message, method_len, &survey.method)) {
    return std::nullopt;
  }
  survey.request = std::string(message);
  return survey;
}

std::string EncodeAnswer(uint64_t id, const std::string& node,
                         const absl::StatusOr<std::string>& reply) {
  if (reply.ok()) return absl::StrCat(id, " ", node.size(), " 0 ", node, *reply);
  return absl::StrCat(id, " ", node.size(), " ", static_cast<int>(reply.status().code()), " ", node,
                      reply.status().message());
}

std::optional<AnswerMessage> DecodeAnswer(absl::string_view message) {
  AnswerMessage answer;
  size_t node_len = 0;
  int code = 0;
  if (!Number(&message, &answer.id) || !Number(&message, &node_len) || !Number(&message, &code) ||
      !Take(&message, node_len, &answer.node) || code < 0 || code > 16) {
    return std::nullopt;
  }
  if (code == 0) {
    answer.reply = std::string(message);
  } else {
    answer.reply = absl::Status(static_cast<absl::StatusCode>(code), message);
  }
  return answer;
}

std::string EncodeEvent(const std::string& origin, const std::string& event) {
  return absl::StrCat(origin.size(), " ", origin, event);
}

std::optional<EventMessage> DecodeEvent(absl::string_view message) {
  EventMessage out;
  size_t origin_len = 0;
  if (!Number(&message, &origin_len) || !Take(&message, origin_len, &out.origin)) {
    return std::nullopt;
  }
  out.event = std::string(message);
  return out;
}

std::string EncodePresence(const std::string& owner, const std::string& instance,
                           const v1::ClientInfo& client) {
  return absl::StrCat(owner.size(), " ", instance.size(), " ", client.user().size(), " ", owner,
                      instance, client.user(), client.SerializeAsString());
}

std::optional<v1::ClientInfo> DecodePresence(absl::string_view value) {
  size_t owner_len = 0, instance_len = 0, user_len = 0;
  if (!Number(&value, &owner_len) || !Number(&value, &instance_len) || !Number(&value, &user_len) ||
      value.size() < owner_len + instance_len + user_len) {
    return std::nullopt;
  }
  value.remove_prefix(owner_len + instance_len + user_len);
  v1::ClientInfo client;
  if (!client.ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
  return client;
}

}  // namespace herald::engine
