#include "server/ws/endpoint.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>

#include <memory>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "server/core/metrics.h"
#include "server/core/protocol.h"
#include "server/core/validation.h"
#include "server/http/percent_decode.h"
#include "server/ws/handshake.h"
#include "server/ws/ws_session.h"

namespace herald::ws {
namespace {

using websocketpp::connection_hdl;
namespace wspp_http = websocketpp::http;

// "ip:port", "[ip6]:port". An IPv4 address is written from its bytes: asio's to_string goes
// through inet_ntop's sprintf, three times as long (about 0.3 µs per accepted connection).
std::string HostPort(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  if (address.is_v4()) {
    const asio::ip::address_v4::bytes_type b = address.to_v4().to_bytes();
    return absl::StrCat(b[0], ".", b[1], ".", b[2], ".", b[3], ":", endpoint.port());
  }
  return absl::StrCat("[", address.to_string(), "]:", endpoint.port());
}

absl::string_view PathOf(absl::string_view resource) {
  return resource.substr(0, resource.find('?'));
}

// The percent-decoded value of query parameter `name` ("" when absent).
std::string QueryParam(absl::string_view resource, absl::string_view name) {
  const size_t q = resource.find('?');
  if (q == absl::string_view::npos) return "";
  for (absl::string_view pair : absl::StrSplit(resource.substr(q + 1), '&')) {
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name || eq == absl::string_view::npos) continue;
    return ::herald::http::PercentDecode(pair.substr(eq + 1));
  }
  return "";
}

// RFC 9112 §6.3: a request whose body length is ambiguous must be refused and its connection
// closed, or a proxy in front of Herald and Herald could split the byte stream differently
// (request smuggling). websocketpp joins repeated headers with ", " and reads the body by
// strtoul() of Content-Length, so "5, 10" would read 5 bytes: that and every other value that is
// not one plain decimal number is refused here, before any route sees the request.
std::optional<absl::string_view> FramingError(const ReleasableRequest& request) {
  const std::string& length = request.get_header("Content-Length");
  const std::string& encoding = request.get_header("Transfer-Encoding");
  if (!length.empty() && !encoding.empty()) {
    return "both Content-Length and Transfer-Encoding";
  }
  if (!length.empty() && (length.size() > 18 || !absl::c_all_of(length, absl::ascii_isdigit))) {
    return "Content-Length is not one decimal number";
  }
  if (!encoding.empty() && !absl::EqualsIgnoreCase(encoding, "chunked")) {
    return "Transfer-Encoding other than chunked";
  }
  return std::nullopt;
}

// Sends a deferred HTTP response.
void WriteDeferred(WssServer::connection_type& con, const HttpResponse& reply) {
  // websocketpp has no non-throwing form of these setters; they throw only when the connection
  // has already been torn down (shutdown), and then there is nobody to answer.
  try {
    con.set_status(static_cast<wspp_http::status_code::value>(reply.status));
    // The body first: set_body sets Content-Length, which a HEAD reply's header then overrides.
    con.set_body(reply.body);
    for (const auto& [name, value] : reply.headers) con.replace_header(name, value);
  } catch (const websocketpp::exception&) {
    return;
  }
  websocketpp::lib::error_code ec;
  con.send_http_response(ec);
}

}  // namespace

Endpoint::Endpoint(core::Hub* hub, asio::io_context* io, uint32_t loop, const TlsContext* tls)
    : hub_(hub),
      loop_(loop),
      io_(io),
      liveness_(io, absl::Milliseconds(hub->limits().ping_interval_ms),
                absl::Milliseconds(hub->limits().idle_timeout_ms),
                hub->protocol().auth_required() ? absl::Milliseconds(hub->limits().auth_timeout_ms)
                                                : absl::ZeroDuration()) {
  if (tls != nullptr) InitTls(tls);
}

