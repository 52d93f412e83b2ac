#include "server/engine/redis/redis_connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include <hiredis/hiredis.h>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {
namespace {

RedisReply Convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) out.elements.push_back(Convert(*r.element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

}  // namespace

RedisConnection::RedisConnection(asio::io_context* io, RedisOptions options, std::string name,
                                 std::vector<Argv> handshake, Handlers handlers)
    : options_(std::move(options)),
      name_(std::move(name)),
      handshake_(std::move(handshake)),
      handlers_(std::move(handlers)),
      resolver_(*io),
      socket_(*io),
      connect_timer_(*io),
      reconnect_timer_(*io),
      watchdog_(*io),
      backoff_(options_.reconnect_min),
      read_buffer_(64 * 1024) {
  if (!options_.tls) return;
  // TLS 1.2 or later, the peer verified against the CA and by name (checked per attempt).
  auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  context->set_verify_mode(asio::ssl::verify_peer);
  asio::error_code ec;
  if (options_.tls_ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(options_.tls_ca_file, ec);
  }
  if (!ec && !options_.tls_cert_file.empty()) {
    context->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (!ec) context->use_private_key_file(options_.tls_key_file, asio::ssl::context::pem, ec);
  }
  if (ec) {
    tls_error_ = absl::StrCat("tls: ", ec.message());
    return;
  }
  tls_context_ = std::move(context);
}

RedisConnection::~RedisConnection() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void RedisConnection::Start() {
  Connect();
  Watchdog();
}

void RedisConnection::Stop() {
  if (state_ != State::kDown) Fail("engine stopped");
  state_ = State::kStopped;
  reconnect_timer_.cancel();
  watchdog_.cancel();
  connect_timer_.cancel();
  resolver_.cancel();
}

void RedisConnection::Connect() {
  if (state_ == State::kStopped) return;
  state_ = State::kConnecting;
  const uint64_t gen = ++generation_;
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  out_.clear();
  writing_.clear();
  write_in_flight_ = false;
  connect_timer_.expires_after(ToChrono(options_.connect_timeout));
  connect_timer_.async_wait([this, gen](const asio::error_code& ec) {
    if (ec || gen != generation_ || state_ != State::kConnecting) return;
    Fail("connect timed out");
  });
  resolver_.async_resolve(
      options_.host, std::to_string(options_.port),
      [this, gen](const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (gen != generation_ || state_ != State::kConnecting) return;
        if (ec) return Fail(absl::StrCat("resolve ", options_.host, ": ", ec.message()));
        asio::async_connect(
            socket_, results,
            [this, gen](const asio::error_code& ec, const asio::ip::tcp::endpoint&) {
              if (gen != generation_ || state_ != State::kConnecting) return;
              if (ec) return Fail(absl::StrCat("connect: ", ec.message()));
              asio::error_code ignored;
              socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
              if (!options_.tls) {
                connect_timer_.cancel();
                return StartHandshake(gen);
              }
              if (tls_context_ == nullptr) return Fail(tls_error_);
              tls_ = std::make_shared<TlsStream>(socket_, *tls_context_);
              // SNI, and the certificate must name the host of the URL.
              SSL_set_tlsext_host_name(tls_->native_handle(), options_.host.c_str());
              tls_->set_verify_callback(asio::ssl::host_name_verification(options_.host));
              tls_->async_handshake(TlsStream::client,
                                    [this, gen, tls = tls_](const asio::error_code& ec) {
                                      if (gen != generation_ || state_ != State::kConnecting)
                                        return;
                                      if (ec)
                                        return Fail(absl::StrCat("tls handshake: ", ec.message()));
                                      connect_timer_.cancel();
                                      StartHandshake(gen);
                                    });
            });
      });
}

void RedisConnection::StartHandshake(uint64_t gen) {
  state_ = State::kHandshake;
  Read();
  std::vector<Argv> steps;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      steps.push_back({"AUTH", options_.password});
    } else {
      steps.push_back({"AUTH", options_.username, options_.password});
    }
  }
  if (options_.db != 0) steps.push_back({"SELECT", std::to_string(options_.db)});
  for (const Argv& a : handshake_) steps.push_back(a);
  steps.push_back({"PING"});
  handshake_left_ = steps.size();
  for (const Argv& step : steps) {
    Send(step, [this, gen, what = step[0]](absl::StatusOr<RedisReply> r) {
      if (gen != generation_ || state_ != State::kHandshake) return;
      if (!r.ok()) {
        // Redis answered and refused (a wrong password, a db out of range): a configuration
        // error, not an outage. Said once per reason, not once per reconnect.
        const std::string why = absl::StrCat(what, ": ", r.status().message());
        if (absl::IsInternal(r.status()) && why != last_refusal_) {
          spdlog::error("redis at {}:{} refused the {} connection's handshake: {}", options_.host,
                        options_.port, name_, why);
          last_refusal_ = why;
        }
        return Fail(why);
      }
      if (--handshake_left_ > 0) return;
      last_refusal_.clear();
      state_ = State::kReady;
      backoff_ = options_.reconnect_min;
      if (handlers_.on_ready) handlers_.on_ready();
    });
  }
}

