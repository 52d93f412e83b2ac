#ifndef HERALD_SERVER_WS_WS_SESSION_H_
#define HERALD_SERVER_WS_WS_SESSION_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "server/core/hub.h"
#include "server/core/session.h"
#include "server/ws/ws_config.h"

namespace herald::ws {

// A publication framed once as a prepared websocketpp message; websocketpp queues a prepared
// message as is, so one WsFrame is shared by every subscriber's send queue. Immutable.
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
  core::OutFramePtr Make(std::string payload) const override;
};

// core::Session over one websocketpp connection. Holds the connection; the connection's handlers
// hold the session only weakly (the hub's table owns it while it is open). Owns the auth
// deadline timer, which also holds the session weakly. Thread-safe: websocketpp's send/close take
// the connection's own locks and hand the write to its strand; the timer slot has its own mutex.
class WsSession : public core::Session, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(core::ConnectionMeta meta, WsServer::connection_ptr connection, core::Hub* hub);

  void Close(int code, absl::string_view reason) override;
  size_t BufferedBytes() const override;
  // A websocketpp timer on the connection's strand that calls Hub::CheckAuthDeadline.
  void ScheduleAuthDeadline(absl::Time deadline) override;
  // Cancels the pending timer (its handler holds the connection until it runs): on close.
  void CancelTimers();

 protected:
  bool DoSend(const core::OutFramePtr& frame) override;

 private:
  const WsServer::connection_ptr connection_;
  core::Hub* const hub_;
  const size_t max_send_buffer_bytes_;
  std::atomic<bool> slow_{false};
  absl::Mutex timer_mu_;
  WsServer::connection_type::timer_ptr auth_timer_ ABSL_GUARDED_BY(timer_mu_);
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_WS_SESSION_H_