void Endpoint::InitTls(const TlsContext* tls) {
  tls_ = std::make_unique<WssServer>();
  WssServer& server = *tls_;
  // Each handshake takes the certificate current then (a SIGHUP reload swaps it).
  server.set_tls_init_handler([tls](connection_hdl) { return tls->Current(); });
  // websocketpp makes each connection, SSL object included, before it accepts a socket for
  // it, so the next connection of every endpoint was made with the context current then and
  // would present the old certificate after a reload. Just accepted, before its handshake, it
  // switches to the current one (as an SNI callback would; the SSL holds a reference to it).
  server.set_tcp_pre_init_handler([this, tls](connection_hdl hdl) {
    websocketpp::lib::error_code ec;
    WssServer::connection_ptr con = tls_->get_con_from_hdl(hdl, ec);
    if (ec) return;
    SSL* ssl = con->get_socket().native_handle();
    const std::shared_ptr<asio::ssl::context> current = tls->Current();
    if (SSL_get_SSL_CTX(ssl) != current->native_handle()) {
      SSL_set_SSL_CTX(ssl, current->native_handle());
    }
  });
  websocketpp::lib::error_code ec;
  server.init_asio(io_, ec);  // Only fails when called twice.
  server.set_reuse_addr(true);
  server.set_tcp_pre_bind_handler([this](WssServer::transport_type::acceptor_ptr acceptor) {
    using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    asio::error_code aec;
    acceptor->set_option(ReusePort(true), aec);
    if (!aec) SetListenerTcpOptions(*acceptor);
    return websocketpp::lib::error_code(aec.value(), aec.category());
  });
  server.set_max_message_size(hub_->limits().max_frame_bytes);
  server.set_close_handshake_timeout(static_cast<long>(hub_->limits().close_timeout_ms));
  // websocketpp checks Content-Length against this before reading the body and answers 413
  // itself (its parser gives us no hook to write the body of that reply).
  server.set_max_http_body_size(hub_->limits().max_http_body_bytes);
  server.set_validate_handler([this](connection_hdl hdl) { return OnValidate(hdl); });
  server.set_open_handler([this](connection_hdl hdl) { OnOpen(hdl); });
  server.set_http_handler([this](connection_hdl hdl) { OnHttp(hdl); });
  // The handlers of open connections, endpoint-wide: websocketpp copies them into each
  // connection, and a lambda of one pointer is stored there without an allocation. Each finds
  // its session in sessions_ (one map entry per connection).
  server.set_message_handler([this](connection_hdl hdl, WsMessagePtr msg) {
    std::shared_ptr<WsSession> s = SessionOf(hdl.lock().get());
    if (s == nullptr) return;  // already unregistered: closing
    OnMessage(s, msg->get_opcode() == websocketpp::frame::opcode::text, msg->get_payload());
  });
  // Pongs go through the session's queue too: websocketpp's own would bypass it.
  server.set_ping_handler([this](connection_hdl hdl, std::string payload) {
    if (std::shared_ptr<WsSession> s = SessionOf(hdl.lock().get())) {
      liveness_.Heard(*s);
      s->Pong(std::move(payload));
    }
    return false;
  });
  // The answer to Liveness's ping (or any unsolicited pong: it still shows the peer is there).
  server.set_pong_handler([this](connection_hdl hdl, std::string) {
    if (std::shared_ptr<WsSession> s = SessionOf(hdl.lock().get())) liveness_.Heard(*s);
  });
  server.set_close_handler([this](connection_hdl hdl) { OnClose(hdl); });
  server.set_fail_handler([this](connection_hdl hdl) { OnFail(hdl); });
  server.set_tcp_post_init_handler([this](connection_hdl hdl) {
    websocketpp::lib::error_code ec;
    WssServer::connection_ptr con = tls_->get_con_from_hdl(hdl, ec);
    if (ec) return;
    EnsureTcpOptions(con->get_raw_socket());
  });
}

