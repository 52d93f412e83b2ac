#include "server/ws/ws_session.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/write.hpp"
#include "server/core/protocol.h"
#include "server/ws/liveness.h"

namespace herald::ws {

WsFrame::WsFrame(std::string payload, websocketpp::frame::opcode::value opcode) {
  // websocketpp's _htonll (used by extended_header) sets a function-local static on first use
  // without synchronization, and frames are made on every I/O and gRPC thread: TSan reported the
  // race. A magic static runs that first use once, ordered before every other.
  static const bool htonll_ready = (websocketpp::lib::net::_htonll(0), true);
  (void)htonll_ready;
  namespace frame = websocketpp::frame;
  const uint64_t size = payload.size();
  const std::string header =
      frame::prepare_header(frame::basic_header(opcode, size, /*fin=*/true, /*mask=*/false),
                            frame::extended_header(size));
  header_size_ = header.size();
  wire_.reserve(header.size() + payload.size());
  wire_.append(header).append(payload);
}

std::shared_ptr<WsFrame> WsFrame::Raw(std::string bytes) {
  auto frame = std::make_shared<WsFrame>(std::string());
  frame->header_size_ = 0;
  frame->wire_ = std::move(bytes);
  return frame;
}

core::OutFramePtr WsFrameFactory::Make(std::string payload, std::string conflation_key) const {
  auto frame = std::make_shared<WsFrame>(std::move(payload));
  frame->set_conflation_key(std::move(conflation_key));
  return frame;
}

WsSession::WsSession(core::ConnectionMeta meta, WsConnectionPtr connection, core::Hub* hub,
                     asio::io_context* io, Liveness* liveness)
    : core::Session(std::move(meta)),
      connection_(std::move(connection)),
      hub_(hub),
      io_(io),
      liveness_(liveness),
      soft_limit_(hub->limits().soft_send_buffer_bytes),
      hard_limit_(hub->limits().max_send_buffer_bytes),
      close_timeout_ms_(static_cast<long>(hub->limits().close_timeout_ms)) {}

void WsSession::Close(int code, absl::string_view reason) {
  if (OnIoThread()) return CloseHere(code, std::string(reason));
  asio::post(*io_, [self = shared_from_this(), code, reason = std::string(reason)]() mutable {
    self->CloseHere(code, std::move(reason));
  });
}

void WsSession::CloseHere(int code, std::string reason) {
  if (close_pending_ || close_timer_ != nullptr) return;
  ArmCloseTimer();
  const bool open = State() == websocketpp::session::state::open;
  if (open) {
    // This close decides how the connection ends, even when the peer never answers it.
    close_code_ = code;
    close_reason_ = reason;
  }
  if (open && (out_bytes_ > 0 || awaiting_writable_) && !write_failed_) {
    // websocketpp writes the close frame itself: only once our bytes are all out.
    close_pending_ = true;
    DropHeld();
    return;
  }
  CloseConnection(code, reason);
}

void WsSession::QueueHandshakeResponse(std::string response) {
  const core::OutFramePtr frame = WsFrame::Raw(std::move(response));
  out_.insert(out_.begin() + static_cast<std::ptrdiff_t>(out_head_), frame);
  out_bytes_ += static_cast<const WsFrame&>(*frame).wire_size();
  UpdateBuffered();
  ScheduleWrite();
}

void WsSession::AnswerClose(int code, absl::string_view reason) {
  if (close_pending_ || close_timer_ != nullptr) return;
  ArmCloseTimer();
  DropHeld();
  DropUnstarted();
  CloseConnection(code, std::string(reason));
}

void WsSession::ArmCloseTimer() {
  // However the peer behaves (reads nothing, never answers the close frame), the connection is
  // gone within close_timeout: then its socket is reset.
  close_timer_ = SetTimer(close_timeout_ms_,
                          [weak = weak_from_this()](const websocketpp::lib::error_code& ec) {
                            if (ec) return;  // cancelled: the connection closed in time
                            if (std::shared_ptr<WsSession> s = weak.lock()) s->Abort();
                          });
}

void WsSession::Abort() {
  if (State() == websocketpp::session::state::closed) return;
  close_pending_ = false;
  DropHeld();
  DropQueued();
  // RST instead of FIN, dropping what the kernel still holds for the peer; the shutdown ends
  // websocketpp's pending read, which closes the connection and runs its close handler.
  asio::ip::tcp::socket::lowest_layer_type& socket = RawSocket();
  asio::error_code ec;
  socket.set_option(asio::socket_base::linger(true, 0), ec);
  socket.shutdown(asio::socket_base::shutdown_both, ec);
}

void WsSession::ScheduleAuthDeadline(absl::Time deadline) {
  // Far deadlines are checked daily (the check re-arms); a millisecond past the deadline, so that
  // the check does not find it a hair early and wait another sweep.
  const absl::Duration wait =
      std::clamp(deadline - hub_->Now(), absl::ZeroDuration(), absl::Hours(24));
  const int64_t due =
      Liveness::NowMs() + absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))) + 1;
  if (OnIoThread()) return liveness_->SetDeadline(*this, due);
  asio::post(*io_, [weak = weak_from_this(), due] {
    if (std::shared_ptr<WsSession> s = weak.lock()) s->liveness_->SetDeadline(*s, due);
  });
}

