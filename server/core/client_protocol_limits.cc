// ClientProtocol: the limits that refuse a client's work rather than validate it: its user's
// connection count (for a user named by a `connect` frame) and its frame rate. Kept apart from
// client_protocol.cc, which only calls these hooks.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/client_protocol.h"
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

bool ClientProtocol::AdmitUser(const std::shared_ptr<Session>& session, uint32_t id,
                               const std::string& user) {
  std::optional<ConnectionQuota::Slot> slot = node_->AdmitUser(user);
  if (!slot.has_value()) {
    node_->ReplyError(*session, id,
                      TooManyForUser("connect: ", user, limits_.max_connections_per_user));
    session->Close(kCloseTooManyConnections,
                   absl::StrCat("too many connections: at most ", limits_.max_connections_per_user,
                                " per user"));
    return false;
  }
  session->HoldSlot(*std::move(slot));
  return true;
}

bool ClientProtocol::AdmitFrameRate(const std::shared_ptr<Session>& session, uint32_t id) {
  if (limits_.max_frame_rate <= 0) return true;
  const FrameRateLimiter::Verdict verdict = session->CheckFrameRate(
      limits_.max_frame_rate, limits_.frame_burst, limits_.max_rate_refusals, node_->Now());
  if (verdict == FrameRateLimiter::Verdict::kAdmit) return true;
  if (verdict == FrameRateLimiter::Verdict::kDrop) return false;
  NodeCounters::Bump(node_->counters().rate_limited_frames);
  node_->ReplyError(
      *session, id,
      absl::ResourceExhaustedError(absl::StrCat(
          "rate limit: more than ", Rate(limits_.max_frame_rate), " frames per second (burst ",
          Rate(limits_.frame_burst), ", --max-frame-rate); frame not processed")));
  if (verdict == FrameRateLimiter::Verdict::kClose) {
    NodeCounters::Bump(node_->counters().rate_limit_closes);
    session->Close(
        kCloseRateLimited,
        absl::StrCat("rate limit: more than ", Rate(limits_.max_frame_rate), " frames per second"));
  }
  return false;
}

}  // namespace herald::core