absl::Status Endpoint::Listen(const std::string& host, const std::string& port) {
  websocketpp::lib::error_code ec;
  if (loop_ == 0 && port != "0") {
    // A plain bind (SO_REUSEADDR only) fails on a port someone listens on.
    asio::io_context probe_io;
    asio::ip::tcp::resolver resolver(probe_io);
    asio::error_code aec;
    auto results = resolver.resolve(host, port, aec);
    if (!aec && !results.empty()) {
      asio::ip::tcp::acceptor probe(probe_io);
      const asio::ip::tcp::endpoint ep = results.begin()->endpoint();
      probe.open(ep.protocol(), aec);
      probe.set_option(asio::socket_base::reuse_address(true), aec);
      if (probe.bind(ep, aec); aec) {
        return absl::UnavailableError(
            absl::StrCat("cannot listen on ", host, ":", port, ": ", aec.message()));
      }
    }
  }
  if (tls_ == nullptr) return ListenPlain(host, port);
  tls_->listen(host, port, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", ec.message()));
  }
  tls_->start_accept(ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot accept: ", ec.message()));
  asio::error_code aec;
  asio::ip::tcp::endpoint local = tls_->get_local_endpoint(aec);
  if (aec) return absl::UnavailableError(absl::StrCat("cannot read bound port: ", aec.message()));
  local_port_ = local.port();
  local_address_ = HostPort(local);
  return absl::OkStatus();
}

void Endpoint::StopListening() {
  if (acceptor_ != nullptr) {
    asio::error_code aec;
    acceptor_->close(aec);
    return;
  }
  websocketpp::lib::error_code ec;
  if (tls_ != nullptr) tls_->stop_listening(ec);
}

namespace {

using KeepIdle = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>;
using KeepInterval = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
using KeepCount = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
using DeferAccept = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_DEFER_ACCEPT>;

// TCP_NODELAY, and keepalive with the configured timing: a peer that vanished without a FIN (a
// phone off the network) is found by the kernel even where no WebSocket ping would find it:
// idle_timeout_ms 0, or a socket that never finishes its handshake.
template <typename Socket>
void SetTcpOptionsOn(Socket& socket, const core::Limits& limits) {
  asio::error_code aec;
  socket.set_option(asio::ip::tcp::no_delay(true), aec);
  socket.set_option(asio::socket_base::keep_alive(true), aec);
  socket.set_option(KeepIdle(static_cast<int>(limits.tcp_keepalive_idle_s)), aec);
  socket.set_option(KeepInterval(static_cast<int>(limits.tcp_keepalive_interval_s)), aec);
  socket.set_option(KeepCount(static_cast<int>(limits.tcp_keepalive_count)), aec);
}

}  // namespace

void Endpoint::SetTcpOptions(asio::ip::tcp::socket::lowest_layer_type& socket) const {
  SetTcpOptionsOn(socket, hub_->limits());
}

void Endpoint::SetListenerTcpOptions(asio::ip::tcp::acceptor& acceptor) const {
  SetTcpOptionsOn(acceptor, hub_->limits());
  // A connection is accepted once its first bytes (the request, or a TLS hello) have arrived, as
  // nginx's `listen … deferred`: accept and first read are one wake-up, where one connection in
  // three or more used to be accepted before its request, read in vain and waited for (a recv
  // and an epoll_ctl more). A peer that sends nothing is accepted after about a second anyway
  // (the kernel's first SYN-ACK retransmission), and first_request_timeout then runs as before.
  asio::error_code aec;
  acceptor.set_option(DeferAccept(1), aec);
}

void Endpoint::EnsureTcpOptions(asio::ip::tcp::socket::lowest_layer_type& socket) {
  if (tcp_options_inherited_ == Inherit::kUnknown) {
    // Linux copies these from the listener into every socket it accepts: five setsockopt calls
    // fewer per connection. Checked once, on the first socket, in case a kernel does not.
    const core::Limits& limits = hub_->limits();
    asio::error_code aec;
    asio::ip::tcp::no_delay no_delay;
    asio::socket_base::keep_alive keep_alive;
    KeepIdle idle;
    KeepCount count;
    socket.get_option(no_delay, aec);
    if (!aec) socket.get_option(keep_alive, aec);
    if (!aec) socket.get_option(idle, aec);
    if (!aec) socket.get_option(count, aec);
    const bool inherited = !aec && no_delay.value() && keep_alive.value() &&
                           idle.value() == static_cast<int>(limits.tcp_keepalive_idle_s) &&
                           count.value() == static_cast<int>(limits.tcp_keepalive_count);
    tcp_options_inherited_ = inherited ? Inherit::kYes : Inherit::kNo;
  }
  if (tcp_options_inherited_ == Inherit::kNo) SetTcpOptions(socket);
}

absl::Status Endpoint::ListenPlain(const std::string& host, const std::string& port) {
  asio::error_code ec;
  asio::ip::tcp::resolver resolver(*io_);
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", ec ? ec.message() : "no address"));
  }
  const asio::ip::tcp::endpoint ep = results.begin()->endpoint();
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(*io_);
  using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->set_option(ReusePort(true), ec);
  if (!ec) SetListenerTcpOptions(*acceptor_);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", ec.message()));
  }
  const asio::ip::tcp::endpoint local = acceptor_->local_endpoint(ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot read bound port: ", ec.message()));
  local_port_ = local.port();
  local_address_ = HostPort(local);
  AcceptNext();
  return absl::OkStatus();
}

