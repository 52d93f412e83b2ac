#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_SLOT_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_SLOT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace herald::engine {

// Redis Cluster's key space: 16384 hash slots.
inline constexpr int kRedisSlots = 16384;

// The hash slot of `key` (or of a shard channel) as Redis Cluster computes it: CRC16 (XMODEM)
// of the key's hash tag — the text between the first "{" and the next "}", when not empty — or
// of the whole key, modulo 16384. Pure function, any thread.
int KeySlot(absl::string_view key);

// The name of a key (or pub/sub channel) that is not a channel's: "{<prefix>}:<rest>". Every
// such key shares the hash slot of "{<prefix>}", so that the scripts of the control bus,
// presence, online users and tasks touch one slot (docs/scaling.md, "Redis Cluster").
std::string ClusterWideKey(absl::string_view prefix, absl::string_view rest);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_SLOT_H_
