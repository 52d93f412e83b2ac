#include "server/ws/ws_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"

namespace herald::ws {

WsFrame::WsFrame(std::string payload) {
  namespace frame = websocketpp::frame;
  message_ = std::make_shared<WsConfig::message_type>(WsConfig::con_msg_manager_type::ptr(),
                                                      frame::opcode::text, 0);
  const uint64_t size = payload.size();
  message_->set_header(frame::prepare_header(
      frame::basic_header(frame::opcode::text, size, /*fin=*/true, /*mask=*/false),
      frame::extended_header(size)));
  message_->get_raw_payload() = std::move(payload);
  message_->set_prepared(true);
}

core::OutFramePtr WsFrameFactory::Make(std::string payload) const {
  return std::make_shared<const WsFrame>(std::move(payload));
}

WsSession::WsSession(core::ConnectionMeta meta, WsServer::connection_ptr connection, core::Hub* hub)
    : core::Session(std::move(meta)),
      connection_(std::move(connection)),
      hub_(hub),
      max_send_buffer_bytes_(hub->limits().max_send_buffer_bytes) {}

void WsSession::Close(int code, absl::string_view reason) {
  websocketpp::lib::error_code ec;  // invalid_state when already closing: nothing to do.
  connection_->close(static_cast<websocketpp::close::status::value>(code), std::string(reason), ec);
}

void WsSession::ScheduleAuthDeadline(absl::Time deadline) {
  // Far deadlines are checked daily (the check re-arms), which keeps the timer in range.
  const absl::Duration wait =
      std::clamp(deadline - absl::Now(), absl::ZeroDuration(), absl::Hours(24));
  const long ms =
      static_cast<long>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)))) + 1;
  std::weak_ptr<WsSession> weak = weak_from_this();
  core::Hub* hub = hub_;
  WsServer::connection_type::timer_ptr timer =
      connection_->set_timer(ms, [weak, hub](const websocketpp::lib::error_code& ec) {
        if (ec) return;  // cancelled
        if (std::shared_ptr<WsSession> s = weak.lock()) hub->CheckAuthDeadline(s);
      });
  absl::MutexLock lock(&timer_mu_);
  if (auth_timer_ != nullptr) {
    asio::error_code ignored;
    auth_timer_->cancel(ignored);
  }
  auth_timer_ = std::move(timer);
}

void WsSession::CancelTimers() {
  absl::MutexLock lock(&timer_mu_);
  if (auth_timer_ != nullptr) {
    asio::error_code ignored;
    auth_timer_->cancel(ignored);
    auth_timer_ = nullptr;
  }
}

size_t WsSession::BufferedBytes() const { return connection_->get_buffered_amount(); }

bool WsSession::DoSend(const core::OutFramePtr& frame) {
  const auto& ws_frame = static_cast<const WsFrame&>(*frame);
  if (connection_->get_buffered_amount() + ws_frame.payload().size() > max_send_buffer_bytes_) {
    if (!slow_.exchange(true)) {
      hub_->CountSlowConsumerClose();
      Close(core::kCloseSlowConsumer,
            absl::StrCat("slow consumer: more than ", max_send_buffer_bytes_, " bytes queued"));
    }
    return false;
  }
  return !connection_->send(ws_frame.message());
}

}  // namespace herald::ws
