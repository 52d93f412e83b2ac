#ifndef HERALD_SERVER_HTTP_SERVER_H_
#define HERALD_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "server/http/request_parser.h"

namespace herald::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Response {
  int status = 200;
  Headers headers;  // Content-Length and Connection are added by the server
  std::string body;
};

struct ServerOptions {
  ParserLimits parser;
  // A keep-alive connection with no request in progress, or a request that stops arriving
  // half-way, is closed after this long without a byte; a request head must arrive whole
  // within it.
  absl::Duration idle_timeout = absl::Seconds(30);
  // A new connection whose first request head has not arrived whole within this (counted from
  // when the connection was adopted) is closed, with nothing written: a socket opened and left
  // silent, or a head that trickles in. Once a head has begun, idle_timeout bounds it too (as it
  // bounds every head); from the first complete head on, only idle_timeout applies.
  absl::Duration first_request_timeout = absl::Seconds(30);
  // Unsent bytes past which a connection is closed (a streamed response whose reader is slow).
  size_t max_buffered_bytes = 8 * 1024 * 1024;
  // Requests read ahead of their replies on one connection; past it the server reads no more
  // from that connection until replies have gone out.
  size_t max_pipelined = 16;
};

class Connection;
struct Slot;

// Takes over a connection handed over by Exchange::Upgrade: its socket, and the bytes already
// read from it after the end of the upgrade request (the start of the new protocol).
using UpgradeHandler = std::function<void(asio::ip::tcp::socket socket, std::string leftover)>;

// The reply to one request, handed to the Handler. Thread-safe: Respond(), StartStream() and
// Upgrade() may be called from any thread, once (one of them); the connection writes the reply on
// its I/O thread when every earlier request on the connection has been answered (pipelined replies
// go out in request order). Write() and EndStream() continue a stream and must run on the
// connection's thread: call them from work given to Post(). Everything is a no-op once the
// connection is gone.
class Exchange {
 public:
  Exchange(std::weak_ptr<Connection> connection, std::shared_ptr<Slot> slot, asio::io_context* io);

  void Respond(Response response);
  // Starts a streamed response (Transfer-Encoding: chunked on HTTP/1.1; on HTTP/1.0 the body
  // runs until the connection closes). `on_closed` runs on the connection's thread when the
  // connection ends for any reason other than EndStream() (peer gone, over max_buffered_bytes,
  // idle, drain).
  void StartStream(int status, Headers headers, std::function<void()> on_closed);
  // Answers a request with `upgrade` by handing the connection over: when every earlier reply
  // has been written, the connection writes `response` (raw bytes, e.g. a whole 101 reply; ""
  // when the new owner writes it), then leaves the server (connection_count() drops, its timers
  // stop) and calls `take` on its thread with the socket and the bytes read past the request
  // (while the handler decides, the connection reads on to see the peer leave, keeping up to
  // 64 KiB).
  // `take` is not called (it is dropped on the connection's thread) when the connection is gone
  // first: the peer closed it or sent EOF, an error, a timeout. A drain begun meanwhile does not
  // stop the hand-over: the new owner decides. On a request without `upgrade` it answers 500
  // and closes instead (requests after it may have been read already).
  void Upgrade(std::string response, UpgradeHandler take);
  // Runs `work` on the connection's I/O thread.
  void Post(std::function<void()> work);
  // Sends a piece of the stream; false when the connection is gone or now closing because
  // more than max_buffered_bytes are unsent. Connection thread only.
  bool Write(absl::string_view data);
  // Ends the stream and the connection. Connection thread only.
  void EndStream();

 private:
  const std::weak_ptr<Connection> connection_;
  const std::shared_ptr<Slot> slot_;
  asio::io_context* const io_;
};

// Serves one request; answers through the exchange, now or later. Runs on the connection's I/O
// thread and must not block it.
using Handler = std::function<void(const Request& request, std::shared_ptr<Exchange> exchange)>;

// The HTTP/1.1 server of one I/O thread: serves connections handed to it (Adopt) on its
// io_context with keep-alive (HTTP/1.1 by default, HTTP/1.0 with `Connection: keep-alive`),
// pipelining (replies in request order, each written when it and all before it are ready),
// streamed responses, an idle timeout and protocol upgrades (a request with `upgrade` is the
// last one parsed on its connection; the handler either refuses it with Respond, which closes
// the connection, or hands the connection over with Exchange::Upgrade). Each request is parsed by a
// RequestParser bounded by ServerOptions::parser; a refused request gets its status and a JSON
// error, and the connection closes. Owns its connections (a connection also outlives the server
// until its pending handlers have run). Adopt() on the io_context's thread; BeginDrain() and
// connection_count() from any thread.
class Server {
 public:
  Server(asio::io_context* io, ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves an accepted socket of this server's io_context; `remote_address` is "ip:port". TCP
  // options (TCP_NODELAY, keepalive) are the caller's to set.
  void Adopt(asio::ip::tcp::socket socket, std::string remote_address);
  // From now on every reply says `Connection: close` and closes its connection; idle
  // connections close at once.
  void BeginDrain();
  size_t connection_count() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace herald::http

#endif  // HERALD_SERVER_HTTP_SERVER_H_
