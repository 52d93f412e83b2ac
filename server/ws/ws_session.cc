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

core::OutFramePtr WsFrameFactory::Make(std::string payload, std::string conflation_key) const {
  auto frame = std::make_shared<WsFrame>(std::move(payload));
  frame->set_conflation_key(std::move(conflation_key));
  return frame;
}

WsSession::WsSession(core::ConnectionMeta meta, WsServer::connection_ptr connection, core::Hub* hub,
                     std::function<void(std::shared_ptr<WsSession>)> on_behind)
    : core::Session(std::move(meta)),
      connection_(std::move(connection)),
      hub_(hub),
      soft_limit_(hub->limits().soft_send_buffer_bytes),
      hard_limit_(hub->limits().max_send_buffer_bytes),
      on_behind_(std::move(on_behind)) {}

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

size_t WsSession::BufferedBytes() const {
  absl::MutexLock lock(&mu_);
  return connection_->get_buffered_amount() + held_bytes_;
}

void WsSession::DropHeld() {
  held_base_ += held_.size();
  std::vector<core::OutFramePtr>().swap(held_);
  held_head_ = 0;
  held_by_key_.clear();
  held_bytes_ = 0;
}

void WsSession::CloseSlow(size_t bytes) {
  if (slow_) return;
  slow_ = true;
  DropHeld();
  hub_->CountSlowConsumerClose();
  Close(core::kCloseSlowConsumer,
        absl::StrCat("slow consumer: more than ", hard_limit_, " bytes queued"));
}

bool WsSession::DoSend(const core::OutFramePtr& frame) {
  const auto& ws_frame = static_cast<const WsFrame&>(*frame);
  const size_t size = ws_frame.payload().size();
  bool started_holding = false;
  {
    absl::MutexLock lock(&mu_);
    if (slow_) return false;
    const size_t buffered = connection_->get_buffered_amount();
    // A frame larger than the soft limit still goes out whenever nothing else is queued.
    if (!Holding() && (buffered == 0 || buffered + size <= soft_limit_)) {
      return !connection_->send(ws_frame.message());
    }
    const std::string& key = frame->conflation_key();
    if (!key.empty()) {
      if (auto it = held_by_key_.find(key); it != held_by_key_.end()) {
        // A newer version of something still held: it takes the older one's place.
        core::OutFramePtr& slot = held_[it->second - held_base_];
        held_bytes_ = held_bytes_ - slot->payload().size() + size;
        slot = frame;
        conflated_.fetch_add(1, std::memory_order_relaxed);
        hub_->CountConflated();
        return true;
      }
    }
    if (buffered + held_bytes_ + size > hard_limit_) {
      CloseSlow(buffered + held_bytes_ + size);
      return false;
    }
    started_holding = !Holding();
    if (!key.empty()) held_by_key_[key] = held_base_ + held_.size();
    held_.push_back(frame);
    held_bytes_ += size;
  }
  if (started_holding && on_behind_) on_behind_(shared_from_this());
  return true;
}

bool WsSession::Flush() {
  absl::MutexLock lock(&mu_);
  if (connection_->get_state() != websocketpp::session::state::open) DropHeld();
  while (Holding() && !slow_) {
    const core::OutFramePtr& next = held_[held_head_];
    const auto& ws_frame = static_cast<const WsFrame&>(*next);
    const size_t buffered = connection_->get_buffered_amount();
    if (buffered > 0 && buffered + ws_frame.payload().size() > soft_limit_) break;
    const std::string& key = next->conflation_key();
    if (!key.empty()) {
      auto it = held_by_key_.find(key);
      if (it != held_by_key_.end() && it->second == held_base_ + held_head_) {
        held_by_key_.erase(it);
      }
    }
    held_bytes_ -= ws_frame.payload().size();
    websocketpp::lib::error_code ec = connection_->send(ws_frame.message());
    ++held_head_;
    if (ec) DropHeld();  // closing: drop what is held
  }
  if (!Holding()) {
    DropHeld();  // all sent: release the vector
  } else if (held_head_ * 2 >= held_.size()) {
    // Still behind: forget the sent prefix (sequence numbers in held_by_key_ stay valid).
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(held_head_));
    held_base_ += held_head_;
    held_head_ = 0;
  }
  return Holding() && !slow_;
}

}  // namespace herald::ws
