#include "server/engine/redis/redis_broker.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"

namespace herald::engine {
namespace {

// {epoch, offset, recovered, missed, snapshot} of the join script.
absl::StatusOr<core::JoinResult> ParseJoin(const RedisReply& r) {
  if (!r.is_array() || r.elements.size() != 5) return Malformed("join");
  core::JoinResult out;
  out.position = {r.at(0).text(), static_cast<uint64_t>(r.at(1).number())};
  out.recovered = r.at(2).number() == 1;
  for (const RedisReply& entry : r.at(3).elements) {
    std::optional<core::StoredPublication> p = DecodeHistoryEntry(entry);
    if (!p.has_value()) return Malformed("history entry");
    out.missed.push_back(*std::move(p));
  }
  for (const RedisReply& value : r.at(4).elements) {
    std::optional<core::StoredPublication> p = DecodeKeyedValue(value.str);
    if (!p.has_value()) return Malformed("snapshot entry");
    out.snapshot.push_back(*std::move(p));
  }
  std::sort(out.snapshot.begin(), out.snapshot.end(),
            [](const auto& a, const auto& b) { return a.offset < b.offset; });
  return out;
}

}  // namespace

RedisBroker::RedisBroker(core::Limits limits, RedisOptions options, asio::io_context* io,
                         RedisClient* commands, RedisClient* pubsub)
    : limits_(std::move(limits)),
      options_(std::move(options)),
      io_(io),
      commands_(commands),
      pubsub_(pubsub) {}

std::string RedisBroker::Key(const std::string& channel, const char* kind) const {
  // The hash tag {channel} keeps a channel's keys in one Redis Cluster slot.
  return absl::StrCat(options_.prefix, ":{", channel, "}:", kind);
}

std::string RedisBroker::PubSubChannel(const std::string& channel) const {
  return Key(channel, "p");
}

std::string RedisBroker::NewEpoch() {
  return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(bitgen_), absl::kZeroPad16));
}

void RedisBroker::AppendChannel(const std::string& channel, std::vector<std::string>* keys,
                                std::vector<std::string>* args) {
  const core::HistoryPolicy& policy = core::HistoryFor(limits_, channel);
  for (const char* kind : {"m", "h", "k", "x"}) keys->push_back(Key(channel, kind));
  args->push_back(PubSubChannel(channel));
  args->push_back(NewEpoch());
  args->push_back(absl::StrCat(policy.size));
  args->push_back(Millis(policy.ttl));
}

void RedisBroker::Publish(const std::string& channel, core::PublishSpec spec,
                          core::Done<core::StreamPosition> done) {
  asio::post(*io_, [this, channel, spec = std::move(spec), done = std::move(done)]() mutable {
    if (spec.kind != core::PublicationKind::kData) {
      // A member notice: straight to the nodes subscribed now, nothing retained.
      commands_->Command({"PUBLISH", PubSubChannel(channel),
                          absl::StrCat("- 0 ", absl::ToUnixMillis(absl::Now()), " ",
                                       EncodePublicationHead(spec), *spec.data_json)},
                         [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                           if (!r.ok()) return done(r.status());
                           done(core::StreamPosition{});
                         });
      return;
    }
    std::vector<std::string> keys, args;
    AppendChannel(channel, &keys, &args);
    const core::HistoryPolicy& policy = core::HistoryFor(limits_, channel);
    args.push_back(Millis(std::max(options_.meta_ttl, policy.ttl)));
    args.push_back(spec.key);
    args.push_back(spec.key_final ? "1" : "0");
    args.push_back(Millis(limits_.order_retention));
    args.push_back(EncodePublicationHead(spec));
    args.push_back(*spec.data_json);
    commands_->Eval(
        PublishScript(), keys, args,
        [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
          if (!r.ok()) return done(r.status());
          if (!r->is_array() || r->elements.size() != 2) {
            return done(Malformed("publish"));
          }
          done(core::StreamPosition{r->at(0).text(), static_cast<uint64_t>(r->at(1).number())});
        });
  });
}