void Endpoint::AcceptNext() {
  // accept() fills in the peer's address (peer_), so no getpeername per connection.
  acceptor_->async_accept(
      *io_, peer_, [this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted || acceptor_ == nullptr || !acceptor_->is_open()) {
          return;
        }
        if (!ec && plain_handoff_) {
          EnsureTcpOptions(socket);
          plain_handoff_(std::move(socket), HostPort(peer_));
        }
        AcceptNext();
      });
}

std::variant<Endpoint::Admission, HttpResponse> Endpoint::Admit(absl::string_view resource,
                                                                absl::string_view origin,
                                                                std::string remote_address) {
  if (PathOf(resource) != "/ws") {
    return HttpResponse{404, {}, "WebSocket endpoint is /ws\n"};
  }
  // A drain closes every connection: one that arrives now (a request head already under way when
  // the listener stopped) is sent to another node like a control call.
  if (hub_->api().draining()) {
    return HttpResponse{503, {}, absl::StrCat(hub_->api().RefuseDraining().message(), "\n")};
  }
  if (!core::OriginAllowed(origin, hub_->limits().allowed_origins)) {
    return HttpResponse{403, {}, "origin not allowed\n"};
  }
  std::shared_ptr<const auth::Claims> grant;
  if (hub_->protocol().auth_required()) {
    // A token in the URL is checked here, so a bad one is refused before the upgrade. Without
    // one, the client must authenticate with a `connect` frame (ClientProtocol enforces the
    // deadline).
    const std::string token = QueryParam(resource, "token");
    if (!token.empty()) {
      absl::StatusOr<auth::Claims> claims = hub_->protocol().VerifyToken(token);
      if (!claims.ok()) {
        return HttpResponse{
            401, {}, absl::StrCat("invalid token: ", claims.status().message(), "\n")};
      }
      grant = std::make_shared<const auth::Claims>(*std::move(claims));
    }
  }
  // --max-connections: 503, the server is full (RFC 9110 §15.6.4). Per IP and per user: 429,
  // this client has too many (RFC 6585 §4), so a load balancer does not take it for an unhealthy
  // server.
  absl::StatusOr<core::Node::ConnectionSlots> slots =
      hub_->node().AdmitConnection(remote_address, grant != nullptr ? grant->user : "");
  if (!slots.ok()) {
    return HttpResponse{slots.status().code() == absl::StatusCode::kUnavailable ? 503 : 429,
                        {},
                        absl::StrCat(slots.status().message(), "\n")};
  }
  return Admission{std::move(grant), *std::move(slots), std::move(remote_address)};
}

