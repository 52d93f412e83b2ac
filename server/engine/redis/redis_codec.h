#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CODEC_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "herald/v1/broker.pb.h"
#include "server/core/stream.h"
#include "server/engine/redis/redis_reply.h"

namespace herald::engine {

// How publications travel through Redis. A pub/sub message is
//   "<epoch> <offset> <published ms> " + head + data
// where the publish script prepends the first three and the head, written here, is
//   "<flags> <ack_wait> <origin length> <key length> " + origin_node + key
// (flags: 1 = ack_requested, 2 = key_final). Lengths make every field binary-safe.
std::string EncodePublicationHead(const core::PublishSpec& spec);

// The publication of a pub/sub message for `channel`; nullopt when it is malformed.
std::optional<core::Publication> DecodePublicationMessage(const std::string& channel,
                                                          absl::string_view message,
                                                          absl::Time* published_at);

// A history stream entry [id "<offset>-0", ["t", ms, "d", data]]; nullopt when malformed.
std::optional<core::StoredPublication> DecodeHistoryEntry(const RedisReply& entry);

// A latest-per-key hash value "<offset> <ms> <data>"; nullopt when malformed.
std::optional<core::StoredPublication> DecodeKeyedValue(absl::string_view value);

// The control bus's messages (RedisControlBus). Lengths make every field binary-safe.
//   survey, on the control channel:  "<id> <asker length> <method length> " + asker + method +
//                                    request
//   answer, on the asker's channel:  "<id> <node length> <status code> " + node + reply (the
//                                    reply's bytes when the code is 0, else the error message)
//   event, on an events channel:     "<origin length> " + origin node + serialized v1::Event
struct SurveyMessage {
  uint64_t id = 0;
  std::string asker;
  std::string method;
  std::string request;
};
std::string EncodeSurvey(const SurveyMessage& survey);
std::optional<SurveyMessage> DecodeSurvey(absl::string_view message);

struct AnswerMessage {
  uint64_t id = 0;
  std::string node;
  absl::StatusOr<std::string> reply;
};
std::string EncodeAnswer(uint64_t id, const std::string& node,
                         const absl::StatusOr<std::string>& reply);
std::optional<AnswerMessage> DecodeAnswer(absl::string_view message);

struct EventMessage {
  std::string origin;
  std::string event;
};
std::string EncodeEvent(const std::string& origin, const std::string& event);
std::optional<EventMessage> DecodeEvent(absl::string_view message);

// A presence entry (the value of a channel's presence hash, RedisPresence):
//   "<owner length> <instance length> <user length> " + owner node + instance + user +
//   serialized v1::ClientInfo
// The scripts read owner and instance (is it alive?) and user (distinct users) from the head.
std::string EncodePresence(const std::string& owner, const std::string& instance,
                           const v1::ClientInfo& client);
std::optional<v1::ClientInfo> DecodePresence(absl::string_view value);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_CODEC_H_