void RedisBroker::Subscribe(const std::string& channel, core::StatusDone done) {
  asio::post(*io_, [this, channel, done = std::move(done)]() mutable {
    ChannelSub& sub = subs_[channel];
    ++sub.count;
    if (sub.live) {
      if (!sub.filling) return done(absl::OkStatus());
      sub.after_fill.push_back(std::move(done));
      return;
    }
    if (!pubsub_->ready()) {
      // Still counted: the caller's Unsubscribe balances it, and the channel is subscribed when
      // the connection is back.
      return done(absl::UnavailableError("redis pub/sub connection is not ready"));
    }
    sub.waiting.push_back(std::move(done));
    if (!sub.subscribing && !sub.live) SendSubscribe(channel, sub);
  });
}

void RedisBroker::SendSubscribe(const std::string& channel, ChannelSub& sub) {
  const uint64_t gen = ++next_generation_;
  sub.generation = gen;
  sub.subscribing = true;
  pubsub_->Command({"SUBSCRIBE", PubSubChannel(channel)},
                   [this, channel, gen](absl::StatusOr<RedisReply> r) {
                     OnSubscribed(channel, gen, r.status());
                   });
}

void RedisBroker::OnSubscribed(const std::string& channel, uint64_t generation,
                               absl::Status status) {
  auto it = subs_.find(channel);
  // Unsubscribed (or resubscribed) since: this confirmation is not the current one.
  if (it == subs_.end() || it->second.generation != generation) return;
  ChannelSub& sub = it->second;
  sub.subscribing = false;
  std::vector<core::StatusDone> waiting;
  waiting.swap(sub.waiting);
  if (status.ok()) {
    sub.live = true;
    const bool resubscribed = sub.was_live;
    sub.was_live = true;
    // Back after a lost connection: replay what was published while it was down.
    if (sub.last.has_value()) {
      Fill(channel, generation);
    } else {
      // Nothing reached this node since it subscribed, so it cannot tell what its subscribers
      // missed meanwhile: they resubscribe with recovery (their own positions).
      if (resubscribed && handler_ != nullptr) handler_->HandleGap(channel);
      FinishFill(sub, status);
    }
  } else {
    FinishFill(sub, status);
  }
  for (core::StatusDone& done : waiting) done(status);
}

void RedisBroker::Fill(const std::string& channel, uint64_t generation) {
  ChannelSub& sub = subs_[channel];
  sub.filling = true;
  std::vector<std::string> keys, args;
  for (const char* kind : {"m", "h", "k", "x"}) keys.push_back(Key(channel, kind));
  const core::HistoryPolicy& policy = core::HistoryFor(limits_, channel);
  args = {NewEpoch(),
          Millis(std::max(options_.meta_ttl, policy.ttl)),
          Millis(policy.ttl),
          "1",
          sub.last->epoch,
          absl::StrCat(sub.last->offset),
          "0"};
  commands_->Eval(JoinScript(), keys, args,
                  [this, channel, generation](absl::StatusOr<RedisReply> r) {
                    auto it = subs_.find(channel);
                    if (it == subs_.end() || it->second.generation != generation) return;
                    ChannelSub& sub = it->second;
                    absl::StatusOr<core::JoinResult> joined =
                        r.ok() ? ParseJoin(*r) : absl::StatusOr<core::JoinResult>(r.status());
                    if (!r.ok()) {
                      // The command connection is not back yet: try again shortly (live
                      // messages keep waiting), unless the subscription went meanwhile.
                      RetryFill(channel, generation);
                      return;
                    }
                    sub.filling = false;
                    if (!joined.ok() || !joined->recovered) {
                      // The gap cannot be replayed (history trimmed, or a new epoch after a
                      // Redis restart): the subscribers are told to resubscribe with recovery,
                      // before anything published after the gap reaches them.
                      sub.last.reset();
                      if (handler_ != nullptr) handler_->HandleGap(channel);
                    } else {
                      for (core::StoredPublication& missed : joined->missed) {
                        core::Publication p;
                        p.channel = channel;
                        p.position = {joined->position.epoch, missed.offset};
                        p.spec.data_json = std::move(missed.data_json);
                        Deliver(sub, std::move(p));
                      }
                    }
                    std::vector<core::Publication> buffered;
                    buffered.swap(sub.buffered);
                    for (core::Publication& p : buffered) Deliver(sub, std::move(p));
                    FinishFill(sub, absl::OkStatus());
                  });
}

