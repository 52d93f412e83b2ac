// Hub: the limits that refuse work rather than validate it: connections per process, per client
// IP and per user, and each connection's frame rate. Kept apart from hub.cc, which only calls
// these hooks.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/hub.h"
#include "server/core/protocol.h"

namespace herald::core {
namespace {

// "100" for 100.0, "0.5" for 0.5.
std::string Rate(double rate) { return absl::StrFormat("%g", rate); }

absl::Status TooManyForUser(absl::string_view field, absl::string_view user, size_t max) {
  return absl::ResourceExhaustedError(absl::StrCat(field, "user '", user, "' already has ", max,
                                                   " connections (--max-connections-per-user)"));
}

}  // namespace

absl::StatusOr<Hub::ConnectionSlots> Hub::AdmitConnection(absl::string_view remote_address,
                                                          absl::string_view user) {
  // Approximate under concurrent handshakes (the table counts open connections): a bound on
  // memory, not an exact quota. The per-IP and per-user counts below are exact.
  if (table_.size() >= limits_.max_connections) {
    refused_max_connections_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError("too many connections");
  }
  ConnectionSlots slots;
  const absl::string_view ip = ClientIp(remote_address);
  std::optional<ConnectionQuota::Slot> ip_slot = ip_quota_.TryAcquire(ip);
  if (!ip_slot.has_value()) {
    refused_per_ip_.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat("too many connections: ", ip, " already has ",
                                                     limits_.max_connections_per_ip,
                                                     " (--max-connections-per-ip)"));
  }
  slots.push_back(*std::move(ip_slot));
  if (!user.empty()) {
    std::optional<ConnectionQuota::Slot> user_slot = user_quota_.TryAcquire(user);
    if (!user_slot.has_value()) {
      refused_per_user_.fetch_add(1, std::memory_order_relaxed);
      return TooManyForUser("too many connections: ", user, limits_.max_connections_per_user);
    }
    slots.push_back(*std::move(user_slot));
  }
  return slots;
}

bool Hub::AdmitUser(const std::shared_ptr<Session>& session, uint32_t id, const std::string& user) {
  std::optional<ConnectionQuota::Slot> slot = user_quota_.TryAcquire(user);
  if (!slot.has_value()) {
    refused_per_user_.fetch_add(1, std::memory_order_relaxed);
    ReplyError(*session, id, TooManyForUser("connect: ", user, limits_.max_connections_per_user));
    session->Close(kCloseTooManyConnections,
                   absl::StrCat("too many connections: at most ", limits_.max_connections_per_user,
                                " per user"));
    return false;
  }
  session->HoldSlot(*std::move(slot));
  return true;
}

bool Hub::AdmitFrameRate(const std::shared_ptr<Session>& session, uint32_t id) {
  if (limits_.max_frame_rate <= 0) return true;
  const FrameRateLimiter::Verdict verdict = session->CheckFrameRate(
      limits_.max_frame_rate, limits_.frame_burst, limits_.max_rate_refusals, clock_());
  if (verdict == FrameRateLimiter::Verdict::kAdmit) return true;
  if (verdict == FrameRateLimiter::Verdict::kDrop) return false;
  rate_limited_frames_.fetch_add(1, std::memory_order_relaxed);
  ReplyError(
      *session, id,
      absl::ResourceExhaustedError(absl::StrCat(
          "rate limit: more than ", Rate(limits_.max_frame_rate), " frames per second (burst ",
          Rate(limits_.frame_burst), ", --max-frame-rate); frame not processed")));
  if (verdict == FrameRateLimiter::Verdict::kClose) {
    rate_limit_closes_.fetch_add(1, std::memory_order_relaxed);
    session->Close(
        kCloseRateLimited,
        absl::StrCat("rate limit: more than ", Rate(limits_.max_frame_rate), " frames per second"));
  }
  return false;
}

}  // namespace herald::core
