#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CODEC_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/stream.h"
#include "server/core/task_store.h"
#include "server/engine/redis/redis_reply.h"

namespace herald::engine {

// How publications travel through Redis. A pub/sub message is
//   "<epoch> <offset> <published ms> " + head + data
// where the publish script prepends the first three and the head, written here, is
//   "<flags> <ack_wait> <origin length> <key length> " + origin_node + key
// (flags: 1 = ack_requested, 2 = key_final, 4 = member joined, 8 = member left). Lengths make
// every field binary-safe. A member notice is published as is, with epoch "-" and offset 0.
std::string EncodePublicationHead(const core::PublishSpec& spec);

// The publication of a pub/sub message for `channel`; nullopt when it is malformed.
std::optional<core::Publication> DecodePublicationMessage(const std::string& channel,
                                                          absl::string_view message,
                                                          absl::Time* published_at);

// A history stream entry [id "<offset>-0", ["t", ms, "d", data]], with "a", 1 after them when
// the publication asked for acks; nullopt when malformed.
std::optional<core::StoredPublication> DecodeHistoryEntry(const RedisReply& entry);

// A latest-per-key hash value "<offset> <ms> <data>", or "<offset> <ms> a <data>" when the
// publication asked for acks; nullopt when malformed.
std::optional<core::StoredPublication> DecodeKeyedValue(absl::string_view value);

// A task lease as the task scripts write it (redis_scripts.cc, `encode`):
//   "<attempt> <granted ms> <deadline ms> <queue len> <task id len> <holder len> <previous len> "
//   + queue + task id + holder + previous holder + data
// with data only in leases handed out (`with_data`; otherwise data_json stays unset). The
// delivery id is "<task id>.<attempt>" (empty before a first delivery). nullopt when malformed.
std::optional<core::Lease> DecodeLease(absl::string_view encoded, bool with_data);

// A duration as a script argument: whole milliseconds, at least 1.
std::string Millis(absl::Duration d);

// INTERNAL "redis: malformed <what> reply".
absl::Status Malformed(absl::string_view what);
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
