#include "server/ws/ws_connection.h"

#include <memory>
#include <utility>

#include "absl/types/span.h"
#include "server/http/thread_buffer.h"

namespace herald::ws {
namespace {

// Reads per readiness wake-up before going back to the loop, so one busy peer cannot hold its
// thread.
constexpr int kReadsPerWakeUp = 4;

}  // namespace

WsConnection::WsConnection(asio::ip::tcp::socket socket, Handler* handler, size_t max_message_bytes)
    : socket_(std::move(socket)), handler_(handler), reader_(max_message_bytes) {}

void WsConnection::Start(std::string leftover) {
  // The HTTP server made the socket non-blocking already.
  asio::error_code ec;
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  if (!leftover.empty() && !Consume(leftover.data(), leftover.size())) return;
  WaitReadable();
}

void WsConnection::WaitReadable() {
  if (state_ == State::kClosed) return;
  socket_.async_wait(
      asio::socket_base::wait_read,
      [self = shared_from_this()](const asio::error_code& ec) { self->OnReadable(ec); });
}

void WsConnection::OnReadable(const asio::error_code& ec) {
  if (state_ == State::kClosed) return;
  if (ec) return Finish();
  char* buffer = http::ThreadBuffer();
  for (int i = 0; i < kReadsPerWakeUp; ++i) {
    asio::error_code read_ec;
    const size_t n = socket_.read_some(asio::buffer(buffer, http::kThreadBufferBytes), read_ec);
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) break;
    // EOF or a reset: the peer is gone (with or without its close frame).
    if (read_ec) return Finish();
    if (!Consume(buffer, n)) return;
    if (n < http::kThreadBufferBytes) break;
  }
  WaitReadable();
}

bool WsConnection::Consume(char* data, size_t size) {
  if (state_ == State::kClosed) return false;
  // After the peer's close frame or a protocol error, what arrives is read and dropped until the
  // connection ends.
  if (close_received_ || failed_) return true;
  std::optional<FrameError> error =
      reader_.Feed(absl::MakeSpan(data, size), [this](Opcode opcode, absl::string_view payload) {
        if (opcode == Opcode::kClose) {
          std::tie(remote_close_code_, remote_close_reason_) = ParseClosePayload(payload);
          close_received_ = true;
          return false;
        }
        // Once we are closing, data is no longer read (as websocketpp did); pongs still are.
        if (state_ == State::kOpen || opcode == Opcode::kPong) {
          handler_->OnFrame(*this, opcode, payload);
        }
        return state_ != State::kClosed;
      });
  if (state_ == State::kClosed) return false;
  if (error.has_value()) {
    failed_ = true;
    if (state_ == State::kOpen) {
      handler_->OnProtocolError(*this, *error);
    } else if (close_written_) {
      Finish();
    }
  } else if (close_received_) {
    if (state_ == State::kOpen) {
      handler_->OnPeerClose(*this, remote_close_code_, remote_close_reason_);
    } else if (close_written_) {
      Finish();
    }
  }
  return state_ != State::kClosed;
}

void WsConnection::MarkClosing() {
  if (state_ == State::kOpen) state_ = State::kClosing;
}

void WsConnection::CloseWritten() {
  if (state_ == State::kClosed) return;
  close_written_ = true;
  if (close_received_ || failed_) Finish();
}

void WsConnection::Finish() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  asio::error_code ec;
  socket_.close(ec);  // a FIN (an RST if the peer's bytes are still unread)
  handler_->OnClosed(*this);
}

}  // namespace herald::ws