void RedisBroker::RetryFill(const std::string& channel, uint64_t generation) {
  auto timer = std::make_shared<asio::steady_timer>(*io_, std::chrono::milliseconds(100));
  timer->async_wait([this, channel, generation, timer](const asio::error_code& ec) {
    auto it = subs_.find(channel);
    // Not while the pub/sub connection is down (or stopped): its return starts a new fill.
    if (ec || it == subs_.end() || it->second.generation != generation || !it->second.live ||
        !pubsub_->ready()) {
      return;
    }
    Fill(channel, generation);
  });
}

void RedisBroker::Unsubscribe(const std::string& channel) {
  asio::post(*io_, [this, channel] {
    auto it = subs_.find(channel);
    if (it == subs_.end() || --it->second.count > 0) return;
    std::vector<core::StatusDone> waiting;
    waiting.swap(it->second.waiting);
    for (core::StatusDone& done : it->second.after_fill) waiting.push_back(std::move(done));
    subs_.erase(it);
    if (pubsub_->ready()) {
      pubsub_->Command({"UNSUBSCRIBE", PubSubChannel(channel)}, [](absl::StatusOr<RedisReply>) {});
    }
    for (core::StatusDone& done : waiting) done(absl::CancelledError("unsubscribed"));
  });
}

void RedisBroker::OnPubSubReady() {
  for (auto& [channel, sub] : subs_) {
    if (sub.count > 0 && !sub.subscribing) SendSubscribe(channel, sub);
  }
}

void RedisBroker::OnPubSubDown() {
  // The connection failed every command in flight (SUBSCRIBE confirmations included, which
  // failed their waiters); what is left is to stop handling until the resubscription.
  for (auto& [channel, sub] : subs_) {
    sub.live = false;
    sub.subscribing = false;
    ++next_generation_;
    sub.generation = next_generation_;
    std::vector<core::StatusDone> waiting;
    waiting.swap(sub.waiting);
    for (core::StatusDone& done : waiting) {
      done(absl::UnavailableError("redis pub/sub connection lost"));
    }
    if (sub.filling) {
      sub.filling = false;
      std::vector<core::Publication> buffered;
      buffered.swap(sub.buffered);
      for (core::Publication& p : buffered) Deliver(sub, std::move(p));
    }
    FinishFill(sub, absl::UnavailableError("redis pub/sub connection lost"));
  }
}

void RedisBroker::OnMessage(RedisReply message) {
  const std::string& name = message.at(1).str;
  const std::string head = absl::StrCat(options_.prefix, ":{");
  if (!absl::StartsWith(name, head) || !absl::EndsWith(name, "}:p")) return;
  std::string channel = name.substr(head.size(), name.size() - head.size() - 3);
  auto it = subs_.find(channel);
  if (it == subs_.end() || !it->second.live) return;  // from an older subscription
  std::optional<core::Publication> p =
      DecodePublicationMessage(channel, message.at(2).str, nullptr);
  if (!p.has_value()) return;
  if (p->spec.kind != core::PublicationKind::kData) {
    // A member notice has no offset to order or replay by.
    if (handler_ != nullptr) handler_->HandlePublication(*p);
    return;
  }
  if (it->second.filling) {
    it->second.buffered.push_back(*std::move(p));
    return;
  }
  Deliver(it->second, *std::move(p));
}

void RedisBroker::FinishFill(ChannelSub& sub, const absl::Status& status) {
  std::vector<core::StatusDone> after;
  after.swap(sub.after_fill);
  for (core::StatusDone& done : after) done(status);
}