core::ConnectionMeta Endpoint::MakeMeta(
    std::string remote_address, const std::function<std::string(const std::string&)>& header) {
  core::ConnectionMeta meta;
  meta.id = hub_->node().NextConnectionId();
  meta.remote_address = std::move(remote_address);
  meta.origin = header("Origin");
  meta.user_agent = header("User-Agent");
  meta.connected_at = hub_->Now();
  meta.loop = loop_;
  if (hub_->protocol().connect_proxied()) {
    for (const std::string& name : hub_->limits().proxy_headers) {
      std::string value = header(name);
      if (!value.empty()) meta.headers.emplace_back(name, std::move(value));
    }
  }
  return meta;
}

void Endpoint::Open(const std::shared_ptr<WsSession>& session, const void* connection,
                    Admission admission) {
  if (admission.grant != nullptr) session->SetGrant(std::move(admission.grant));
  for (core::ConnectionQuota::Slot& slot : admission.slots) session->HoldSlot(std::move(slot));
  // The hub's table owns the session (which holds the connection); the endpoint's handlers find
  // it in sessions_, weakly, so there is no ownership cycle. They run on this thread, in order.
  sessions_[connection] = session;
  // Watched from before Register, which sets the auth deadline in the session's entry; the close
  // handler removes it (Closed), also when Register refuses the session.
  liveness_.Add(session);
  if (absl::Status st = hub_->protocol().Register(session); !st.ok()) {
    session->Close(core::kClosePolicyViolation, st.message());
    return;
  }
  // Admitted before the drain began but registered after its CloseAll went through the table:
  // closed here like the others (the table's lock orders this read after the drain's flag).
  if (hub_->api().draining()) session->Close(core::kCloseGoingAway, "server shutting down");
}

void Endpoint::OnMessage(const std::shared_ptr<WsSession>& session, bool text,
                         absl::string_view payload) {
  liveness_.Heard(*session);
  if (!text) {
    session->Close(core::kCloseUnsupportedData,
                   "binary frames are not supported: send JSON text frames");
    return;
  }
  hub_->protocol().OnClientFrame(session, payload);
}

void Endpoint::Closed(const std::shared_ptr<WsSession>& session, int code,
                      absl::string_view reason) {
  liveness_.Remove(*session);
  session->CancelTimers();
  // A close Herald started (idle timeout, slow consumer, kick) is how the connection ended,
  // also when the peer never answered it (the transport then reports 1006).
  if (session->close_code() != 0) {
    return hub_->protocol().Unregister(*session, session->close_code(), session->close_reason());
  }
  hub_->protocol().Unregister(*session, code, reason);
}

std::shared_ptr<WsSession> Endpoint::SessionOf(const void* connection) const {
  auto it = sessions_.find(connection);
  return it == sessions_.end() ? nullptr : it->second.lock();
}

std::shared_ptr<WsSession> Endpoint::TakeSession(const void* connection) {
  auto it = sessions_.find(connection);
  if (it == sessions_.end()) return nullptr;
  std::shared_ptr<WsSession> s = it->second.lock();
  sessions_.erase(it);
  return s;
}

