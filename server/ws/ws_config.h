#ifndef HERALD_SERVER_WS_WS_CONFIG_H_
#define HERALD_SERVER_WS_WS_CONFIG_H_

#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace herald::ws {

// websocketpp configuration: the plain asio transport with a small per-connection read buffer
// and library logging compiled out (Herald logs through spdlog at its own levels). The read
// buffer lives inside every connection object, so it is most of an idle connection's memory:
// client frames are small (subscribe, ping), and a larger frame just takes more reads.
// Measured (bench/run.sh idle, 18,000 connections): 4096 -> 512 bytes, together with dropping the
// handshake objects after open (endpoint.cc), took server RSS per connection from 12.5 to 7.7 KB.
struct WsConfig : public websocketpp::config::asio {
  typedef WsConfig type;
  typedef websocketpp::config::asio base;

  typedef base::concurrency_type concurrency_type;
  typedef base::request_type request_type;
  typedef base::response_type response_type;
  typedef base::message_type message_type;
  typedef base::con_msg_manager_type con_msg_manager_type;
  typedef base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef base::alog_type alog_type;
  typedef base::elog_type elog_type;
  typedef base::rng_type rng_type;

  struct transport_config : public base::transport_config {
    typedef type::concurrency_type concurrency_type;
    typedef type::alog_type alog_type;
    typedef type::elog_type elog_type;
    typedef type::request_type request_type;
    typedef type::response_type response_type;
    typedef websocketpp::transport::asio::basic_socket::endpoint socket_type;
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;

  static const size_t connection_read_buffer_size = 512;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using WsServer = websocketpp::server<WsConfig>;
using WsMessagePtr = WsConfig::message_type::ptr;

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_WS_CONFIG_H_
