#include "server/engine/redis/redis_task_store.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {
namespace {

// Due entries one sweep script handles (and outbox entries it takes); a full batch runs again.
constexpr int kSweepBatch = 256;
// An outbox left by a node that is gone (or one that does not sweep) disappears after this.
constexpr absl::Duration kOutboxTtl = absl::Minutes(10);

absl::StatusOr<std::vector<core::Lease>> Leases(const RedisReply& encoded, bool with_data) {
  std::vector<core::Lease> out;
  for (const RedisReply& e : encoded.elements) {
    std::optional<core::Lease> lease = DecodeLease(e.str, with_data);
    if (!lease.has_value()) return Malformed("task lease");
    out.push_back(*std::move(lease));
  }
  return out;
}

}  // namespace

RedisTaskStore::RedisTaskStore(const core::Limits& limits, RedisOptions options,
                               asio::io_context* io, RedisClient* commands, RedisClient* pubsub)
    : max_queue_depth_(limits.max_queue_depth),
      options_(std::move(options)),
      root_(absl::StrCat("{", options_.prefix, "}:tasks:")),
      channel_(absl::StrCat(root_, "waiting")),
      io_(io),
      commands_(commands),
      pubsub_(pubsub) {}

void RedisTaskStore::Enqueue(const std::string& queue, core::TaskSpec spec, std::string offer_to,
                             core::Done<core::Enqueued> done) {
  asio::post(*io_, [this, queue, spec = std::move(spec), offer_to = std::move(offer_to),
                    done = std::move(done)]() mutable {
    if (!offer_to.empty()) queues_.insert(queue);
    commands_->Eval(EnqueueTaskScript(), {root_},
                    {root_, queue, spec.data_json != nullptr ? *spec.data_json : "null",
                     Millis(spec.ack_deadline), Millis(spec.ttl), offer_to,
                     absl::StrCat(max_queue_depth_), channel_},
                    [queue, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      if (!r->is_array() || r->elements.size() < 2)
                        return done(Malformed("enqueue"));
                      if (r->at(0).number() == 0) {
                        return done(absl::ResourceExhaustedError(
                            absl::StrCat("queue: ", queue, " has ", r->at(1).number(),
                                         " tasks waiting for a worker (the limit)")));
                      }
                      if (r->elements.size() < 3) return done(Malformed("enqueue"));
                      core::Enqueued out;
                      out.waiting = static_cast<uint32_t>(r->at(1).number());
                      out.task_id = r->at(2).text();
                      if (r->elements.size() > 3) {
                        out.lease = DecodeLease(r->at(3).str, /*with_data=*/true);
                        if (!out.lease.has_value()) return done(Malformed("enqueue"));
                      }
                      done(std::move(out));
                    });
  });
}

void RedisTaskStore::Lease(const std::string& queue, std::vector<std::string> holders,
                           core::Done<std::vector<core::Lease>> done) {
  if (holders.empty()) return done(std::vector<core::Lease>());
  asio::post(*io_, [this, queue, holders = std::move(holders), done = std::move(done)]() mutable {
    queues_.insert(queue);
    std::vector<std::string> args = {root_, queue};
    args.insert(args.end(), std::make_move_iterator(holders.begin()),
                std::make_move_iterator(holders.end()));
    commands_->Eval(LeaseTasksScript(), {root_}, args,
                    [this, queue, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) {
                        // Its caller does not ask again by itself: the next sweep that reaches
                        // Redis says the tasks wait.
                        unleased_.insert(queue);
                        return done(r.status());
                      }
                      if (!r->is_array() || r->elements.size() != 2) {
                        return done(Malformed("lease"));
                      }
                      done(Leases(r->at(0), /*with_data=*/true));
                      Report(r->at(1));
                    });
  });
}

void RedisTaskStore::Finish(const RedisScript& script, const std::string& delivery_id,
                            const std::string& holder, core::StatusDone done) {
  asio::post(*io_, [this, &script, delivery_id, holder, done = std::move(done)]() mutable {
    commands_->Eval(
        script, {root_}, {root_, delivery_id, holder, channel_},
        [delivery_id, holder, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
          if (!r.ok()) return done(r.status());
          if (r->number() == 1) return done(absl::OkStatus());
          done(absl::NotFoundError(absl::StrCat("delivery_id: ", delivery_id, " is not leased to ",
                                                holder,
                                                " (acked, given back, timed out or another's)")));
        });
  });
}

