// herald: wires the node (core::Hub), the WebSocket endpoint and the gRPC server, and drains on
// SIGTERM.
#include <algorithm>
#include <csignal>  // also pthread_sigmask (POSIX)
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/algorithm/container.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "asio/io_context.hpp"
#include "asio/post.hpp"
#include "asio/signal_set.hpp"
#include "asio/steady_timer.hpp"
#include "server/allocator.h"
#include "server/config.h"
#include "server/core/hub.h"
#include "server/core/metrics.h"
#include "server/core/protocol.h"
#include "server/engine/memory_engine.h"
#include "server/engine/redis/redis_engine.h"
#include "server/http/server.h"
#include "server/proxy/http_proxy.h"
#include "server/rpc/api_metrics.h"
#include "server/rpc/broker_service.h"
#include "server/rpc/event_feed.h"
#include "server/rpc/http_api.h"
#include "server/version.h"
#include "server/ws/endpoint.h"
#include "server/ws/handshake.h"
#include "server/ws/io_threads.h"
#include "server/ws/tls_context.h"
#include "server/ws/ws_session.h"

namespace {

// An event stream (GET /api/v1/events) on a connection of the HTTP/1.1 server.
class HttpEventSink : public herald::rpc::EventStreamSink {
 public:
  explicit HttpEventSink(std::shared_ptr<herald::http::Exchange> exchange)
      : exchange_(std::move(exchange)) {}
  void Refuse(herald::rpc::HttpReply reply) override {
    exchange_->Respond({reply.status, std::move(reply.headers), std::move(reply.body)});
  }
  void Start(std::vector<std::pair<std::string, std::string>> headers,
             std::function<void()> on_closed) override {
    exchange_->StartStream(200, std::move(headers), std::move(on_closed));
  }
  void Post(std::function<void()> work) override { exchange_->Post(std::move(work)); }
  bool Write(absl::string_view bytes) override { return exchange_->Write(bytes); }
  void Close() override { exchange_->EndStream(); }

