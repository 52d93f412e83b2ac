#ifndef HERALD_SERVER_WS_WS_CONFIG_H_
#define HERALD_SERVER_WS_WS_CONFIG_H_

#include <websocketpp/config/asio.hpp>
#include <websocketpp/server.hpp>

#include <memory>
#include <type_traits>

#include "asio/steady_timer.hpp"

#include "server/ws/releasable_message.h"

namespace herald::ws {

// websocketpp configuration over `Base` (websocketpp::config::asio_tls: websocketpp serves wss://
// only; ws:// is Herald's own transport, ws_connection.h): a small per-connection read buffer, no
// per-connection strand, and library logging compiled out (Herald logs through spdlog at its own
// levels).
// - The read buffer lives inside every connection object: client frames are small (subscribe,
//   ping), and a larger frame or handshake just takes more reads. Measured (bench/run.sh idle,
//   18,000 connections): 4096 -> 512 bytes, together with dropping the handshake objects after
//   open (endpoint.cc), took server RSS per connection from 12.5 to 7.7 KB; 512 -> 256 saves
//   another 256 bytes (a bench handshake, ~140 bytes, still arrives in one read; a browser's,
//   400-600 bytes, in two or three).
// - enable_multithreading = false: websocketpp then gives a connection no asio strand (a
//   heap-allocated strand per connection, and every handler of the handshake and of every read
//   and write dispatched through it). One thread runs each endpoint's io_context (IoThreads), so
//   the strand ordered nothing; work for a connection from another thread is posted to that
//   io_context (WsSession, Endpoint::DeferredResponder).
// - timeout_socket_shutdown: see below; the close handshake's own bound is --close-timeout-ms.
// - The handshake request and response are ReleasableMessages: websocketpp keeps both inside
//   every connection for its whole life; Endpoint::OnOpen frees them (about 1 KB, measured
//   7,266 -> 6,673 bytes of RSS per idle connection) without reaching into websocketpp.
template <typename Base>
struct ServerConfig : public Base {
  typedef ServerConfig type;
  typedef Base base;

  typedef typename base::concurrency_type concurrency_type;
  // The handshake request and response, freed after open (endpoint.cc).
  typedef ReleasableRequest request_type;
  typedef ReleasableResponse response_type;
  typedef typename base::message_type message_type;
  typedef typename base::con_msg_manager_type con_msg_manager_type;
  typedef typename base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef typename base::alog_type alog_type;
  typedef typename base::elog_type elog_type;
  typedef typename base::rng_type rng_type;

  struct transport_config : public base::transport_config {
    typedef typename type::concurrency_type concurrency_type;
    typedef typename type::alog_type alog_type;
    typedef typename type::elog_type elog_type;
    typedef typename type::request_type request_type;
    typedef typename type::response_type response_type;
    // tls_socket: an asio::ssl::stream over TCP.
    typedef typename base::transport_config::socket_type socket_type;
    static const bool enable_multithreading = false;
    // The TLS shutdown (close_notify) after a closed connection's close handshake: websocketpp
    // waits up to 5 s by default, so a peer that stopped reading (its socket full: close_notify
    // cannot even be written) held the connection --close-timeout-ms + 5 s. The close handshake
    // already had its time (--close-timeout-ms); this is only the last write's.
    static const long timeout_socket_shutdown = 100;  // NOLINT(runtime/int): websocketpp's type
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;

  static const size_t connection_read_buffer_size = 256;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using WssConfig = ServerConfig<websocketpp::config::asio_tls>;
using WssServer = websocketpp::server<WssConfig>;
using WsMessagePtr = WssConfig::message_type::ptr;
// A session's timers: websocketpp's on wss://, plain asio ones on ws://, the same type.
using WsTimerPtr = std::shared_ptr<asio::steady_timer>;
static_assert(std::is_same_v<WsTimerPtr, WssServer::connection_type::timer_ptr>);

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_WS_CONFIG_H_