void WsSession::AuthDeadlinePassed() { hub_->protocol().CheckAuthDeadline(shared_from_this()); }

void WsSession::CancelTimers() {
  if (!OnIoThread()) return;
  if (close_timer_ != nullptr) {
    asio::error_code ignored;
    close_timer_->cancel(ignored);
    close_timer_ = nullptr;
  }
  DropHeld();
  DropQueued();
}

size_t WsSession::BufferedBytes() const { return buffered_.load(std::memory_order_relaxed); }

void WsSession::DropHeld() {
  held_base_ += held_.size();
  std::vector<core::OutFramePtr>().swap(held_);
  held_head_ = 0;
  held_by_key_.clear();
  held_bytes_ = 0;
  UpdateBuffered();
}

void WsSession::DropQueued() {
  std::vector<core::OutFramePtr>().swap(out_);
  out_head_ = 0;
  out_offset_ = 0;
  out_bytes_ = 0;
  UpdateBuffered();
}

void WsSession::DropUnstarted() {
  // A frame partly on the wire must be finished before websocketpp's close frame can follow it.
  const size_t keep = out_head_ < out_.size() && out_offset_ > 0 ? out_head_ + 1 : out_head_;
  for (size_t i = keep; i < out_.size(); ++i) {
    out_bytes_ -= static_cast<const WsFrame&>(*out_[i]).wire_size();
  }
  out_.resize(keep);
  UpdateBuffered();
}

void WsSession::CloseSlow() {
  if (slow_) return;
  slow_ = true;
  DropHeld();
  // What it has not started to receive it will never get: the close goes out after at most the
  // rest of one frame, and the memory is free now.
  DropUnstarted();
  core::NodeCounters::Bump(hub_->node().counters().slow_consumer_closes);
  CloseHere(core::kCloseSlowConsumer,
            absl::StrCat("slow consumer: more than ", hard_limit_, " bytes queued"));
}

void WsSession::Pong(std::string payload) {
  SendHere(std::make_shared<WsFrame>(std::move(payload), websocketpp::frame::opcode::pong));
}

void WsSession::Ping() {
  if (slow_ || close_pending_ || write_failed_ || State() != websocketpp::session::state::open) {
    return;
  }
  // Immutable, so one frame serves every connection of every thread.
  static const core::OutFramePtr kPing =
      std::make_shared<WsFrame>(std::string(), websocketpp::frame::opcode::ping);
  // A control frame may go between any two of our frames (each is a whole message), but not
  // inside the one partly on the wire.
  const size_t at = out_head_ + (out_offset_ > 0 ? 1 : 0);
  out_.insert(out_.begin() + static_cast<std::ptrdiff_t>(at), kPing);
  out_bytes_ += static_cast<const WsFrame&>(*kPing).wire_size();
  UpdateBuffered();
  ScheduleWrite();
}