void RedisBroker::Deliver(ChannelSub& sub, core::Publication p) {
  // Already handled (replayed, then also arrived live): each offset reaches the handler once.
  if (sub.last.has_value() && sub.last->epoch == p.position.epoch &&
      p.position.offset <= sub.last->offset) {
    return;
  }
  sub.last = p.position;
  if (handler_ != nullptr) handler_->HandlePublication(p);
}

void RedisBroker::Barrier(const std::string& channel, absl::AnyInvocable<void(absl::Status)> done) {
  auto it = subs_.find(channel);
  if (it == subs_.end() || it->second.count <= 0) return done(absl::OkStatus());
  if (!it->second.live || it->second.filling) {
    if (!pubsub_->ready()) {
      return done(absl::UnavailableError("redis pub/sub connection is not ready"));
    }
    // Being resubscribed (and replayed): complete after that, so the replay cannot hand the
    // node anything at or below the joined position after the join.
    if (!it->second.subscribing && !it->second.live) SendSubscribe(channel, it->second);
    it->second.after_fill.push_back(std::move(done));
    return;
  }
  // The pub/sub connection answers PING after every message Redis queued to it before: the
  // ones published before the Join's read included.
  pubsub_->Command({"PING"}, [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
    done(r.status());
  });
}

void RedisBroker::Join(const std::string& channel, core::JoinSpec spec,
                       core::Done<core::JoinResult> done) {
  asio::post(*io_, [this, channel, spec = std::move(spec), done = std::move(done)]() mutable {
    RunJoin(channel, spec, std::move(done));
  });
}

void RedisBroker::RunJoin(const std::string& channel, const core::JoinSpec& spec,
                          core::Done<core::JoinResult> done) {
  std::vector<std::string> keys;
  for (const char* kind : {"m", "h", "k", "x"}) keys.push_back(Key(channel, kind));
  const core::HistoryPolicy& policy = core::HistoryFor(limits_, channel);
  std::vector<std::string> args = {
      NewEpoch(),
      Millis(std::max(options_.meta_ttl, policy.ttl)),
      Millis(policy.ttl),
      spec.recover.has_value() ? "1" : "0",
      spec.recover.has_value() ? spec.recover->epoch : "",
      spec.recover.has_value() ? absl::StrCat(spec.recover->offset) : "0",
      spec.snapshot ? "1" : "0"};
  commands_->Eval(JoinScript(), keys, args,
                  [this, channel, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                    if (!r.ok()) return done(r.status());
                    absl::StatusOr<core::JoinResult> joined = ParseJoin(*r);
                    if (!joined.ok()) return done(joined.status());
                    Barrier(channel, [joined = *std::move(joined),
                                      done = std::move(done)](absl::Status st) mutable {
                      if (!st.ok()) return done(st);
                      done(std::move(joined));
                    });
                  });
}

void RedisBroker::History(const std::string& channel, core::HistoryQuery query,
                          core::Done<core::HistoryResult> done) {
  asio::post(*io_, [this, channel, query, done = std::move(done)]() mutable {
    std::vector<std::string> keys;
    for (const char* kind : {"m", "h", "k", "x"}) keys.push_back(Key(channel, kind));
    const core::HistoryPolicy& policy = core::HistoryFor(limits_, channel);
    std::vector<std::string> args = {NewEpoch(),
                                     Millis(std::max(options_.meta_ttl, policy.ttl)),
                                     Millis(policy.ttl),
                                     absl::StrCat(query.since_offset),
                                     absl::StrCat(std::max<size_t>(1, query.limit)),
                                     query.reverse ? "1" : "0"};
    commands_->Eval(HistoryScript(), keys, args,
                    [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      if (!r->is_array() || r->elements.size() != 3) {
                        return done(Malformed("history"));
                      }
                      core::HistoryResult out;
                      out.position = {r->at(0).text(), static_cast<uint64_t>(r->at(1).number())};
                      for (const RedisReply& entry : r->at(2).elements) {
                        std::optional<core::StoredPublication> p = DecodeHistoryEntry(entry);
                        if (!p.has_value()) return done(Malformed("history entry"));
                        out.publications.push_back(*std::move(p));
                      }
                      done(std::move(out));
                    });
  });
}

}  // namespace herald::engine
