#ifndef HERALD_SERVER_WS_WS_CONNECTION_H_
#define HERALD_SERVER_WS_WS_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "asio/ip/tcp.hpp"
#include "server/ws/frame_reader.h"

namespace herald::ws {

// The read side and the close handshake of one plain (ws://) WebSocket connection, on Herald's
// own transport: the HTTP/1.1 server read the opening handshake and handed the socket over
// (Endpoint::AcceptUpgrade). It waits for the socket to be readable, reads into the I/O thread's
// buffer (http::ThreadBuffer: an idle connection holds no read buffer), and parses client
// frames with a
// FrameReader bounded by the message limit; writing is WsSession's, which queues every frame,
// the handshake response and the close frame included, on the same socket.
//
// Closing: whoever closes first, the connection ends once both close frames have crossed (ours
// written, the peer's read), the peer broke the protocol (our close frame written), or the
// socket failed or reached EOF; then the socket is closed and Handler::OnClosed runs, once. The
// close timer that bounds all of this is WsSession's.
//
// Owns the socket and the reader; held by its WsSession and, while a read is pending, by that
// read's handler. Not thread-safe: everything runs on the I/O thread that runs the socket's
// io_context, and so do the handler's calls.
class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  // What the connection reports, on its I/O thread (Endpoint). A handler may close the connection
  // (WsSession::Close) from inside any of these.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A text or binary message, a ping or a pong; `payload` is valid during the call only.
    virtual void OnFrame(WsConnection& connection, Opcode opcode, absl::string_view payload) = 0;
    // The peer started the close handshake (its code: 1005 for none); it must be answered with a
    // close frame.
    virtual void OnPeerClose(WsConnection& connection, int code, absl::string_view reason) = 0;
    // The peer broke the protocol: close with error.close_code. Frames after it are dropped.
    virtual void OnProtocolError(WsConnection& connection, const FrameError& error) = 0;
    // The socket is closed. The last call.
    virtual void OnClosed(WsConnection& connection) = 0;
  };

  enum class State : uint8_t {
    kOpen,
    kClosing,  // our close frame is queued or written
    kClosed,
  };

  WsConnection(asio::ip::tcp::socket socket, Handler* handler, size_t max_message_bytes);
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  // Starts reading; `leftover` are bytes the HTTP server read after the handshake request.
  void Start(std::string leftover);
  State state() const { return state_; }
  asio::ip::tcp::socket& socket() { return socket_; }

  // WsSession queued our close frame: no more data frames go out.
  void MarkClosing();
  // WsSession has written our close frame: the connection ends now if the peer's close frame
  // came (or the peer broke the protocol), else when it comes.
  void CloseWritten();
  // The peer's close frame (1006 and "" when none came).
  int remote_close_code() const { return remote_close_code_; }
  const std::string& remote_close_reason() const { return remote_close_reason_; }

 private:
  void WaitReadable();
  void OnReadable(const asio::error_code& ec);
  // Parses bytes read; false once the connection is closed.
  bool Consume(char* data, size_t size);
  // Closes the socket and reports it.
  void Finish();

  // First, on the cache line of the socket's descriptor: every queued frame reads it (WsSession).
  State state_ = State::kOpen;
  asio::ip::tcp::socket socket_;
  Handler* const handler_;
  FrameReader reader_;
  std::string remote_close_reason_;
  int remote_close_code_ = 1006;
  bool close_received_ = false;  // the peer's close frame
  bool close_written_ = false;   // ours
  bool failed_ = false;          // a protocol error: what follows is not parsed
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_WS_CONNECTION_H_
