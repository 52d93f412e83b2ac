#include "server/engine/redis/redis_order_store.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {

RedisOrderStore::RedisOrderStore(core::Limits limits, asio::io_context* io, RedisBroker* broker,
                                 RedisConnection* commands)
    : limits_(std::move(limits)), io_(io), broker_(broker), commands_(commands) {}

void RedisOrderStore::Apply(core::OrderUpdate update, core::Done<core::OrderDecision> done) {
  asio::post(*io_, [this, update = std::move(update), done = std::move(done)]() mutable {
    const RedisOptions& options = broker_->options();
    std::vector<std::string> keys = {absl::StrCat(options.prefix, ":orders:v"),
                                     absl::StrCat(options.prefix, ":orders:e")};
    absl::Duration meta_ttl = options.meta_ttl;
    for (const std::string& channel : update.channels) {
      meta_ttl = std::max(meta_ttl, core::HistoryFor(limits_, channel).ttl);
    }
    std::vector<std::string> args = {update.order_id,
                                     absl::StrFormat("%020u", update.version),
                                     update.final ? "1" : "0",
                                     Millis(limits_.order_retention),
                                     Millis(meta_ttl),
                                     update.spec.key,
                                     EncodePublicationHead(update.spec),
                                     *update.spec.data_json};
    for (const std::string& channel : update.channels)
      broker_->AppendChannel(channel, &keys, &args);
    commands_->Eval(ApplyOrderScript(), keys, args,
                    [this, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      if (!r->is_array() || r->elements.size() < 3 || r->elements.size() % 2 == 0) {
                        return done(Malformed("order"));
                      }
                      core::OrderDecision decision;
                      decision.applied = r->at(0).number() == 1;
                      decision.latest_version = static_cast<uint64_t>(std::stoull(r->at(1).text()));
                      tracked_.store(static_cast<uint64_t>(r->at(2).number()),
                                     std::memory_order_relaxed);
                      for (size_t i = 3; i + 1 < r->elements.size(); i += 2) {
                        decision.positions.push_back(
                            {r->at(i).text(), static_cast<uint64_t>(r->at(i + 1).number())});
                      }
                      done(std::move(decision));
                    });
  });
}

void RedisOrderStore::Sweep(absl::Time now) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  int64_t due = next_sweep_ms_.load(std::memory_order_relaxed);
  if (now_ms < due ||
      !next_sweep_ms_.compare_exchange_strong(
          due, now_ms + absl::ToInt64Milliseconds(broker_->options().sweep_interval))) {
    return;
  }
  asio::post(*io_, [this] {
    const std::string& prefix = broker_->options().prefix;
    commands_->Eval(
        SweepOrdersScript(), {absl::StrCat(prefix, ":orders:v"), absl::StrCat(prefix, ":orders:e")},
        {}, [this](absl::StatusOr<RedisReply> r) {
          if (r.ok()) {
            tracked_.store(static_cast<uint64_t>(r->number()), std::memory_order_relaxed);
          }
        });
  });
}

}  // namespace herald::engine
