#ifndef HERALD_SERVER_WS_WS_SESSION_H_
#define HERALD_SERVER_WS_WS_SESSION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "asio/io_context.hpp"
#include "server/core/hub.h"
#include "server/core/session.h"
#include "server/ws/ws_config.h"
#include "server/ws/ws_connection.h"

namespace herald::ws {

class Liveness;

// A server frame (header + payload) framed once; the same WsFrame is queued on every
// subscriber's socket. Immutable once made.
class WsFrame : public core::OutFrame {
 public:
  explicit WsFrame(std::string payload,
                   websocketpp::frame::opcode::value opcode = websocketpp::frame::opcode::text);
  // Bytes that go on the wire as they are (the handshake response), not framed.
  static std::shared_ptr<WsFrame> Raw(std::string bytes);
  absl::string_view payload() const override {
    return absl::string_view(wire_).substr(header_size_);
  }
  // Header and payload, contiguous: a frame written alone is one send(), not a two-part
  // sendmsg().
  absl::string_view wire() const { return wire_; }
  size_t wire_size() const { return wire_.size(); }

 private:
  std::string wire_;
  size_t header_size_ = 0;
};

// Makes WsFrames. Stateless, thread-safe.
class WsFrameFactory : public core::FrameFactory {
 public:
  core::OutFramePtr Make(std::string payload, std::string conflation_key = "") const override;
};

// A connection of either transport: ws:// (plain TCP, Herald's own WsConnection) or wss:// (TLS,
// a websocketpp connection).
using WsConnectionPtr = std::variant<std::shared_ptr<WsConnection>, WssServer::connection_ptr>;

// core::Session over one WebSocket connection. On ws://, WsConnection reads and parses client
// frames and this session writes everything, the handshake response and the close frame
// included; on wss://, websocketpp does the handshake, reads client frames and writes the close
// frame. Either way the session writes every server frame itself from the connection's I/O
// thread, without a per-frame strand dispatch, and answers pings. On ws:// it writes straight to
// the socket (one gathered non-blocking write for whatever is queued); on wss:// it copies up to
// kTlsChunkBytes of queued frames into one buffer and
// hands that to one async_write on the SSL stream (one SSL_write, full-size TLS records), with
// at most one such write in flight. Send-side flow control:
// below Limits::soft_send_buffer_bytes of unwritten bytes frames are queued for the socket; past
// it the session holds frames, where a frame with the same conflation key replaces the older one
// (an order's newer version); past max_send_buffer_bytes (queued plus held) it closes as a slow
// consumer (4008), dropping every frame it has not started to write. A close waits until what was
// queued before it is written, so the close frame never lands inside a frame; a
// connection still open Limits::close_timeout_ms after its close was asked for (a peer that reads
// nothing, or never answers the close frame) is reset, so it is gone in bounded time. Holds the
// connection; the connection's handlers hold the session only weakly. Thread-safe: the queues
// belong to the connection's I/O thread, and calls from other threads (Send, Close) are posted to
// it, so each thread's calls keep their order; BufferedBytes reads an atomic.
class WsSession : public core::Session, public std::enable_shared_from_this<WsSession> {
 public:
  // `liveness`: the I/O thread's, which watches this session (Endpoint::Open) and keeps its
  // auth deadline.
  WsSession(core::ConnectionMeta meta, WsConnectionPtr connection, core::Hub* hub,
            asio::io_context* io, Liveness* liveness);
  // Bytes of queued frames one TLS write takes at most (a larger frame goes alone).
  static constexpr size_t kTlsChunkBytes = 64 * 1024;

  void Close(int code, absl::string_view reason) override;
  // ws:// only: queues the handshake response, ahead of everything (the welcome follows it in
  // the same write). On the I/O thread, before the session is registered.
  void QueueHandshakeResponse(std::string response);
  // ws:// only: the peer closed first with `code`; answers with a close frame carrying the same
  // code after the frames already on their way (unstarted ones are dropped), bounded by the
  // close timeout like any close. How the connection ended is then the peer's close. On the I/O
  // thread only.
  void AnswerClose(int code, absl::string_view reason);
  size_t BufferedBytes() const override;
  // Replies to a client ping (websocketpp's own pong is turned off: it would bypass the queue).
  void Pong(std::string payload);
  // Sends a WebSocket ping (Liveness: the peer has been silent). It goes ahead of every queued
  // frame not yet begun, so a long queue does not delay it. On the I/O thread only.
  void Ping();
  // The deadline goes in the connection's Liveness entry, whose sweep calls
  // ClientProtocol::CheckAuthDeadline once it has passed (at most Liveness::sweep_period() late).
  void ScheduleAuthDeadline(absl::Time deadline) override;
  // On close, on the I/O thread: cancels the close timer and drops what is queued.
  void CancelTimers();
  // The close this session started while the connection was open (code 0: none): how the
  // connection ended, also when the peer never answered it and the transport saw only a timeout
  // (1006). On the I/O thread only.
  int close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }

 protected:
  bool DoSend(const core::OutFramePtr& frame) override;

 private:
  friend class Liveness;
  static constexpr uint32_t kNotWatched = UINT32_MAX;

  bool OnIoThread() const { return io_->get_executor().running_in_this_thread(); }
  // Liveness: the auth deadline has come.
  void AuthDeadlinePassed();
  // Everything below runs on the connection's I/O thread only.
  bool SendHere(const core::OutFramePtr& frame);
  void CloseHere(int code, std::string reason);
  // Writes queued frames until done or the socket is full (then waits for it to drain), moves
  // held frames in as room frees up, and runs a pending close once everything is written.
  void Write();
  void WriteSome();
  void WriteSomeTls(WssServer::connection_type& connection);
  void WritePlain(asio::ip::tcp::socket& socket);
  websocketpp::session::state::value State() const;
  // Starts the close handshake: on ws://, queues our close frame behind what is queued; on
  // wss://, websocketpp sends it. Nothing once it has started.
  void CloseConnection(int code, const std::string& reason);
  WsTimerPtr SetTimer(long ms, std::function<void(const websocketpp::lib::error_code&)> callback);
  asio::ip::tcp::socket::lowest_layer_type& RawSocket() const;
  // Queues this session's write for the thread's next write pass (WriteScheduled), at the end of
  // the current loop turn: everything queued on it until then (a burst of publications while the
  // thread is behind) goes out in one write. When the thread's last pass was behind (it found two
  // frames or more per connection: publications come in faster than it writes) and took longer
  // than kPaceLongerThan, the next pass starts no sooner than that pass's duration after its end,
  // so what arrives meanwhile joins the same writes: fewer, larger writes (the cost of a fan-out
  // is mostly one send() per connection and pass), never more than one pass's time later. A
  // thread that keeps up writes at once.
  void ScheduleWrite();
  static void WriteScheduled();
  static constexpr std::chrono::microseconds kPaceLongerThan{1000};
  void CloseSlow();
  // Arms close_timer_: Abort() after close_timeout_ms_ unless cancelled (the connection closed).
  void ArmCloseTimer();
  // Resets the socket of a connection that did not close in time.
  void Abort();
  // Drops queued frames not yet begun on the wire (a partly written one stays).
  void DropUnstarted();
  bool Holding() const { return held_head_ < held_.size(); }
  void DropHeld();
  void DropQueued();
  void UpdateBuffered() { buffered_.store(out_bytes_ + held_bytes_, std::memory_order_relaxed); }

  const WsConnectionPtr connection_;
  core::Hub* const hub_;
  asio::io_context* const io_;
  Liveness* const liveness_;
  const size_t soft_limit_;
  const size_t hard_limit_;
  const long close_timeout_ms_;

  std::atomic<size_t> buffered_{0};      // out_bytes_ + held_bytes_, for BufferedBytes()
  std::atomic<size_t> posted_sends_{0};  // DoSend calls posted to the I/O thread, not yet run
  bool slow_ = false;
  // Frames for the socket: out_[out_head_] is written from byte out_offset_ on.
  std::vector<core::OutFramePtr> out_;
  size_t out_head_ = 0;
  size_t out_offset_ = 0;
  size_t out_bytes_ = 0;  // not yet written
  // ws://: an async_wait for the socket to drain is pending; wss://: tls_out_ is being written.
  bool awaiting_writable_ = false;
  bool write_scheduled_ = false;  // on this thread's list for the end of the loop turn
  bool write_failed_ = false;
  // This connection's entry in its thread's Liveness (which maintains it).
  uint32_t liveness_slot_ = kNotWatched;
  // A close requested while bytes were queued: done once they are written.
  bool close_pending_ = false;
  // ws://: our close frame is in out_; once out_ is written, WsConnection::CloseWritten.
  bool close_frame_queued_ = false;
  // The first close requested while the connection was open (sent now or when close_pending_
  // ends).
  int close_code_ = 0;
  std::string close_reason_;
  // Armed by the first close request: resets the socket if the connection is still open then.
  WsTimerPtr close_timer_;
  // Frames held past the soft limit (vector, not deque: an empty std::deque allocates ~600
  // bytes on every idle connection). held_[0] has sequence number held_base_; frames before
  // held_head_ have moved to out_.
  std::vector<core::OutFramePtr> held_;
  size_t held_head_ = 0;
  uint64_t held_base_ = 0;
  absl::flat_hash_map<std::string, uint64_t> held_by_key_;
  size_t held_bytes_ = 0;
  // wss:// only: the frames of the TLS write in flight, copied (empty and unallocated between
  // writes, so an idle connection pays nothing for it).
  std::string tls_out_;
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_WS_SESSION_H_
