#ifndef HERALD_SERVER_CORE_PRESENCE_H_
#define HERALD_SERVER_CORE_PRESENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "herald/v1/broker.pb.h"
#include "server/core/done.h"

namespace herald::core {

// Who is subscribed to the presence channels (Limits::presence_prefixes), for the whole
// cluster: each node adds its subscribers when their subscription goes live and removes them
// when it ends. Implementations are thread-safe and never block the caller.
class PresenceRegistry {
 public:
  struct Counts {
    uint32_t connections = 0;
    uint32_t users = 0;  // distinct non-empty users; anonymous connections count as none
  };

  virtual ~PresenceRegistry() = default;
  // Adds (or replaces) `client` in `channel`'s presence.
  virtual void Add(const std::string& channel, v1::ClientInfo client, StatusDone done) = 0;
  // Removes the connection from `channel`'s presence (OK when it was not there).
  virtual void Remove(const std::string& channel, const std::string& connection_id,
                      StatusDone done) = 0;
  // The channel's subscribers, ordered by connection id.
  virtual void Get(const std::string& channel, Done<std::vector<v1::ClientInfo>> done) = 0;
  virtual void Count(const std::string& channel, Done<Counts> done) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_PRESENCE_H_