namespace {

// This I/O thread's write passes (WriteScheduled): the sessions with bytes to write at the end
// of the loop turn, frames queued for the socket since the last pass, and when that pass ended,
// how long it took and whether it was behind.
thread_local std::vector<std::shared_ptr<WsSession>> t_write_list;
thread_local size_t t_frames_queued = 0;
thread_local std::chrono::steady_clock::time_point t_pass_end;
thread_local std::chrono::steady_clock::duration t_pass_took{};
thread_local bool t_pass_behind = false;

}  // namespace

bool WsSession::DoSend(const core::OutFramePtr& frame) {
  // On the I/O thread, at once — unless frames another thread queued are still on their way
  // here: then behind them, so that a session's frames go out in the order they were queued
  // (a `connected` a backend's answer queued stays ahead of the `pong` to a frame sent after it).
  if (OnIoThread() && posted_sends_.load(std::memory_order_acquire) == 0) return SendHere(frame);
  // Another thread (a gRPC handler, the hub's ticker): the socket belongs to the I/O thread.
  posted_sends_.fetch_add(1, std::memory_order_acq_rel);
  asio::post(*io_, [self = shared_from_this(), frame] {
    self->posted_sends_.fetch_sub(1, std::memory_order_acq_rel);
    self->SendHere(frame);
  });
  return true;
}

bool WsSession::SendHere(const core::OutFramePtr& frame) {
  if (slow_ || close_pending_ || write_failed_ || State() != websocketpp::session::state::open) {
    return false;
  }
  const size_t size = static_cast<const WsFrame&>(*frame).wire_size();
  // A frame larger than the soft limit still goes out whenever nothing else is queued.
  if (!Holding() && (out_bytes_ == 0 || out_bytes_ + size <= soft_limit_)) {
    ++t_frames_queued;
    out_.push_back(frame);
    out_bytes_ += size;
    UpdateBuffered();
    ScheduleWrite();
    return true;
  }
  const std::string& key = frame->conflation_key();
  if (!key.empty()) {
    if (auto it = held_by_key_.find(key); it != held_by_key_.end()) {
      // A newer version of something still held: it takes the older one's place.
      core::OutFramePtr& slot = held_[it->second - held_base_];
      held_bytes_ = held_bytes_ - static_cast<const WsFrame&>(*slot).wire_size() + size;
      slot = frame;
      UpdateBuffered();
      core::NodeCounters::Bump(hub_->node().counters().conflated);
      return true;
    }
  }
  if (out_bytes_ + held_bytes_ + size > hard_limit_) {
    CloseSlow();
    return false;
  }
  if (!key.empty()) held_by_key_[key] = held_base_ + held_.size();
  held_.push_back(frame);
  held_bytes_ += size;
  UpdateBuffered();
  return true;
}

void WsSession::ScheduleWrite() {
  if (write_scheduled_ || awaiting_writable_) return;
  write_scheduled_ = true;
  if (t_write_list.empty()) {
    const auto due = t_pass_end + t_pass_took;
    if (!t_pass_behind || t_pass_took < kPaceLongerThan ||
        std::chrono::steady_clock::now() >= due) {
      asio::post(*io_, &WsSession::WriteScheduled);
    } else {
      // Behind: the next pass waits as long as the last one took, so what arrives meanwhile
      // goes out in the same writes.
      auto timer = std::make_shared<asio::steady_timer>(*io_, due);
      timer->async_wait([timer](const asio::error_code&) { WriteScheduled(); });
    }
  }
  t_write_list.push_back(shared_from_this());
}

void WsSession::WriteScheduled() {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<WsSession>> sessions;
  sessions.swap(t_write_list);
  for (const std::shared_ptr<WsSession>& s : sessions) {
    s->write_scheduled_ = false;
    if (!s->awaiting_writable_) s->Write();
  }
  t_pass_end = std::chrono::steady_clock::now();
  t_pass_took = t_pass_end - start;
  // Two frames or more per connection: publications came in faster than the thread wrote.
  t_pass_behind = t_frames_queued >= 2 * sessions.size();
  t_frames_queued = 0;
}