void RedisConnection::Command(Argv argv, ReplyFn done) {
  if (state_ != State::kReady) {
    done(absl::UnavailableError(absl::StrCat("redis ", name_, " connection to ", options_.host, ":",
                                             options_.port, " is not ready")));
    return;
  }
  Send(argv, std::move(done));
}

void RedisConnection::Eval(const RedisScript& script, const Argv& keys, const Argv& args,
                           ReplyFn done) {
  Argv argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1);
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  Command(argv,
          [this, &script, argv, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
            if (reply.ok() || !absl::StrContains(reply.status().message(), "NOSCRIPT")) {
              return done(std::move(reply));
            }
            argv[0] = "EVAL";
            argv[1] = script.source;
            Command(std::move(argv), std::move(done));
          });
}

void RedisConnection::Send(const Argv& argv, ReplyFn done) {
  AppendCommand(argv, &out_);
  pending_.push_back(
      Pending{std::move(done), argv[0] == "SUNSUBSCRIBE", std::chrono::steady_clock::now()});
  if (!write_in_flight_) Write();
}

void RedisConnection::Write() {
  if (out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  const uint64_t gen = generation_;
  auto done = [this, gen, tls = tls_](const asio::error_code& ec, size_t) {
    if (gen != generation_) return;
    write_in_flight_ = false;
    writing_.clear();
    if (ec) return Fail(absl::StrCat("write: ", ec.message()));
    Write();
  };
  if (tls_ != nullptr) {
    asio::async_write(*tls_, asio::buffer(writing_), std::move(done));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(done));
  }
}

void RedisConnection::Read() {
  const uint64_t gen = generation_;
  auto done = [this, gen, tls = tls_](const asio::error_code& ec, size_t n) {
    if (gen != generation_) return;
    if (ec) return Fail(absl::StrCat("read: ", ec.message()));
    if (redisReaderFeed(reader_, read_buffer_.data(), n) != REDIS_OK) {
      return Fail("protocol error");
    }
    while (gen == generation_) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return Fail("protocol error");
      if (raw == nullptr) break;
      auto* reply = static_cast<redisReply*>(raw);
      const bool is_error = reply->type == REDIS_REPLY_ERROR;
      RedisReply converted = Convert(*reply);
      freeReplyObject(reply);
      OnReply(std::move(converted), is_error);
    }
    if (gen == generation_) Read();
  };
  if (tls_ != nullptr) {
    tls_->async_read_some(asio::buffer(read_buffer_), std::move(done));
  } else {
    socket_.async_read_some(asio::buffer(read_buffer_), std::move(done));
  }
}

void RedisConnection::OnReply(RedisReply reply, bool is_error) {
  // A pushed pub/sub message: ["message" or "smessage", channel, payload], or a "sunsubscribe"
  // Redis Cluster sends when the channel's slot moved away. Everything else answers the oldest
  // command ((S)SUBSCRIBE, (S)UNSUBSCRIBE of one channel and PING each get exactly one reply).
  if (handlers_.on_message && reply.is_array() && reply.elements.size() == 3) {
    const std::string& kind = reply.elements[0].str;
    if (kind == "message" || kind == "smessage" ||
        (kind == "sunsubscribe" && (pending_.empty() || !pending_.front().sunsubscribe))) {
      handlers_.on_message(std::move(reply));
      return;
    }
  }
  if (pending_.empty()) return Fail("reply without a command");
  ReplyFn done = std::move(pending_.front().done);
  pending_.pop_front();
  if (is_error) {
    done(absl::InternalError(absl::StrCat("redis: ", reply.str)));
  } else {
    done(std::move(reply));
  }
}

void RedisConnection::Fail(const std::string& why) {
  if (state_ == State::kDown || state_ == State::kStopped) return;
  const bool was_ready = state_ == State::kReady;
  state_ = State::kDown;
  ++generation_;
  asio::error_code ignored;
  socket_.close(ignored);
  tls_.reset();  // its pending operations keep it alive until they end (aborted)
  connect_timer_.cancel();
  out_.clear();
  std::deque<Pending> failed;
  failed.swap(pending_);
  const absl::Status status = absl::UnavailableError(absl::StrCat(
      "redis ", name_, " connection to ", options_.host, ":", options_.port, ": ", why));
  for (Pending& p : failed) p.done(status);
  if (was_ready && handlers_.on_down) handlers_.on_down();
  ScheduleReconnect();
}

void RedisConnection::ScheduleReconnect() {
  if (state_ == State::kStopped) return;
  // Full jitter over [backoff/2, backoff], so nodes that lost Redis together do not return in
  // lockstep.
  absl::BitGen gen;
  const absl::Duration wait = backoff_ * absl::Uniform(gen, 0.5, 1.0);
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  reconnect_timer_.expires_after(ToChrono(wait));
  reconnect_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || state_ != State::kDown) return;
    Connect();
  });
}

void RedisConnection::Watchdog() {
  watchdog_.expires_after(std::chrono::milliseconds(250));
  watchdog_.async_wait([this](const asio::error_code& ec) {
    if (ec || state_ == State::kStopped) return;
    if (!pending_.empty() && (state_ == State::kReady || state_ == State::kHandshake) &&
        std::chrono::steady_clock::now() - pending_.front().sent >
            ToChrono(options_.command_timeout)) {
      Fail("no reply within the command timeout");
    }
    Watchdog();
  });
}

}  // namespace herald::engine
