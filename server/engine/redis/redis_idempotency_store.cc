#include "server/engine/redis/redis_idempotency_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"

namespace herald::engine {
namespace {

constexpr char kRunning[] = "r";

}  // namespace

struct RedisIdempotencyStore::Attempt {
  Attempt(asio::io_context& io, std::string key, PublishFn publish, core::Done<Result> done)
      : key(std::move(key)), publish(std::move(publish)), done(std::move(done)), timer(io) {}
  std::string key;
  PublishFn publish;
  core::Done<Result> done;
  asio::steady_timer timer;
  absl::Time give_up = absl::InfiniteFuture();
};

RedisIdempotencyStore::RedisIdempotencyStore(absl::Duration window, RedisOptions options,
                                             asio::io_context* io, RedisClient* commands)
    : window_(window), options_(std::move(options)), io_(io), commands_(commands) {}

void RedisIdempotencyStore::Run(const std::string& channel, const std::string& key,
                                PublishFn publish, core::Done<Result> done) {
  auto attempt =
      std::make_shared<Attempt>(*io_, absl::StrCat(options_.prefix, ":{", channel, "}:i:", key),
                                std::move(publish), std::move(done));
  asio::post(*io_, [this, attempt] { Claim(attempt); });
}

void RedisIdempotencyStore::Claim(std::shared_ptr<Attempt> attempt) {
  commands_->Command({"SET", attempt->key, kRunning, "NX", "PX", Millis(options_.running_ttl)},
                     [this, attempt](absl::StatusOr<RedisReply> r) {
                       if (!r.ok()) return attempt->done(r.status());
                       if (r->is_nil())
                         return Look(attempt);  // someone published, or is publishing
                       PublishFn publish = std::move(attempt->publish);
                       publish([this, attempt](absl::StatusOr<v1::ChannelDelivery> result) {
                         asio::post(*io_, [this, attempt, result = std::move(result)]() mutable {
                           Finish(attempt, std::move(result));
                         });
                       });
                     });
}

void RedisIdempotencyStore::Finish(std::shared_ptr<Attempt> attempt,
                                   absl::StatusOr<v1::ChannelDelivery> result) {
  if (!result.ok()) {
    // Not remembered: a retry publishes.
    commands_->Command({"DEL", attempt->key}, [](absl::StatusOr<RedisReply>) {});
    return attempt->done(result.status());
  }
  // The publish happened: its caller learns so even if storing the result fails (a repeat then
  // finds the marker until it expires, and publishes again after that).
  commands_->Command(
      {"SET", attempt->key, absl::StrCat("d", result->SerializeAsString()), "PX", Millis(window_)},
      [](absl::StatusOr<RedisReply>) {});
  attempt->done(Result{*std::move(result), false});
}

void RedisIdempotencyStore::Look(std::shared_ptr<Attempt> attempt) {
  if (attempt->give_up == absl::InfiniteFuture()) {
    attempt->give_up = absl::Now() + options_.repeat_wait;
  }
  commands_->Command({"GET", attempt->key}, [this, attempt](absl::StatusOr<RedisReply> r) {
    if (!r.ok()) return attempt->done(r.status());
    if (r->is_nil()) return Claim(attempt);  // the first failed or expired meanwhile
    if (absl::StartsWith(r->str, "d")) {
      Result out;
      if (!out.delivery.ParseFromString(r->str.substr(1))) {
        return attempt->done(absl::InternalError("redis: malformed idempotency record"));
      }
      out.delivery.set_queued(0);  // nothing was queued by this call
      out.duplicate = true;
      return attempt->done(std::move(out));
    }
    if (absl::Now() >= attempt->give_up) {
      return attempt->done(absl::UnavailableError(
          "the first publish with this idempotency key is still running; retry"));
    }
    attempt->timer.expires_after(absl::ToChronoNanoseconds(options_.repeat_poll));
    attempt->timer.async_wait([this, attempt](const asio::error_code&) { Look(attempt); });
  });
}

}  // namespace herald::engine