 private:
  const std::shared_ptr<herald::http::Exchange> exchange_;
};

// SIGINT and SIGTERM, which start the drain.
sigset_t DrainSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

int Run(const herald::ServerConfig& config) {
  using namespace herald;  // NOLINT
  // Only the thread that runs `io` takes the drain signals (it unblocks them below): every
  // thread started from here (gRPC's, the I/O threads) inherits this mask. Otherwise the kernel
  // may hand a signal to a thread sleeping in a futex inside gRPC or absl, and under
  // ThreadSanitizer, which runs handlers only when the thread comes back through one of its
  // interceptors, herald then never saw SIGTERM.
  const sigset_t drain_signals = DrainSignals();
  pthread_sigmask(SIG_BLOCK, &drain_signals, nullptr);
  auto logger = spdlog::stderr_color_mt("herald");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  std::string node = config.node;
  if (node.empty()) {
    node = absl::StrCat("n", absl::Hex(absl::Uniform<uint16_t>(absl::BitGen()), absl::kZeroPad4));
  }
  const int threads = config.threads > 0
                          ? config.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  ws::IoThreads io_threads(threads);
  asio::io_context& io = io_threads.context(0);  // also runs signals and the ticker
  ws::WsFrameFactory frames;
  std::unique_ptr<core::Engine> engine;
  engine::RedisEngine* redis = nullptr;
  if (config.engine == "redis") {
    absl::StatusOr<engine::RedisOptions> options = engine::ParseRedisUrl(config.redis_url);
    if (!options.ok()) {
      std::fprintf(stderr, "herald: --redis-url: %s\n",
                   std::string(options.status().message()).c_str());
      return 2;
    }
    options->prefix = config.redis_prefix;
    options->tls_ca_file = config.redis_tls_ca;
    options->tls_cert_file = config.redis_tls_cert;
    options->tls_key_file = config.redis_tls_key;
    options->node = node;
    options->heartbeat_interval = absl::Milliseconds(config.node_heartbeat_ms);
    auto created = std::make_unique<engine::RedisEngine>(config.limits, *options);
    redis = created.get();
    engine = std::move(created);
    // Not fatal: the node serves its local connections, and publishes fail with UNAVAILABLE
    // until Redis is reachable (the engine keeps reconnecting with backoff). A node name another
    // live node has is.
    if (absl::Status st = redis->WaitReady(absl::Seconds(5)); absl::IsAlreadyExists(st)) {
      std::fprintf(stderr, "herald: --node: %s\n", std::string(st.message()).c_str());
      return 2;
    } else if (!st.ok()) {
      spdlog::warn("engine redis: {}; starting anyway, engine operations fail until it is",
                   std::string(st.message()));
    }
  } else {
    engine = std::make_unique<engine::MemoryEngine>(config.limits);
  }
  std::unique_ptr<const auth::JwtVerifier> verifier;
  if (!config.jwt.empty()) {
    absl::StatusOr<std::unique_ptr<const auth::JwtVerifier>> created =
        auth::JwtVerifier::Create(config.jwt);
    if (!created.ok()) {
      std::fprintf(stderr, "herald: %s\n", std::string(created.status().message()).c_str());
      return 2;
    }
    verifier = *std::move(created);
  }
  // Webhooks: connect, subscribe, message and rpc frames to HTTP backends, and notifications, on
  // the proxy's own thread (libcurl).
  std::unique_ptr<proxy::HttpProxy> http_proxy;
  if (!config.proxy_routes.empty()) {
    http_proxy = std::make_unique<proxy::HttpProxy>(
        proxy::ProxyOptions{config.proxy_routes, config.proxy_secret,
                            absl::StrCat("herald/", ProjectVersion()), node},
        config.limits);
  }
  core::Hub hub(
      config.limits, node, engine.get(), &frames, verifier.get(), [] { return absl::Now(); },
      http_proxy.get());
  hub.node().SetLoopExecutor(&io_threads);
  // Control API calls over both transports, counted and timed for /metrics.
  rpc::ApiMetrics api_metrics;
  // The HTTP/JSON control API shares the WebSocket port and runs the gRPC handlers.
  const rpc::HttpApi http_api(&hub.api(), config.api_key, &api_metrics);
  const std::string build_info =
      core::RenderBuildInfo(ProjectVersion(), GitDescribe(), AllocatorInUse());
  // With --tls-cert, every listener serves this certificate (SIGHUP reloads it).
  std::unique_ptr<ws::TlsContext> tls;
  if (!config.tls_cert.empty()) {
    absl::StatusOr<std::unique_ptr<ws::TlsContext>> loaded =
        ws::TlsContext::Load(config.tls_cert, config.tls_key);
    if (!loaded.ok()) {
      std::fprintf(stderr, "herald: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    tls = *std::move(loaded);
  }
  if (!config.tls_client_ca.empty()) {
    if (absl::Status st = ws::TlsContext::CheckCaFile(config.tls_client_ca); !st.ok()) {
      std::fprintf(stderr, "herald: %s\n", std::string(st.message()).c_str());
      return 2;
    }
  }
  // Server-Sent Events of the node's events (GET /api/v1/events), on the HTTP/1.1 server.
  rpc::EventFeed event_feed(&hub.api(), config.api_key);
  http::ServerOptions http_options;
  http_options.parser.max_head_bytes = config.limits.max_http_head_bytes;
  http_options.parser.max_body_bytes = config.limits.max_http_body_bytes;
  http_options.idle_timeout = absl::Milliseconds(config.limits.http_idle_timeout_ms);
  // A slow SSE reader is cut off like a slow WebSocket consumer.
  http_options.max_buffered_bytes = config.limits.max_send_buffer_bytes;
  // A new connection's first request, like a wss:// handshake, must start within 5 s.
  http_options.first_request_timeout = absl::FromChrono(ws::Endpoint::kHandshakeTimeout);
  // One WebSocket listener per I/O thread, all on one port; on a plain port each hands every
  // connection to its thread's HTTP/1.1 server (keep-alive, pipelining, SSE), which hands the
  // WebSocket upgrades back to the endpoint.
  std::vector<std::unique_ptr<ws::Endpoint>> endpoints;
  std::vector<std::unique_ptr<http::Server>> http_servers;
  for (int i = 0; i < threads; ++i) {
    auto& endpoint = *endpoints.emplace_back(std::make_unique<ws::Endpoint>(
        &hub, &io_threads.context(i), static_cast<uint32_t>(i), tls.get()));
    if (tls == nullptr) {
      auto& http_server = *http_servers.emplace_back(std::make_unique<http::Server>(
          &io_threads.context(i), http_options,
          [&endpoint, &event_feed](const http::Request& req,
                                   std::shared_ptr<http::Exchange> exchange) {
            // A WebSocket handshake; another upgrade (h2c) is answered as HTTP/1.1, and as the
            // last request of its connection.
            if (req.upgrade && ws::WantsWebSocket(req)) {
              return endpoint.AcceptUpgrade(req, exchange);
            }
            if (req.Path() == rpc::EventFeed::kPath) {
              const std::string authorization = req.Header("Authorization");
              const std::string last_event_id = req.Header("Last-Event-ID");
              event_feed.Open({req.method, req.Query(), authorization, last_event_id},
                              std::make_shared<HttpEventSink>(std::move(exchange)));
              return;
            }
            // Every other path is served as on a wss:// port's connections.
            ws::HttpRequest request;
            request.method = req.method;
            request.path = req.Path();
            request.query = req.Query();
            request.body = req.body;
            request.remote_address = req.remote_address;
            request.header = [&req](const std::string& name) { return req.Header(name); };
            endpoint.ServeHttp(request, [exchange](ws::HttpResponse reply) {
              exchange->Respond({reply.status, std::move(reply.headers), std::move(reply.body)});
            });
          }));
      endpoint.SetPlainHandoff([&http_server](asio::ip::tcp::socket socket, std::string remote) {
        http_server.Adopt(std::move(socket), std::move(remote));
      });
    }
    if (!config.static_dir.empty()) endpoint.ServeStaticFiles(config.static_dir);
    if (redis != nullptr) {
      endpoint.SetHealthCheck([redis] {
        return redis->ready() ? absl::OkStatus() : absl::UnavailableError("redis unreachable");
      });
    }
    endpoint.SetMetricsAppender(
        [&build_info, &api_metrics, &http_proxy, &http_servers, &event_feed](std::string* out) {
          out->append(build_info);
          api_metrics.AppendTo(out);
          if (http_proxy != nullptr) out->append(core::RenderProxyMetrics(http_proxy->Stats()));
          size_t http_connections = 0;
          for (const auto& server : http_servers) http_connections += server->connection_count();
          absl::StrAppend(out,
                          "# HELP herald_http_connections HTTP/1.1 connections of the control "
                          "API kept open (keep-alive, event streams).\n"
                          "# TYPE herald_http_connections gauge\n"
                          "herald_http_connections ",
                          http_connections,
                          "\n# HELP herald_event_streams Server-Sent Events streams open "
                          "(GET /api/v1/events).\n"
                          "# TYPE herald_event_streams gauge\n"
                          "herald_event_streams ",
                          event_feed.stream_count(), "\n");
        });
    endpoint.SetHttpFallback([&http_api](const ws::HttpRequest& req, ws::HttpRespond respond) {
      if (!rpc::HttpApi::Serves(req.path)) return false;
      if (req.path == rpc::EventFeed::kPath) {
        // websocketpp cannot stream a response: on a wss:// port there is no event stream.
        respond(ws::HttpResponse{
            501,
            {{"Content-Type", "application/json"}},
            rpc::HttpErrorBody(absl::UnimplementedError(
                "events: Server-Sent Events are served on a plain-HTTP port only (behind a "
                "TLS-terminating proxy for https); see docs/api.md"))});
        return true;
      }
      const std::string content_type = req.header("Content-Type");
      const std::string authorization = req.header("Authorization");
      const std::string transfer_encoding = req.header("Transfer-Encoding");
      // A publish that waits for an ack answers later, from the thread that ends the wait.
      http_api.Handle(
          {req.method, req.path, content_type, authorization, transfer_encoding, req.body,
           req.remote_address},
          [path = std::string(req.path), respond = std::move(respond)](rpc::HttpReply reply) {
            if (reply.status >= 500) spdlog::warn("HTTP API {}: {}", path, reply.body);
            respond(
                ws::HttpResponse{reply.status, std::move(reply.headers), std::move(reply.body)});
          });
      return true;
    });
    const std::string port = i == 0 ? config.ws_port : absl::StrCat(endpoints[0]->local_port());
    if (absl::Status st = endpoint.Listen(config.ws_host, port); !st.ok()) {
      std::fprintf(stderr, "herald: --ws-listen: %s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  const ws::Endpoint& endpoint = *endpoints[0];
  rpc::RpcServer rpc_server(&hub.api(), config.api_key, &api_metrics);
  absl::StatusOr<int> grpc_port =
      rpc_server.Start(config.grpc_listen, {config.tls_cert, config.tls_key, config.tls_client_ca});
  if (!grpc_port.ok()) {
    std::fprintf(stderr, "herald: --grpc-listen: %s\n",
                 std::string(grpc_port.status().message()).c_str());
    return 1;
  }
  std::string grpc_host = config.grpc_listen.substr(0, config.grpc_listen.rfind(':'));
  std::printf("ws listening on %s\n", endpoint.local_address().c_str());
  std::printf("grpc listening on %s:%d\n", grpc_host.c_str(), *grpc_port);
  std::fflush(stdout);

  if (redis != nullptr) {
    spdlog::info("engine redis: {} (prefix \"{}\")",
                 config.redis_url.substr(config.redis_url.rfind('@') + 1), config.redis_prefix);
  }
  const char* secure = tls != nullptr ? "s" : "";
  spdlog::info(
      "herald node {} started: {} I/O threads, WebSocket ws{}://{}/ws, HTTP API http{}://{}{}, "
      "gRPC {}:{}{}",
      node, threads, secure, endpoint.local_address(), secure, endpoint.local_address(),
      std::string(rpc::HttpApi::kPathPrefix), grpc_host, *grpc_port,
      tls == nullptr                 ? ""
      : config.tls_client_ca.empty() ? " (TLS)"
                                     : " (TLS, client certificates required)");
  if (tls != nullptr) spdlog::info("TLS certificate: {}", tls->Describe());
  if (config.api_key.empty()) {
    spdlog::warn(
        "no API key configured: anyone who can reach the gRPC port or /api/v1/ controls Herald "
        "(set --api-key or HERALD_API_KEY)");
  }
  for (const proxy::Route& route : config.proxy_routes) {
    spdlog::info("webhook {}{}: {}", std::string(core::ProxyEventName(route.event)),
                 route.prefix.empty() ? "" : absl::StrCat(" ", route.prefix, "*"),
                 route.url.empty() ? "(none)" : route.url);
    if ((route.event == core::ProxyEvent::kJoin || route.event == core::ProxyEvent::kLeave) &&
        config.limits.presence_prefixes.empty()) {
      spdlog::warn("webhook {}: no --presence-prefixes, so no channel has joins and leaves",
                   std::string(core::ProxyEventName(route.event)));
    }
  }
  if (hub.protocol().connect_proxied()) {
    spdlog::info("clients authenticate with a connect frame that {} accepts{}",
                 "--proxy-connect-url", verifier != nullptr ? " (or a token)" : "");
  } else if (verifier == nullptr) {
    spdlog::warn(
        "DEVELOPMENT MODE: no JWT key configured, so WebSocket clients connect anonymously and may "
        "subscribe to any channel (set --jwt-hs256-secret or --jwt-rs256-public-key)");
  } else {
    spdlog::info("client tokens required: {}{}", verifier->accepts_hs256() ? "HS256 " : "",
                 verifier->accepts_rs256() ? "RS256" : "");
  }
  if (!config.static_dir.empty()) {
    spdlog::info("serving {} at http{}://{}/", config.static_dir, secure, endpoint.local_address());
  }
  if (config.limits.allowed_origins.empty()) {
    spdlog::warn(
        "no allowed origins configured: pages from any origin may connect "
        "(set --allowed-origins)");
  } else {
    spdlog::info("allowed origins: {}", absl::StrJoin(config.limits.allowed_origins, ", "));
  }

  absl::Notification drain;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("signal {}: draining", signo);
    drain.Notify();
  });
  // SIGHUP: new handshakes get the certificate now in the files; open connections keep theirs.
  // Reading two small files on I/O thread 0 takes well under a millisecond.
  asio::signal_set reload_signal(io, SIGHUP);
  std::function<void()> await_reload = [&] {
    reload_signal.async_wait([&](const asio::error_code& ec, int) {
      if (ec) return;
      if (tls == nullptr) {
        spdlog::info("SIGHUP: no --tls-cert, nothing to reload");
      } else if (absl::Status st = tls->Reload(); !st.ok()) {
        spdlog::error("SIGHUP: TLS certificate not reloaded, keeping the old one: {}",
                      std::string(st.message()));
      } else {
        spdlog::info("SIGHUP: TLS certificate reloaded: {}", tls->Describe());
      }
      await_reload();
    });
  };
  await_reload();
  // Drives time-based work: task ack deadlines and TTLs, held-back disconnect events, expiry of
  // history, idempotency keys and terminal orders.
  asio::steady_timer ticker(io);
  // gRPC health follows the engine's connections (a Redis engine; the memory engine is always up).
  bool engine_up = true;
  std::function<void()> schedule_tick = [&] {
    ticker.expires_after(std::chrono::milliseconds(50));
    ticker.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      if (redis != nullptr && redis->ready() != engine_up) {
        engine_up = !engine_up;
        rpc_server.SetServing(engine_up);
        if (engine_up) {
          spdlog::info("engine redis: connected");
        } else {
          spdlog::warn("engine redis: unreachable; publishes fail with UNAVAILABLE, reconnecting");
        }
      }
      hub.Tick();
      event_feed.Tick(absl::Now());
      schedule_tick();
    });
  };
  schedule_tick();
  asio::post(io, [drain_signals] { pthread_sigmask(SIG_UNBLOCK, &drain_signals, nullptr); });
  io_threads.Start();

  drain.WaitForNotification();
  // Ordered shutdown: stop accepting, ask clients to reconnect elsewhere, let in-flight control
  // calls finish, then wait (bounded) for the close handshakes.
  const absl::Duration budget = absl::Seconds(config.drain_timeout_s);
  const absl::Time deadline = absl::Now() + budget;
  for (int i = 0; i < threads; ++i) {
    asio::post(io_threads.context(i), [&endpoints, i] { endpoints[i]->StopListening(); });
  }
  asio::post(io, [&ticker, &signals, &reload_signal] {
    ticker.cancel();
    signals.cancel();
    reload_signal.cancel();
  });
  // Control calls are refused with UNAVAILABLE from here on (backends retry that, elsewhere);
  // gRPC itself keeps serving until the clients have left, so no call arriving now is cut off
  // with CANCELLED by the server's shutdown.
  hub.api().BeginDrain();
  rpc_server.BeginDrain();
  // Keep-alive HTTP connections close after their current reply; event streams end.
  event_feed.Shutdown();
  for (auto& http_server : http_servers) http_server->BeginDrain();
  hub.node().CloseAll(core::kCloseGoingAway, "server shutting down");
  // The ticker is stopped and the clients are leaving: publish calls still waiting for an ack
  // answer acked=false now, so in-flight calls can finish.
  hub.EndAckWaits();
  // Done when the clients have left, the HTTP requests under way were read to their end and
  // answered (503 "draining": idle connections closed at BeginDrain), and no control call was
  // refused for a while (callers retrying elsewhere); until then gRPC keeps answering
  // UNAVAILABLE rather than its shutdown cutting arriving calls off with CANCELLED.
  const auto http_open = [&http_servers] {
    return absl::c_any_of(http_servers, [](const auto& s) { return s->connection_count() > 0; });
  };
  // The DISCONNECT events held back by --disconnect-grace come due meanwhile, as they would have
  // (dropped when the user reconnects elsewhere first); those still held at the deadline are
  // emitted then, before the watchers' streams end.
  constexpr absl::Duration kQuiet = absl::Milliseconds(200);
  absl::Time last_tick = absl::Now();
  while ((hub.node().connection_count() > 0 || http_open() ||
          absl::Now() - hub.api().last_drain_refusal() < kQuiet ||
          hub.node().holds_disconnects()) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
    if (absl::Now() - last_tick >= absl::Milliseconds(50)) {
      last_tick = absl::Now();
      hub.node().Tick(last_tick);  // thread-safe; the ticker has stopped
    }
  }
  hub.node().EmitHeldDisconnects(nullptr);
  const size_t left = hub.node().connection_count();
  // Only streams (WatchEvents, an idle PublishStream) can still be open: ack waits have ended and
  // unary calls were refused. They get a short grace, then are cancelled.
  rpc_server.Shutdown(std::clamp(deadline - absl::Now(), absl::ZeroDuration(), absl::Seconds(1)));
  io_threads.Stop();
  // Pending engine operations complete (UNAVAILABLE) while the hub they call back into exists.
  if (redis != nullptr) redis->Shutdown();
  // The same for backend calls; notifications of the last disconnects get what is left of the
  // drain budget (at least 1 s, at most 5 s), then what is still queued is dropped and logged.
  if (http_proxy != nullptr) {
    http_proxy->Shutdown(std::clamp(deadline - absl::Now(), absl::Seconds(1), absl::Seconds(5)));
    const core::ProxyStats stats = http_proxy->Stats();
    if (stats.notifications_dropped_shutdown > 0) {
      spdlog::warn("webhooks: {} notifications not delivered at shutdown",
                   stats.notifications_dropped_shutdown);
    }
  }
  if (left > 0) spdlog::warn("drain timeout: {} connections did not finish closing", left);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Debian builds abseil without NDEBUG, which turns on absl::Mutex's lock-order graph: a cost on
  // every lock of the hot path. The TSan build and the tests check lock order instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  herald::ParsedConfig parsed = herald::ParseServerConfig(argc, argv);
  if (!parsed.run) return parsed.exit_code;
  return Run(parsed.config);
}