void Endpoint::AcceptUpgrade(const http::Request& request,
                             std::shared_ptr<http::Exchange> exchange) {
  auto refuse = [&exchange](HttpResponse reply) {
    exchange->Respond({reply.status, std::move(reply.headers), std::move(reply.body)});
  };
  if (std::optional<HandshakeRefusal> bad = CheckHandshake(request)) {
    HttpResponse reply{bad->status, {}, std::move(bad->body)};
    if (!bad->header_name.empty()) reply.headers.emplace_back(bad->header_name, bad->header_value);
    return refuse(std::move(reply));
  }
  std::string joined;  // a repeated header's values, joined (HeaderView)
  std::variant<Admission, HttpResponse> admitted =
      Admit(request.target, request.HeaderView("Origin", &joined), request.remote_address);
  if (auto* refusal = std::get_if<HttpResponse>(&admitted)) return refuse(std::move(*refusal));
  // What the new connection starts with, held until the HTTP server hands the socket over (and
  // dropped, slots given back, if the connection is gone first).
  struct Accepted {
    Admission admission;
    core::ConnectionMeta meta;
    std::string response;  // 101 Switching Protocols
  };
  auto accepted = std::make_shared<Accepted>();
  accepted->admission = std::get<Admission>(std::move(admitted));
  accepted->meta = MakeMeta(request.remote_address,
                            [&request](const std::string& name) { return request.Header(name); });
  if (accepted->admission.grant != nullptr) accepted->meta.user = accepted->admission.grant->user;
  accepted->response = SwitchingProtocols(request.HeaderView("Sec-WebSocket-Key", &joined));
  exchange->Upgrade("", [this, accepted](asio::ip::tcp::socket socket, std::string leftover) {
    WsConnection::Handler* handler = this;
    auto connection =
        std::make_shared<WsConnection>(std::move(socket), handler, hub_->limits().max_frame_bytes);
    auto session = std::make_shared<WsSession>(std::move(accepted->meta),
                                               WsConnectionPtr(connection), hub_, io_, &liveness_);
    // The 101 goes first, and the `welcome` Register queues goes out in the same write.
    session->QueueHandshakeResponse(std::move(accepted->response));
    Open(session, connection.get(), std::move(accepted->admission));
    connection->Start(std::move(leftover));
  });
}

void Endpoint::OnFrame(WsConnection& connection, Opcode opcode, absl::string_view payload) {
  std::shared_ptr<WsSession> s = SessionOf(&connection);
  if (s == nullptr) return;
  switch (opcode) {
    case Opcode::kText:
    case Opcode::kBinary:
      return OnMessage(s, opcode == Opcode::kText, payload);
    case Opcode::kPing:
      liveness_.Heard(*s);
      return s->Pong(std::string(payload));
    case Opcode::kPong:
      // The answer to Liveness's ping (or any unsolicited pong: the peer is there).
      return liveness_.Heard(*s);
    default:
      return;
  }
}

void Endpoint::OnPeerClose(WsConnection& connection, int code, absl::string_view reason) {
  if (std::shared_ptr<WsSession> s = SessionOf(&connection)) s->AnswerClose(code, reason);
}

void Endpoint::OnProtocolError(WsConnection& connection, const FrameError& error) {
  if (std::shared_ptr<WsSession> s = SessionOf(&connection))
    s->Close(error.close_code, error.reason);
}

void Endpoint::OnClosed(WsConnection& connection) {
  if (std::shared_ptr<WsSession> s = TakeSession(&connection)) {
    Closed(s, connection.remote_close_code(), connection.remote_close_reason());
  }
}

Endpoint::Admission Endpoint::TakeAdmission(const void* connection) {
  Admission admission;
  absl::MutexLock lock(&grants_mu_);
  auto it = grants_.find(connection);
  if (it == grants_.end()) return admission;
  admission = std::move(it->second);
  grants_.erase(it);
  return admission;
}

bool Endpoint::OnValidate(connection_hdl hdl) {
  websocketpp::lib::error_code ec;
  WssServer::connection_ptr con = tls_->get_con_from_hdl(hdl, ec);
  if (ec) return false;
  TakeAdmission(con.get());
  std::variant<Admission, HttpResponse> admitted =
      Admit(con->get_resource(), con->get_request_header("Origin"), con->get_remote_endpoint());
  if (auto* refusal = std::get_if<HttpResponse>(&admitted)) {
    con->set_status(static_cast<wspp_http::status_code::value>(refusal->status));
    con->set_body(refusal->body);
    return false;
  }
  // Kept for OnOpen only once the upgrade is accepted: a refused handshake leaves nothing.
  absl::MutexLock lock(&grants_mu_);
  grants_[con.get()] = std::get<Admission>(std::move(admitted));
  return true;
}

