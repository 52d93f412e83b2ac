#ifndef HERALD_SERVER_CORE_STREAM_H_
#define HERALD_SERVER_CORE_STREAM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace herald::core {

// A position in a channel's stream. `epoch` changes when the stream restarts (a new process, or
// a channel that was idle long enough to be forgotten), so an offset is only meaningful together
// with its epoch.
struct StreamPosition {
  std::string epoch;
  uint64_t offset = 0;
};

// One publication as the broker retains it.
struct StoredPublication {
  uint64_t offset = 0;
  std::shared_ptr<const std::string> data_json;
  absl::Time published_at;
  // It asked its subscribers to ack it (PublishSpec::ack_requested): a recovered copy asks too.
  bool ack_requested = false;
};

// What a publication carries: channel data (retained, one offset each), or a notice for the
// channel's live subscribers that a member's subscription went live or ended (neither retained nor
// given an offset: its position is the channel's current one; `data_json` is the member).
enum class PublicationKind { kData, kMemberJoined, kMemberLeft };

// What a publisher hands the broker.
struct PublishSpec {
  PublicationKind kind = PublicationKind::kData;
  std::shared_ptr<const std::string> data_json;
  // When set, the broker keeps the latest publication per key for snapshots (order id).
  std::string key;
  // The key's state is final (terminal order): it leaves snapshots after its retention.
  bool key_final = false;
  // The frame asks subscribers to ack it.
  bool ack_requested = false;
  // A publish call on `origin_node` waits for the first ack (AckWaiters id; 0: none).
  std::string origin_node;
  uint64_t ack_wait = 0;
};

// One publication on its way to subscribers (Broker → BrokerEventHandler::HandlePublication):
// this node's own and, with a distributed broker, other nodes'.
struct Publication {
  std::string channel;
  StreamPosition position;
  PublishSpec spec;
};

struct JoinSpec {
  // Replay what was published after this position.
  std::optional<StreamPosition> recover;
  // Return the latest publication of every live key.
  bool snapshot = false;
};

// The state of a channel's stream for a subscriber that joins it.
struct JoinResult {
  StreamPosition position;
  bool recovered = false;
  std::vector<StoredPublication> missed;    // when recovered
  std::vector<StoredPublication> snapshot;  // oldest offset first
};

struct HistoryQuery {
  uint64_t since_offset = 0;  // publications with a greater offset
  size_t limit = 100;
  bool reverse = false;  // newest first
};

struct HistoryResult {
  StreamPosition position;
  std::vector<StoredPublication> publications;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_STREAM_H_
