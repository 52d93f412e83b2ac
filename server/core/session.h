#ifndef HERALD_SERVER_CORE_SESSION_H_
#define HERALD_SERVER_CORE_SESSION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth/jwt.h"
#include "server/core/connection_quota.h"
#include "server/core/frame_rate_limiter.h"
#include "server/core/mutex.h"

namespace herald::core {

// A server->client frame that is encoded and framed once and then queued, as the same object, on
// any number of sessions. The transport subclasses it to keep its own ready-to-write form (the
// WebSocket layer keeps a prepared websocketpp message). Immutable, so shareable across threads.
class OutFrame {
 public:
  virtual ~OutFrame() = default;
  // The JSON text of the frame.
  virtual absl::string_view payload() const = 0;
  // Frames with the same non-empty key supersede each other: a connection that is behind may
  // send only the newest one (an order's publications on one channel).
  const std::string& conflation_key() const { return conflation_key_; }
  void set_conflation_key(std::string key) { conflation_key_ = std::move(key); }

 private:
  std::string conflation_key_;
};
using OutFramePtr = std::shared_ptr<const OutFrame>;

// Builds OutFrames in the transport's form. Implementations must be thread-safe.
class FrameFactory {
 public:
  virtual ~FrameFactory() = default;
  virtual OutFramePtr Make(std::string payload, std::string conflation_key = "") const = 0;
};

// What is known about a connection when it opens. Immutable after construction.
struct ConnectionMeta {
  std::string id;
  std::string remote_address;  // "ip:port"
  std::string origin;
  std::string user_agent;
  // The user at open (from a handshake token); empty = anonymous. A `connect` frame may set the
  // user later: read the current one with Session::user().
  std::string user;
  absl::Time connected_at;
  // The transport's I/O thread that owns the connection (see LoopExecutor); 0 without one.
  uint32_t loop = 0;
  // Handshake headers for the connect proxy (Limits::proxy_headers; name as configured, value),
  // kept only when connect frames go to a backend.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Runs work on the I/O thread (event loop) that owns a session, so that the node fans a publication
// out in parallel, each thread writing to the connections it owns (and none waking another per
// delivery). Work posted to one loop runs in posting order, whichever thread posted it (the node
// relies on this for per-channel order). Implemented by the transport; thread-safe.
class LoopExecutor {
 public:
  virtual ~LoopExecutor() = default;
  virtual void Post(uint32_t loop, std::function<void()> work) = 0;
};

// Where one subscription went live: its position (publications after it are for the session)
// and how many subscriptions the session had given up by then. Session::GoLive hands it to the
// channel index, and fan-out checks a publication against it without the session lock
// (Session::Accepts). Plain value.
struct LiveMark {
  uint64_t after = 0;
  uint64_t removals = 0;
};

struct SessionCounters {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// One client connection as the core sees it: identity, traffic counters and subscription set.
// The transport derives from it and implements the send path. All public methods are
// thread-safe; Send() may be called from any thread concurrently with the transport's own.
class Session {
 public:
  explicit Session(ConnectionMeta meta);
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const ConnectionMeta& meta() const { return meta_; }
  const std::string& id() const { return meta_.id; }
  uint32_t loop() const { return meta_.loop; }

  // Queues `frame`; false when the connection is closing or the frame was refused (slow
  // consumer). Never blocks on the network.
  bool Send(const OutFramePtr& frame);
  // Starts a close handshake with `code` and `reason`. Idempotent.
  virtual void Close(int code, absl::string_view reason) = 0;
  // Bytes queued and not yet written to the socket.
  virtual size_t BufferedBytes() const = 0;

  void CountIn(size_t bytes);
  SessionCounters counters() const;

  // --- Authentication (see ClientProtocol: connect/refresh frames and auth deadlines) ---
  // The connection's user: meta().user until a token grant names one.
  std::string user() const;
  // The claims of the token the connection authenticated with; nullptr before that (and always
  // when the server verifies no tokens).
  std::shared_ptr<const auth::Claims> grant() const;
  // Replaces the grant (connect, refresh) and sets user() to its user.
  void SetGrant(std::shared_ptr<const auth::Claims> grant);
  // Asks the transport to call ClientProtocol::CheckAuthDeadline(session) once `deadline` has
  // passed, replacing any earlier request. Called by the client protocol only.
  virtual void ScheduleAuthDeadline(absl::Time deadline) = 0;

  // --- Limits (see ClientProtocol: client_protocol_limits.cc, and Node::AdmitConnection) ---
  // The frame-rate verdict for one more client frame at `now` (the hub's clock), from this
  // connection's token bucket (created on its first frame with `rate`, `burst`, `max_refusals`).
  FrameRateLimiter::Verdict CheckFrameRate(double rate, double burst, uint32_t max_refusals,
                                           absl::Time now);
  // Keeps a connection-count slot (per IP, per user) until ReleaseSlots() or destruction; a slot
  // handed over after ReleaseSlots() is released at once.
  void HoldSlot(ConnectionQuota::Slot slot);
  void ReleaseSlots();