void RedisTaskStore::Ack(const std::string& delivery_id, const std::string& holder,
                         core::StatusDone done) {
  Finish(AckTaskScript(), delivery_id, holder, std::move(done));
}

void RedisTaskStore::Release(const std::string& delivery_id, const std::string& holder,
                             core::StatusDone done) {
  Finish(ReleaseTaskScript(), delivery_id, holder, std::move(done));
}

void RedisTaskStore::List(core::Done<std::vector<core::QueueState>> done) {
  asio::post(*io_, [this, done = std::move(done)]() mutable {
    commands_->Eval(
        ListTasksScript(), {root_}, {root_},
        [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
          if (!r.ok()) return done(r.status());
          std::vector<core::QueueState> out;
          for (const RedisReply& q : r->elements) {
            if (q.elements.size() != 7) return done(Malformed("task list"));
            core::QueueState s;
            s.queue = q.at(0).text();
            s.waiting = static_cast<uint32_t>(q.at(1).number());
            s.dispatched = static_cast<uint64_t>(q.at(2).number());
            s.acked = static_cast<uint64_t>(q.at(3).number());
            s.redelivered = static_cast<uint64_t>(q.at(4).number());
            s.expired = static_cast<uint64_t>(q.at(5).number());
            absl::StatusOr<std::vector<core::Lease>> leased = Leases(q.at(6), /*with_data=*/false);
            if (!leased.ok()) return done(leased.status());
            s.leased = *std::move(leased);
            // Oldest delivery first: by the time it was granted.
            std::sort(s.leased.begin(), s.leased.end(),
                      [](const core::Lease& a, const core::Lease& b) {
                        return a.deadline - a.ack_deadline < b.deadline - b.ack_deadline;
                      });
            out.push_back(std::move(s));
          }
          std::sort(out.begin(), out.end(),
                    [](const core::QueueState& a, const core::QueueState& b) {
                      return a.queue < b.queue;
                    });
          done(std::move(out));
        });
  });
}

void RedisTaskStore::Sweep(absl::Time now) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  int64_t due = next_sweep_ms_.load(std::memory_order_relaxed);
  if (now_ms < due || !next_sweep_ms_.compare_exchange_strong(
                          due, now_ms + absl::ToInt64Milliseconds(options_.task_sweep_interval))) {
    return;
  }
  asio::post(*io_, [this] {
    if (sweeping_) return;
    sweeping_ = true;
    RunSweep();
  });
}

void RedisTaskStore::RunSweep() {
  commands_->Eval(SweepTasksScript(), {root_},
                  {root_, options_.node, absl::StrCat(kSweepBatch), channel_, Millis(kOutboxTtl)},
                  [this](absl::StatusOr<RedisReply> r) {
                    if (!r.ok() || !r->is_array() || r->elements.size() != 2) {
                      sweeping_ = false;  // the next tick tries again
                      return;
                    }
                    Report(r->at(0));
                    Announce(std::exchange(unleased_, {}));
                    if (r->at(1).number() == 1) return RunSweep();
                    sweeping_ = false;
                  });
}

void RedisTaskStore::Report(const RedisReply& reports) {
  for (const RedisReply& e : reports.elements) {
    const absl::string_view entry = e.str;
    if (entry.size() < 2) continue;
    std::optional<core::Lease> lease = DecodeLease(entry.substr(2), /*with_data=*/false);
    if (!lease.has_value() || handler_ == nullptr) continue;
    handler_->TaskTimedOut(
        *lease, entry[0] == 'a' ? core::TaskTimeout::kAckDeadline : core::TaskTimeout::kTtl);
  }
}

void RedisTaskStore::OnPubSubReady(absl::AnyInvocable<void()> subscribed) {
  pubsub_->Command({"SUBSCRIBE", channel_}, [this, subscribed = std::move(subscribed)](
                                                absl::StatusOr<RedisReply> r) mutable {
    if (!r.ok()) return;
    subscribed();
    // Notices published while the connection was away are lost: look again (may be spurious).
    Announce(queues_);
  });
}

void RedisTaskStore::Announce(absl::flat_hash_set<std::string> queues) {
  if (handler_ == nullptr) return;
  for (const std::string& queue : queues) handler_->TasksWaiting(queue);
}

bool RedisTaskStore::OnMessage(const RedisReply& message) {
  if (message.at(1).str != channel_) return false;
  if (handler_ != nullptr) handler_->TasksWaiting(message.at(2).str);
  return true;
}

}  // namespace herald::engine
