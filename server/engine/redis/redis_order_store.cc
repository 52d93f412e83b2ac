#include "server/engine/redis/redis_order_store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {

RedisOrderStore::RedisOrderStore(core::Limits limits, asio::io_context* io, RedisBroker* broker,
                                 RedisClient* commands)
    : limits_(std::move(limits)), io_(io), broker_(broker), commands_(commands) {}

void RedisOrderStore::Apply(core::OrderUpdate update, core::Done<core::OrderDecision> done) {
  asio::post(*io_, [this, update = std::move(update), done = std::move(done)]() mutable {
    const RedisOptions& options = broker_->options();
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
    if (options.cluster) return ApplyPerChannel(update, std::move(args), std::move(done));
    std::vector<std::string> keys = {absl::StrCat(options.prefix, ":orders:v"),
                                     absl::StrCat(options.prefix, ":orders:e")};
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

void RedisOrderStore::ApplyPerChannel(const core::OrderUpdate& update,
                                      std::vector<std::string> args,
                                      core::Done<core::OrderDecision> done) {
  // One script per channel, each in its channel's slot with that channel's version guard; the
  // calls leave in one pipelined write per master. Their outcomes combine: applied only when
  // every channel applied it.
  struct Outcome {
    size_t left = 0;
    absl::Status status;
    bool applied = true;
    uint64_t latest = 0;
    uint64_t tracked = 0;
    std::vector<core::StreamPosition> positions;
    core::Done<core::OrderDecision> done;
  };
  auto outcome = std::make_shared<Outcome>();
  outcome->left = update.channels.size();
  outcome->positions.resize(update.channels.size());
  outcome->done = std::move(done);
  if (update.channels.empty()) {
    return outcome->done(absl::InvalidArgumentError("order: no channel"));
  }
  for (size_t i = 0; i < update.channels.size(); ++i) {
    const std::string& channel = update.channels[i];
    std::vector<std::string> keys = {broker_->Key(channel, "ov"), broker_->Key(channel, "oe")};
    std::vector<std::string> channel_args = args;
    broker_->AppendChannel(channel, &keys, &channel_args);
    commands_->Eval(
        ApplyOrderScript(), keys, channel_args, [this, outcome, i](absl::StatusOr<RedisReply> r) {
          if (!r.ok()) {
            if (outcome->status.ok()) outcome->status = r.status();
          } else if (!r->is_array() || (r->elements.size() != 3 && r->elements.size() != 5)) {
            if (outcome->status.ok()) outcome->status = Malformed("order");
          } else {
            outcome->applied = outcome->applied && r->at(0).number() == 1;
            outcome->latest = std::max<uint64_t>(
                outcome->latest, static_cast<uint64_t>(std::stoull(r->at(1).text())));
            outcome->tracked = std::max(outcome->tracked, static_cast<uint64_t>(r->at(2).number()));
            if (r->elements.size() == 5) {
              outcome->positions[i] = {r->at(3).text(), static_cast<uint64_t>(r->at(4).number())};
            }
          }
          if (--outcome->left > 0) return;
          if (!outcome->status.ok()) return outcome->done(outcome->status);
          tracked_.store(outcome->tracked, std::memory_order_relaxed);
          core::OrderDecision decision;
          decision.applied = outcome->applied;
          decision.latest_version = outcome->latest;
          if (decision.applied) decision.positions = std::move(outcome->positions);
          outcome->done(std::move(decision));
        });
  }
}

void RedisOrderStore::Sweep(absl::Time now) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  int64_t due = next_sweep_ms_.load(std::memory_order_relaxed);
  if (now_ms < due ||
      !next_sweep_ms_.compare_exchange_strong(
          due, now_ms + absl::ToInt64Milliseconds(broker_->options().sweep_interval))) {
    return;
  }
  // With a Redis Cluster the guards are per channel and each order call forgets its channel's
  // ended orders: there is no one hash to sweep.
  if (broker_->options().cluster) return;
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
