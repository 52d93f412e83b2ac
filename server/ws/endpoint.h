#ifndef HERALD_SERVER_WS_ENDPOINT_H_
#define HERALD_SERVER_WS_ENDPOINT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "asio/io_context.hpp"
#include "server/core/hub.h"
#include "server/ws/static_files.h"
#include "server/ws/ws_config.h"

namespace herald::ws {

// The WebSocket/HTTP listener: accepts connections on `/ws`, adapts each one to a WsSession in
// the hub, and serves plain HTTP (`/healthz`, `/metrics`) on the same port. Owns the websocketpp
// server; runs on the caller's io_context (any number of threads may run it). Listen() and
// StopListening() must be called from one control thread; handlers run on connection strands.
class Endpoint {
 public:
  Endpoint(core::Hub* hub, asio::io_context* io);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Binds host:port (port "0" picks a free one) and starts accepting.
  absl::Status Listen(const std::string& host, const std::string& port);
  // The bound "host:port" after Listen().
  const std::string& local_address() const { return local_address_; }
  // Stops accepting new connections; open ones stay.
  void StopListening();
  // Serves the files below `dir` over plain HTTP (GET/HEAD) for paths no other route takes.
  // Call before Listen().
  void ServeStaticFiles(const std::string& dir);

 private:
  bool OnValidate(websocketpp::connection_hdl hdl);
  void OnOpen(websocketpp::connection_hdl hdl);
  void OnHttp(websocketpp::connection_hdl hdl);
  // Answers a GET/HEAD for a file below --static-dir; false when there is none.
  bool ServeFile(const WsServer::connection_ptr& con, absl::string_view path);

  core::Hub* const hub_;
  WsServer server_;
  std::string local_address_;
  std::unique_ptr<const StaticFiles> static_files_;
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_ENDPOINT_H_
