#ifndef HERALD_SERVER_WS_WS_SESSION_H_
#define HERALD_SERVER_WS_WS_SESSION_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

#include "server/core/hub.h"
#include "server/core/session.h"
#include "server/ws/ws_config.h"

namespace herald::ws {

// A publication framed once as a prepared websocketpp message; websocketpp queues a prepared
// message as is, so one WsFrame is shared by every subscriber's send queue. Immutable once made.
class WsFrame : public core::OutFrame {
 public:
  explicit WsFrame(std::string payload);
  absl::string_view payload() const override { return message_->get_payload(); }
  const WsMessagePtr& message() const { return message_; }

 private:
  WsMessagePtr message_;
};

// Makes WsFrames. Stateless, thread-safe.
class WsFrameFactory : public core::FrameFactory {
 public:
  core::OutFramePtr Make(std::string payload, std::string conflation_key = "") const override;
};

// core::Session over one websocketpp connection, with the send-side flow control: below
// Limits::soft_send_buffer_bytes frames go straight to websocketpp's queue; past it the session
// is "behind" and holds frames in its own queue, where a frame with the same conflation key
// replaces the older one (an order's newer version); past max_send_buffer_bytes (websocketpp's
// queue plus ours) the connection is closed as a slow consumer (4008). `on_behind` is called
// once each time the session starts holding frames, so the endpoint polls Flush() until it has
// caught up. Owns the auth deadline timer, which holds the session weakly. Holds the connection;
// the connection's handlers hold the session only weakly (the hub's table owns it while it is
// open). Thread-safe: a mutex guards the held queue, another the timer slot; and websocketpp's
// send/close take the connection's own locks.
class WsSession : public core::Session, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(core::ConnectionMeta meta, WsServer::connection_ptr connection, core::Hub* hub,
            std::function<void(std::shared_ptr<WsSession>)> on_behind);

  void Close(int code, absl::string_view reason) override;
  size_t BufferedBytes() const override;
  // Moves held frames to websocketpp while under the soft limit; false once nothing is held.
  bool Flush();
  uint64_t conflated() const { return conflated_.load(std::memory_order_relaxed); }
  // A websocketpp timer on the connection's strand that calls Hub::CheckAuthDeadline.
  void ScheduleAuthDeadline(absl::Time deadline) override;
  // Cancels the pending timer (its handler holds the connection until it runs): on close.
  void CancelTimers();

 protected:
  bool DoSend(const core::OutFramePtr& frame) override;

 private:
  void CloseSlow(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Holding() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_head_ < held_.size(); }
  void DropHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WsServer::connection_ptr connection_;
  core::Hub* const hub_;
  const size_t soft_limit_;
  const size_t hard_limit_;
  const std::function<void(std::shared_ptr<WsSession>)> on_behind_;
  std::atomic<uint64_t> conflated_{0};

  mutable absl::Mutex mu_;
  bool slow_ ABSL_GUARDED_BY(mu_) = false;
  // A vector, not a deque: an empty std::deque still allocates ~600 bytes, on every idle
  // connection. held_[0] has sequence number held_base_; frames before held_head_ are sent.
  std::vector<core::OutFramePtr> held_ ABSL_GUARDED_BY(mu_);
  size_t held_head_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t held_base_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint64_t> held_by_key_ ABSL_GUARDED_BY(mu_);
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex timer_mu_;
  WsServer::connection_type::timer_ptr auth_timer_ ABSL_GUARDED_BY(timer_mu_);
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_WS_SESSION_H_
