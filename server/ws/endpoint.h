#ifndef HERALD_SERVER_WS_ENDPOINT_H_
#define HERALD_SERVER_WS_ENDPOINT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "server/core/hub.h"
#include "server/http/server.h"
#include "server/ws/liveness.h"
#include "server/ws/static_files.h"
#include "server/ws/tls_context.h"
#include "server/ws/ws_config.h"
#include "server/ws/ws_connection.h"
#include "server/ws/ws_session.h"

namespace herald::ws {

// A plain HTTP request on the WebSocket port, as handed to an HttpFallback. The views and the
// header lookup are valid only during the call.
struct HttpRequest {
  absl::string_view method;  // "POST"
  absl::string_view path;    // the resource without its query string
  absl::string_view query;   // the query string without '?' ("" when none)
  absl::string_view body;
  absl::string_view remote_address;  // the client's "ip:port"
  // The value of a request header ("" when absent); names are case-insensitive.
  std::function<std::string(const std::string& name)> header;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Content-Type
  std::string body;
};

// Answers a request handed to an HttpFallback. Call it exactly once, from any thread, before
// or after the fallback returns; the endpoint writes the response on the connection's I/O
// thread.
using HttpRespond = std::function<void(HttpResponse)>;

// Serves HTTP paths the endpoint does not own (everything but /healthz, /metrics and /ws).
// Returns false, without calling `respond`, for a path it does not serve either (the endpoint
// then tries static files, then answers 404); otherwise true, and answers through `respond`,
// now or later (a call that waits must not hold the I/O thread). Called on I/O threads,
// concurrently for different connections.
using HttpFallback = std::function<bool(const HttpRequest& request, HttpRespond respond)>;

// The WebSocket/HTTP listener: accepts connections, adapts each WebSocket to a WsSession in the
// hub, and serves plain HTTP (`/healthz`, `/metrics`, and other paths through an optional
// HttpFallback) on the same port.
// - Plain (ws://, http://): every accepted connection goes to this thread's HTTP/1.1 server
//   (SetPlainHandoff), which reads its requests (keep-alive, pipelining, SSE) and passes a
//   WebSocket upgrade request to AcceptUpgrade: Herald's own transport (WsConnection reads,
//   WsSession writes) takes the socket over.
// - With a TlsContext (wss://, https://): websocketpp does the TLS and WebSocket handshakes and
//   reads the frames; each connection answers one HTTP request and closes.
// Owns the websocketpp server of a TLS port and the sessions of its connections; runs on the
// caller's io_context, which exactly one thread runs (websocketpp's per-connection strands are
// compiled out, ws_config.h). Several endpoints (one per IoThreads context, `loop` = its index)
// may listen on the same port: the listener sets SO_REUSEPORT and the kernel spreads connections
// over them, so every I/O thread accepts and handshakes its own; sessions carry the loop. Each
// endpoint watches its connections for silence (Liveness: pings, then close 4010) and turns on
// TCP keepalive and TCP_NODELAY on every accepted socket (set once on the listener, which
// accepted sockets inherit on Linux; per socket where they do not). Listen() and
// StopListening() must be called from one control thread; everything else runs on the
// endpoint's I/O thread.
class Endpoint : private WsConnection::Handler {
 public:
  // With `tls`, the port speaks only TLS (wss://, https://), with tls->Current()'s certificate;
  // `tls` must outlive the endpoint.
  Endpoint(core::Hub* hub, asio::io_context* io, uint32_t loop = 0,
           const TlsContext* tls = nullptr);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Installs the handler for other HTTP paths (main.cc: the HTTP/JSON control API). Call before
  // Listen(). Without one, other paths get 404.
  void SetHttpFallback(HttpFallback fallback) { http_fallback_ = std::move(fallback); }
  // What /healthz also checks (main.cc: the Redis engine's connections): while it returns an
  // error, /healthz answers 503 with {"status":"unavailable",...}. Call before Listen(); the check
  // runs on I/O threads and must not block.
  void SetHealthCheck(std::function<absl::Status()> check) { health_check_ = std::move(check); }
  // Installs what /metrics appends after the node's metrics (main.cc: the build info and the
  // control API's metrics). Called on I/O threads, concurrently. Call before Listen().
  void SetMetricsAppender(std::function<void(std::string* out)> append) {
    metrics_appender_ = std::move(append);
  }

