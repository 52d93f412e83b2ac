// Node: admission of connections against the connection-count limits (per process, per client
// IP, per user). Kept apart from node.cc, which only holds the quotas.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/node.h"

namespace herald::core {
namespace {

absl::Status TooManyForUser(absl::string_view user, size_t max) {
  return absl::ResourceExhaustedError(absl::StrCat("too many connections: user '", user,
                                                   "' already has ", max,
                                                   " connections (--max-connections-per-user)"));
}

}  // namespace

absl::StatusOr<Node::ConnectionSlots> Node::AdmitConnection(absl::string_view remote_address,
                                                            absl::string_view user) {
  // Approximate under concurrent handshakes (the table counts open connections): a bound on
  // memory, not an exact quota. The per-IP and per-user counts below are exact.
  if (table_.size() >= limits_.max_connections) {
    NodeCounters::Bump(counters_.refused_max_connections);
    return absl::UnavailableError("too many connections");
  }
  ConnectionSlots slots;
  slots.reserve(user.empty() ? 1 : 2);
  const absl::string_view ip = ClientIp(remote_address);
  std::optional<ConnectionQuota::Slot> ip_slot = ip_quota_.TryAcquire(ip);
  if (!ip_slot.has_value()) {
    NodeCounters::Bump(counters_.refused_per_ip);
    return absl::ResourceExhaustedError(absl::StrCat("too many connections: ", ip, " already has ",
                                                     limits_.max_connections_per_ip,
                                                     " (--max-connections-per-ip)"));
  }
  slots.push_back(*std::move(ip_slot));
  if (!user.empty()) {
    std::optional<ConnectionQuota::Slot> user_slot = user_quota_.TryAcquire(user);
    if (!user_slot.has_value()) {
      NodeCounters::Bump(counters_.refused_per_user);
      return TooManyForUser(user, limits_.max_connections_per_user);
    }
    slots.push_back(*std::move(user_slot));
  }
  return slots;
}

std::optional<ConnectionQuota::Slot> Node::AdmitUser(const std::string& user) {
  std::optional<ConnectionQuota::Slot> slot = user_quota_.TryAcquire(user);
  if (!slot.has_value()) NodeCounters::Bump(counters_.refused_per_user);
  return slot;
}

}  // namespace herald::core