void WsSession::Write() {
  for (;;) {
    WriteSome();
    if (write_failed_ || awaiting_writable_ || !Holding() || slow_) break;
    // Room again: move held frames (newest versions only) to the socket queue.
    while (Holding()) {
      const core::OutFramePtr& next = held_[held_head_];
      const size_t size = static_cast<const WsFrame&>(*next).wire_size();
      if (out_bytes_ > 0 && out_bytes_ + size > soft_limit_) break;
      const std::string& key = next->conflation_key();
      if (!key.empty()) {
        auto it = held_by_key_.find(key);
        if (it != held_by_key_.end() && it->second == held_base_ + held_head_) {
          held_by_key_.erase(it);
        }
      }
      held_bytes_ -= size;
      out_bytes_ += size;
      out_.push_back(std::move(held_[held_head_]));
      ++held_head_;
    }
    if (!Holding()) {
      DropHeld();  // all moved: release the vector
    } else if (held_head_ * 2 >= held_.size()) {
      // Still behind: forget the moved prefix (sequence numbers in held_by_key_ stay valid).
      held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(held_head_));
      held_base_ += held_head_;
      held_head_ = 0;
    }
    UpdateBuffered();
  }
  if (close_pending_ && out_bytes_ == 0 && !awaiting_writable_) {
    close_pending_ = false;
    CloseConnection(close_code_, close_reason_);
  }
  if (close_frame_queued_ && out_bytes_ == 0 && !awaiting_writable_ && !write_failed_) {
    close_frame_queued_ = false;
    std::get<std::shared_ptr<WsConnection>>(connection_)->CloseWritten();
  }
}

void WsSession::WriteSome() {
  if (auto* tls = std::get_if<WssServer::connection_ptr>(&connection_)) {
    WriteSomeTls(**tls);
  } else {
    WritePlain(std::get<std::shared_ptr<WsConnection>>(connection_)->socket());
  }
  if (out_head_ == out_.size()) {
    if (out_.capacity() > 4) {
      std::vector<core::OutFramePtr>().swap(out_);
    } else {
      out_.clear();
    }
    out_head_ = 0;
  }
  UpdateBuffered();
}

void WsSession::WriteSomeTls(WssServer::connection_type& connection) {
  // Whole frames only, so every frame is either still queued (a ping may go before it, a close
  // may drop it) or in this write; out_offset_ stays 0.
  while (out_head_ < out_.size()) {
    const auto& f = static_cast<const WsFrame&>(*out_[out_head_]);
    if (!tls_out_.empty() && tls_out_.size() + f.wire_size() > kTlsChunkBytes) break;
    tls_out_.append(f.wire().data(), f.wire().size());
    out_bytes_ -= f.wire_size();
    out_[out_head_++].reset();
  }
  if (tls_out_.empty()) return;
  awaiting_writable_ = true;
  // The handler holds the session (and so the connection and its SSL stream) until the write
  // ends: the stream and the buffer must outlive it. A reset (Abort) or a dead peer ends it.
  asio::async_write(connection.get_socket(), asio::buffer(tls_out_),
                    [self = shared_from_this()](const asio::error_code& ec, size_t) {
                      self->awaiting_writable_ = false;
                      if (self->out_head_ == self->out_.size()) {
                        std::string().swap(self->tls_out_);  // idle again: free the buffer
                      } else {
                        self->tls_out_.clear();
                      }
                      if (ec) {
                        self->write_failed_ = true;
                        self->DropQueued();
                        return;
                      }
                      self->Write();
                    });
}