  // Where a plain (ws://) listener hands every connection it accepts (main.cc: the HTTP/1.1
  // server of this I/O thread, whose upgrade requests come back to AcceptUpgrade): the socket, of
  // this endpoint's io_context, and the client's "ip:port". Required on a plain endpoint; a TLS
  // endpoint ignores it. Call before Listen().
  using PlainHandoff =
      std::function<void(asio::ip::tcp::socket socket, std::string remote_address)>;
  void SetPlainHandoff(PlainHandoff handoff) { plain_handoff_ = std::move(handoff); }
  // How long a new connection may stay silent before its first request (and a wss:// one before
  // its handshake): websocketpp's open-handshake timeout.
  static constexpr std::chrono::milliseconds kHandshakeTimeout{
      std::chrono::milliseconds::rep{WssConfig::timeout_open_handshake}};

  // A WebSocket upgrade request the HTTP/1.1 server read on a plain connection: refused with its
  // status (not a valid handshake, not /ws, origin, token, connection limits: as on wss://), or
  // accepted: the socket is taken over by a WsConnection and a WsSession, which writes the 101
  // response and the `welcome` in one write. On the endpoint's I/O thread.
  void AcceptUpgrade(const http::Request& request, std::shared_ptr<http::Exchange> exchange);

  // Serves a plain HTTP request (not a WebSocket upgrade), whichever transport read it:
  // /healthz, /metrics, /ws (426), the HttpFallback's paths, static files, else 404. Answers
  // through `respond`, now or later. On I/O threads, concurrently; main.cc also routes the
  // requests the HTTP/1.1 server reads here, so a kept-alive connection may ask for any path.
  void ServeHttp(const HttpRequest& request, HttpRespond respond);

  // Binds host:port (port "0" picks a free one) and starts accepting. Loop 0 first checks that
  // no other process listens there (SO_REUSEPORT would otherwise share the port silently); the
  // other loops then join its port.
  absl::Status Listen(const std::string& host, const std::string& port);
  // The bound port after Listen().
  uint16_t local_port() const { return local_port_; }
  // The bound "host:port" after Listen().
  const std::string& local_address() const { return local_address_; }
  // Stops accepting new connections; open ones stay.
  void StopListening();
  // Serves the files below `dir` over plain HTTP (GET/HEAD) for paths no other route takes.
  // Call before Listen().
  void ServeStaticFiles(const std::string& dir);

 private:
  // What OnValidate admitted, picked up by OnOpen (wss://), or by AcceptUpgrade's hand-over
  // (ws://): the claims of a `?token=` (so each handshake token is verified once), the
  // connection-count slots (per IP, per user) the connection holds while open, the remote
  // address.
  struct Admission {
    std::shared_ptr<const auth::Claims> grant;
    core::Node::ConnectionSlots slots;
    std::string remote_address;  // "ip:port", read once (getpeername) for both handlers
  };
  // What Herald checks on every WebSocket handshake, either transport: the path, the origin, a
  // `?token=` and the connection limits. The admission, or the HTTP refusal.
  std::variant<Admission, HttpResponse> Admit(absl::string_view resource, absl::string_view origin,
                                              std::string remote_address);
  // A new session's meta from its handshake's headers and remote address.
  core::ConnectionMeta MakeMeta(std::string remote_address,
                                const std::function<std::string(const std::string&)>& header);
  // Registers a just-opened session of `connection` and starts watching it.
  void Open(const std::shared_ptr<WsSession>& session, const void* connection, Admission admission);
  // What every open session's client sends, either transport.
  void OnMessage(const std::shared_ptr<WsSession>& session, bool text, absl::string_view payload);
  // A closed connection's session leaves the node: how it ended is the close Herald started if
  // any (also when the peer never answered it), else the peer's (`code`, `reason`).
  void Closed(const std::shared_ptr<WsSession>& session, int code, absl::string_view reason);
  // The open session of a connection (null before open and after close or fail).
  std::shared_ptr<WsSession> SessionOf(const void* connection) const;
  // Removes and returns it.
  std::shared_ptr<WsSession> TakeSession(const void* connection);