void Endpoint::OnClose(connection_hdl hdl) {
  std::shared_ptr<WsSession> s = TakeSession(hdl.lock().get());
  if (s == nullptr) return;
  websocketpp::lib::error_code ec;
  WssServer::connection_ptr c = tls_->get_con_from_hdl(hdl, ec);
  if (ec) return Closed(s, websocketpp::close::status::abnormal_close, "");
  // Whoever sent the first close frame decided how the connection ended.
  const bool local = c->get_local_close_code() != websocketpp::close::status::blank &&
                     c->get_local_close_code() != websocketpp::close::status::no_status;
  Closed(s, local ? c->get_local_close_code() : c->get_remote_close_code(),
         local ? c->get_local_close_reason() : c->get_remote_close_reason());
}

void Endpoint::OnFail(connection_hdl hdl) {
  // Before open: drop what OnValidate admitted (its slots go back). After: unregister.
  TakeAdmission(hdl.lock().get());
  if (std::shared_ptr<WsSession> s = TakeSession(hdl.lock().get())) {
    Closed(s, websocketpp::close::status::abnormal_close, "connection failed");
  }
}

void Endpoint::OnOpen(connection_hdl hdl) {
  websocketpp::lib::error_code ec;
  WssServer::connection_ptr con = tls_->get_con_from_hdl(hdl, ec);
  if (ec) return;
  // What OnValidate admitted: the claims of a `?token=` (without one the connection is anonymous
  // and must send `connect`), the connection-count slots, the remote address.
  Admission admission = TakeAdmission(con.get());
  core::ConnectionMeta meta = MakeMeta(
      !admission.remote_address.empty() ? admission.remote_address : con->get_remote_endpoint(),
      [&con](const std::string& name) { return con->get_request_header(name); });
  if (admission.grant != nullptr) meta.user = admission.grant->user;
  // The handshake request and response (header maps, body) stay inside the connection for its
  // whole life but are not read again after open: what Herald needs is copied into `meta` (and
  // the token's claims into the admission). Releasing them (ReleasableMessage) frees about 1 KB
  // per idle connection.
  con->get_request().Release();
  con->get_response().Release();
  auto session =
      std::make_shared<WsSession>(std::move(meta), WsConnectionPtr(con), hub_, io_, &liveness_);
  Open(session, con.get(), std::move(admission));
}

void Endpoint::ServeStaticFiles(const std::string& dir) {
  static_files_ = std::make_unique<const StaticFiles>(dir);
}

std::optional<HttpResponse> Endpoint::StaticFile(const HttpRequest& request) const {
  const absl::string_view method = request.method;
  if (static_files_ == nullptr) return std::nullopt;
  std::optional<StaticFiles::Response> file = static_files_->Get(request.path);
  if (!file.has_value()) return std::nullopt;
  HttpResponse reply;
  if (method != "GET" && method != "HEAD" && method != "OPTIONS") {
    reply.status = 405;
    reply.headers.emplace_back("Allow", "GET, HEAD, OPTIONS");
    reply.body = "a static file: GET, HEAD or OPTIONS\n";
    return reply;
  }
  // herald.js and the demo assets are public and carry no credentials: any page may load them
  // (`import … from "https://herald.example/herald.js"`), whatever --allowed-origins says about
  // who may then open a WebSocket.
  reply.headers.emplace_back("Access-Control-Allow-Origin", "*");
  if (method == "OPTIONS") {  // a CORS preflight
    reply.status = 204;
    reply.headers.emplace_back("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    const std::string asked = request.header("Access-Control-Request-Headers");
    if (!asked.empty()) reply.headers.emplace_back("Access-Control-Allow-Headers", asked);
    reply.headers.emplace_back("Access-Control-Max-Age", "86400");
    return reply;
  }
  if (!file->redirect.empty()) {  // "/admin" -> "/admin/", keeping the query
    reply.status = 301;
    reply.headers.emplace_back("Location", request.query.empty()
                                               ? file->redirect
                                               : absl::StrCat(file->redirect, "?", request.query));
    return reply;
  }
  reply.status = 200;
  reply.headers.emplace_back("Content-Type", file->content_type);
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  reply.headers.emplace_back("Cache-Control", "no-cache");
  if (method == "HEAD") {
    reply.headers.emplace_back("Content-Length", absl::StrCat(file->body.size()));
  } else {
    reply.body = std::move(file->body);
  }
  return reply;
}

void Endpoint::OnHttp(connection_hdl hdl) {
  websocketpp::lib::error_code ec;
  WssServer::connection_ptr con = tls_->get_con_from_hdl(hdl, ec);
  if (ec) return;
  // websocketpp closes the connection after each HTTP response; say so, or keep-alive clients
  // (browsers, Node's http agent) send their next request on a socket that is closing.
  con->replace_header("Connection", "close");
  if (std::optional<absl::string_view> error = FramingError(con->get_request())) {
    con->set_status(wspp_http::status_code::bad_request);
    con->replace_header("Content-Type", "application/json");
    con->set_body(absl::StrCat(R"({"code":"INVALID_ARGUMENT","message":"request framing: )", *error,
                               "\"}\n"));
    return;
  }
  const ReleasableRequest& request = con->get_request();
  const std::string& resource = con->get_resource();
  const size_t q = resource.find('?');
  const std::string remote_address = con->get_remote_endpoint();
  HttpRequest req;
  req.method = request.get_method();
  req.path = PathOf(resource);
  req.query =
      q == std::string::npos ? absl::string_view() : absl::string_view(resource).substr(q + 1);
  req.body = request.get_body();
  req.remote_address = remote_address;
  req.header = [&request](const std::string& name) { return request.get_header(name); };
  // Every reply is written by a task on the connection's I/O thread, after this handler returns.
  ServeHttp(req, DeferredResponder(con));
  con->defer_http_response();
}