void WsSession::WritePlain(asio::ip::tcp::socket& socket) {
  // One write per turn: send() for a lone frame (the usual fan-out case), else one gathered
  // sendmsg() of up to 64 frames.
  static thread_local std::vector<asio::const_buffer> iov;
  while (out_head_ < out_.size()) {
    iov.clear();
    for (size_t i = out_head_; i < out_.size() && iov.size() < 64; ++i) {
      absl::string_view wire = static_cast<const WsFrame&>(*out_[i]).wire();
      if (i == out_head_) wire.remove_prefix(out_offset_);
      if (!wire.empty()) iov.emplace_back(wire.data(), wire.size());
    }
    asio::error_code ec;
    size_t written =
        iov.size() == 1 ? socket.write_some(iov.front(), ec) : socket.write_some(iov, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      if (out_head_ * 2 >= out_.size()) {  // forget what is written
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
        out_head_ = 0;
      }
      awaiting_writable_ = true;
      socket.async_wait(asio::socket_base::wait_write,
                        [weak = weak_from_this()](const asio::error_code& wait_ec) {
                          std::shared_ptr<WsSession> s = weak.lock();
                          if (s == nullptr) return;
                          s->awaiting_writable_ = false;
                          if (wait_ec) {
                            s->write_failed_ = true;
                            s->DropQueued();
                            return;
                          }
                          s->Write();
                        });
      break;
    }
    if (ec) {
      // The peer is gone; websocketpp's reader sees it too and runs the close handler.
      write_failed_ = true;
      DropQueued();
      return;
    }
    out_bytes_ -= written;
    while (written > 0) {
      const size_t rest = static_cast<const WsFrame&>(*out_[out_head_]).wire_size() - out_offset_;
      if (written < rest) {
        out_offset_ += written;
        break;
      }
      written -= rest;
      out_[out_head_++].reset();
      out_offset_ = 0;
    }
  }
}

websocketpp::session::state::value WsSession::State() const {
  if (const auto* plain = std::get_if<std::shared_ptr<WsConnection>>(&connection_)) {
    switch ((*plain)->state()) {
      case WsConnection::State::kOpen:
        return websocketpp::session::state::open;
      case WsConnection::State::kClosing:
        return websocketpp::session::state::closing;
      case WsConnection::State::kClosed:
        return websocketpp::session::state::closed;
    }
  }
  return std::get<WssServer::connection_ptr>(connection_)->get_state();
}

namespace {

// A close frame's payload: the code and the reason (RFC 6455 §5.5.1), none for 1005 ("no status
// received", which must not go on the wire), the reason cut to fit 125 bytes.
std::string ClosePayload(int code, const std::string& reason) {
  if (code == 1005 || code == 1006 || code == 1015 || code <= 0) return std::string();
  std::string payload;
  payload.push_back(static_cast<char>((code >> 8) & 0xff));
  payload.push_back(static_cast<char>(code & 0xff));
  payload.append(reason, 0, std::min<size_t>(reason.size(), 123));
  return payload;
}

}  // namespace

void WsSession::CloseConnection(int code, const std::string& reason) {
  if (auto* plain = std::get_if<std::shared_ptr<WsConnection>>(&connection_)) {
    if ((*plain)->state() != WsConnection::State::kOpen) return;
    (*plain)->MarkClosing();
    auto frame =
        std::make_shared<WsFrame>(ClosePayload(code, reason), websocketpp::frame::opcode::close);
    out_bytes_ += frame->wire_size();
    out_.push_back(std::move(frame));
    close_frame_queued_ = true;
    UpdateBuffered();
    ScheduleWrite();
    return;
  }
  websocketpp::lib::error_code ec;  // invalid_state when already closing: nothing to do.
  std::get<WssServer::connection_ptr>(connection_)
      ->close(static_cast<websocketpp::close::status::value>(code), reason, ec);
}

WsTimerPtr WsSession::SetTimer(long ms,
                               std::function<void(const websocketpp::lib::error_code&)> callback) {
  if (std::holds_alternative<std::shared_ptr<WsConnection>>(connection_)) {
    auto timer = std::make_shared<asio::steady_timer>(*io_, std::chrono::milliseconds(ms));
    timer->async_wait(std::move(callback));
    return timer;
  }
  return std::get<WssServer::connection_ptr>(connection_)->set_timer(ms, std::move(callback));
}

asio::ip::tcp::socket::lowest_layer_type& WsSession::RawSocket() const {
  if (const auto* plain = std::get_if<std::shared_ptr<WsConnection>>(&connection_)) {
    return (*plain)->socket();
  }
  return std::get<WssServer::connection_ptr>(connection_)->get_raw_socket();
}

}  // namespace herald::ws