  // ws:// (Herald's transport): the listener, and WsConnection::Handler.
  absl::Status ListenPlain(const std::string& host, const std::string& port);
  void AcceptNext();
  void OnFrame(WsConnection& connection, Opcode opcode, absl::string_view payload) override;
  void OnPeerClose(WsConnection& connection, int code, absl::string_view reason) override;
  void OnProtocolError(WsConnection& connection, const FrameError& error) override;
  void OnClosed(WsConnection& connection) override;

  // wss:// (websocketpp): its handlers.
  void InitTls(const TlsContext* tls);
  bool OnValidate(websocketpp::connection_hdl hdl);
  void OnOpen(websocketpp::connection_hdl hdl);
  void OnHttp(websocketpp::connection_hdl hdl);
  void OnClose(websocketpp::connection_hdl hdl);
  void OnFail(websocketpp::connection_hdl hdl);
  // Answers a deferred HTTP response of `con`, from any thread.
  HttpRespond DeferredResponder(const WssServer::connection_ptr& con);
  Admission TakeAdmission(const void* connection);

  // Answers /metrics once the engine has answered ListQueues.
  void ServeMetrics(HttpRespond respond);
  // A GET/HEAD for a file below --static-dir, or a CORS preflight (OPTIONS) for one, with
  // `Access-Control-Allow-Origin: *`; 405 with `Allow` for another method on one; nullopt when
  // there is no such file.
  std::optional<HttpResponse> StaticFile(const HttpRequest& request) const;
  void SetTcpOptions(asio::ip::tcp::socket::lowest_layer_type& socket) const;
  // Sets the TCP options on a listening socket, for the sockets it accepts to inherit.
  void SetListenerTcpOptions(asio::ip::tcp::acceptor& acceptor) const;
  // Sets them on an accepted socket unless it inherited them from the listener (checked on the
  // first accepted socket: TCP_KEEPIDLE as configured).
  void EnsureTcpOptions(asio::ip::tcp::socket::lowest_layer_type& socket);

  core::Hub* const hub_;
  const uint32_t loop_;
  // The wss:// server (null on a plain endpoint).
  std::unique_ptr<WssServer> tls_;
  uint16_t local_port_ = 0;
  HttpFallback http_fallback_;
  std::function<absl::Status()> health_check_;
  std::function<void(std::string* out)> metrics_appender_;
  std::string local_address_;
  asio::io_context* const io_;
  // wss://: what OnValidate admitted until OnOpen, by connection. OnValidate first erases its
  // connection's entry, so a stale entry can never reach a later connection at the same address;
  // the fail handler drops the entry of a connection that fails before open, which gives its
  // slots back.
  absl::Mutex grants_mu_;
  absl::flat_hash_map<const void*, Admission> grants_ ABSL_GUARDED_BY(grants_mu_);
  std::unique_ptr<const StaticFiles> static_files_;
  PlainHandoff plain_handoff_;
  // The listener of a plain endpoint (websocketpp's own on TLS).
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  asio::ip::tcp::endpoint peer_;  // the address of the connection being accepted
  // This thread's connections, by when they were last heard from. Touched only on the I/O thread.
  Liveness liveness_;
  // The open sessions by connection (a WsConnection, or a websocketpp connection), for the
  // endpoint-wide handlers: one map entry per connection instead of five handlers (each a
  // heap-allocated std::function) set on every websocketpp connection. Weak: the hub's table
  // owns the sessions. Touched only on the I/O thread.
  absl::flat_hash_map<const void*, std::weak_ptr<WsSession>> sessions_;
  // Whether accepted sockets inherit the listener's TCP options (unknown until the first).
  enum class Inherit : uint8_t { kUnknown, kYes, kNo };
  Inherit tcp_options_inherited_ = Inherit::kUnknown;
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_ENDPOINT_H_