void Endpoint::ServeHttp(const HttpRequest& request, HttpRespond respond) {
  const absl::string_view path = request.path;
  if (path == "/healthz") {
    const absl::Status health = health_check_ ? health_check_() : absl::OkStatus();
    respond(HttpResponse{health.ok() ? 200 : 503,
                         {{"Content-Type", "application/json"}},
                         absl::StrCat(R"({"status":")", health.ok() ? "ok" : "unavailable",
                                      R"(","node":")", hub_->node().name(), R"(","connections":)",
                                      hub_->node().connection_count(), "}\n")});
  } else if (path == "/metrics") {
    ServeMetrics(std::move(respond));
  } else if (path == "/ws") {
    respond(HttpResponse{426, {{"Upgrade", "websocket"}}, "this endpoint speaks WebSocket\n"});
  } else if (http_fallback_ && http_fallback_(request, respond)) {
    // Answered by the fallback, now or later.
  } else if (std::optional<HttpResponse> file = StaticFile(request)) {
    // A static file (demo pages, herald.js) from --static-dir.
    respond(*std::move(file));
  } else {
    respond(HttpResponse{404, {}, "not found\n"});
  }
}

HttpRespond Endpoint::DeferredResponder(const WssServer::connection_ptr& con) {
  // The reply is written by a task on the connection's I/O thread (the one thread that runs
  // `io`): it runs after the handler has deferred the response, whichever thread answers and
  // when.
  return [con, io = io_](HttpResponse reply) {
    asio::post(*io, [con, reply = std::move(reply)] { WriteDeferred(*con, reply); });
  };
}

void Endpoint::ServeMetrics(HttpRespond respond) {
  // Task queues come from the engine, which may answer later; the node's counters are read now.
  hub_->api().ListQueues(
      {}, [stats = hub_->api().LocalStats(), append = metrics_appender_,
           respond = std::move(respond)](absl::StatusOr<v1::ListQueuesResponse> queues) {
        HttpResponse reply;
        reply.headers.emplace_back("Content-Type", "text/plain; version=0.0.4");
        reply.body = core::RenderMetrics(
            stats, queues.ok() ? *queues : v1::ListQueuesResponse::default_instance());
        if (append) append(&reply.body);
        respond(std::move(reply));
      });
}

}  // namespace herald::ws
