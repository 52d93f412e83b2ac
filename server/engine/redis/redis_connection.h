#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_CONNECTION_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/engine/redis/redis_client.h"
#include "server/engine/redis/redis_options.h"
#include "server/engine/redis/redis_reply.h"
#include "server/engine/redis/redis_scripts.h"

struct redisReader;

namespace herald::engine {

// One TCP (or, with RedisOptions::tls, TLS) connection to Redis, driven by the engine's
// io_context: commands are written in RESP
// (every command queued while a write is in flight leaves in the next write: pipelining), and
// replies are parsed by hiredis' reader and matched to their callbacks in order. Connects, runs
// its handshake (AUTH, SELECT, then the owner's commands, e.g. SCRIPT LOAD) and reconnects with
// backoff after any failure; while it is not ready, commands fail at once with UNAVAILABLE
// (never queued for later). On a pub/sub connection, pushed "message" and "smessage" replies, and
// "sunsubscribe" pushes nobody asked for (a Redis Cluster slot moved), go to `on_message` instead
// of a callback. Owns the socket, the TLS context and stream, reader and timers. Not
// thread-safe: every call, and every callback, on the io_context's one thread.
class RedisConnection : public RedisClient {
 public:
  RedisConnection(asio::io_context* io, RedisOptions options, std::string name,
                  std::vector<Argv> handshake, Handlers handlers);
  ~RedisConnection() override;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void Start() override;
  // Closes the connection for good; pending callbacks get UNAVAILABLE.
  void Stop() override;
  bool ready() const override { return state_ == State::kReady; }
  // Sends `argv`; `done` gets the reply, an error reply as INTERNAL (its message kept), or
  // UNAVAILABLE when the connection is not ready or fails before the reply.
  void Command(Argv argv, ReplyFn done) override;
  // EVALSHA of `script`, or EVAL when Redis answers NOSCRIPT (its script cache was flushed; the
  // handshake loads every script, so this is rare).
  void Eval(const RedisScript& script, const Argv& keys, const Argv& args, ReplyFn done) override;

 private:
  enum class State { kDown, kConnecting, kHandshake, kReady, kStopped };
  struct Pending {
    ReplyFn done;
    bool sunsubscribe = false;  // a SUNSUBSCRIBE: its confirmation is a reply, not a push
    std::chrono::steady_clock::time_point sent;
  };

  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket&>;

  void Connect();
  // After the TCP (and TLS) connect: AUTH, SELECT, the owner's handshake, PING.
  void StartHandshake(uint64_t gen);
  void Send(const Argv& argv, ReplyFn done);
  void Write();
  void Read();
  void OnReply(RedisReply reply, bool is_error);
  void Fail(const std::string& why);
  void ScheduleReconnect();
  void Watchdog();

  const RedisOptions options_;
  const std::string name_;
  const std::vector<Argv> handshake_;
  Handlers handlers_;

  State state_ = State::kDown;
  // Bumped on every connection attempt: handlers of an older socket see it and do nothing.
  uint64_t generation_ = 0;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  // With TLS: the context (verifies the server against the CA, and its name), or why it could
  // not be made (then every attempt fails with it); the stream of the current attempt, shared
  // with its pending operations so that a reconnect never frees it under them.
  std::unique_ptr<asio::ssl::context> tls_context_;
  std::string tls_error_;
  std::shared_ptr<TlsStream> tls_;
  asio::steady_timer connect_timer_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer watchdog_;
  absl::Duration backoff_;
  redisReader* reader_ = nullptr;
  std::deque<Pending> pending_;
  std::string out_;      // queued, not yet written
  std::string writing_;  // in the write in flight
  bool write_in_flight_ = false;
  std::vector<char> read_buffer_;
  size_t handshake_left_ = 0;
  // The last handshake step Redis refused (logged once until the next success).
  std::string last_refusal_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_CONNECTION_H_