  enum class AddResult { kAdded, kAlreadySubscribed, kLimitReached, kClosed };
  // Adds `channel` to the subscription set and, while still holding the session lock, runs
  // `on_added` so that index updates cannot race with MarkClosed().
  template <typename Fn>
  AddResult AddSubscription(const std::string& channel, size_t max, Fn on_added);
  // A subscription going live: from now on publications of `channel` with an offset greater than
  // `after` are for this session (Accepts). Runs `fn(const LiveMark&)` under the session lock
  // when `channel` is in the set and the session is open, so index updates cannot race with
  // MarkClosed() or an unsubscribe.
  template <typename Fn>
  bool GoLive(const std::string& channel, uint64_t after, Fn fn);
  // Removes `channel`; runs `on_removed` under the session lock when it was present.
  template <typename Fn>
  bool RemoveSubscription(const std::string& channel, Fn on_removed);
  bool IsSubscribed(const std::string& channel) const;
  // Whether the publication of `channel` at `offset` is for this session: it is subscribed, live,
  // and the offset is past the position it joined at (a publication the broker hands over late,
  // after a join that already counted it, is not sent twice).
  bool Accepts(const std::string& channel, uint64_t offset) const;
  // The same, given the mark the subscription went live with (GoLive): while the session has
  // given up no subscription since, the mark still holds and no lock is taken (the fan-out's
  // per-subscriber check); otherwise the subscription set decides.
  bool Accepts(const std::string& channel, uint64_t offset, const LiveMark& mark) const {
    if (removals_.load(std::memory_order_acquire) == mark.removals) return offset > mark.after;
    return Accepts(channel, offset);
  }
  std::vector<std::string> Subscriptions() const;  // sorted
  size_t SubscriptionCount() const;
  // Marks the session closed (no further subscriptions) and returns the channels it had.
  std::vector<std::string> MarkClosed();
  // When each of its presence subscriptions (Limits::presence_prefixes) went live, in Unix ms:
  // its entry's joinedAtMs, kept to list the entry again with the same time (Node::RelistPresence).
  // Forgotten with the subscription.
  void SetPresenceJoinedAt(const std::string& channel, int64_t ms);
  std::vector<std::pair<std::string, int64_t>> PresenceJoins() const;

 protected:
  // The transport's queueing; called by Send().
  virtual bool DoSend(const OutFramePtr& frame) = 0;

 private:
  const ConnectionMeta meta_;
  std::atomic<uint64_t> frames_in_{0};
  std::atomic<uint64_t> frames_out_{0};
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};

  mutable core::Mutex auth_mu_;
  std::string user_ ABSL_GUARDED_BY(auth_mu_);
  std::shared_ptr<const auth::Claims> grant_ ABSL_GUARDED_BY(auth_mu_);

  core::Mutex limits_mu_;
  std::optional<FrameRateLimiter> frame_rate_ ABSL_GUARDED_BY(limits_mu_);
  std::vector<ConnectionQuota::Slot> slots_ ABSL_GUARDED_BY(limits_mu_);
  bool slots_released_ ABSL_GUARDED_BY(limits_mu_) = false;

  mutable core::Mutex mu_;
  // Channel -> the offset after which publications are for this session: none (max) while its
  // join is pending, then the join's position (see Node::Subscribe).
  absl::flat_hash_map<std::string, uint64_t> channels_ ABSL_GUARDED_BY(mu_);
  // Presence channels only: channel -> joinedAtMs (SetPresenceJoinedAt). Made on the first one:
  // one pointer on the many connections that have none.
  std::unique_ptr<absl::flat_hash_map<std::string, int64_t>> presence_joined_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Subscriptions removed (and MarkClosed), changed under mu_: a LiveMark with an older count
  // may be stale.
  std::atomic<uint64_t> removals_{0};
};

template <typename Fn>
Session::AddResult Session::AddSubscription(const std::string& channel, size_t max, Fn on_added) {
  core::MutexLock lock(&mu_);
  if (closed_) return AddResult::kClosed;
  if (channels_.contains(channel)) return AddResult::kAlreadySubscribed;
  if (channels_.size() >= max) return AddResult::kLimitReached;
  channels_.emplace(channel, std::numeric_limits<uint64_t>::max());
  on_added();
  return AddResult::kAdded;
}

template <typename Fn>
bool Session::GoLive(const std::string& channel, uint64_t after, Fn fn) {
  core::MutexLock lock(&mu_);
  auto it = channels_.find(channel);
  if (closed_ || it == channels_.end()) return false;
  it->second = after;
  fn(LiveMark{after, removals_.load(std::memory_order_relaxed)});
  return true;
}

template <typename Fn>
bool Session::RemoveSubscription(const std::string& channel, Fn on_removed) {
  core::MutexLock lock(&mu_);
  if (channels_.erase(channel) == 0) return false;
  removals_.fetch_add(1, std::memory_order_acq_rel);
  if (presence_joined_ != nullptr) presence_joined_->erase(channel);
  on_removed();
  return true;
}

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_SESSION_H_
