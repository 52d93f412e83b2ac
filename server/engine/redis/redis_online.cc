#include "server/engine/redis/redis_online.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {
namespace {

// How often a node asks Redis for the users whose grace period ended.
constexpr absl::Duration kDueInterval = absl::Milliseconds(100);
// How long the users taken from a node counted gone are remembered, should it come back (then
// they are reported online again).
constexpr absl::Duration kTakenTtl = absl::Hours(1);
// After a user's grace period ends, how long before their USER_OFFLINE may be reported: every node
// emits the DISCONNECTs it held back for the user when the grace period ends (at its next 50 ms
// tick) and they go through Redis first, so any node's watchers get them before the USER_OFFLINE
// that any node may report.
constexpr absl::Duration kOfflineSettle = absl::Milliseconds(250);

}  // namespace

RedisOnline::RedisOnline(const RedisOptions& options, absl::Duration grace, asio::io_context* io,
                         RedisControlBus* bus, RedisClient* commands)
    : prefix_(absl::StrCat("{", options.prefix, "}")),
      grace_(grace),
      io_(io),
      bus_(bus),
      commands_(commands) {}

std::string RedisOnline::UserKey(const std::string& user) const {
  return absl::StrCat(prefix_, ":online:u:", user);
}
std::string RedisOnline::InstanceKey() const {
  return absl::StrCat(prefix_, ":online:i:", bus_->instance());
}
std::string RedisOnline::DueKey() const { return absl::StrCat(prefix_, ":online:due"); }

void RedisOnline::Connected(const std::string& user, core::Done<bool> done) {
  asio::post(*io_, [this, user, done = std::move(done)]() mutable {
    ++mine_[user];
    commands_->Eval(OnlineConnectScript(), {UserKey(user), InstanceKey(), DueKey()},
                    {bus_->instance(), user},
                    [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      done(r->number() == 1);
                    });
  });
}

void RedisOnline::Disconnected(const std::string& user, absl::Time /*now*/, core::Done<bool> done) {
  asio::post(*io_, [this, user, done = std::move(done)]() mutable {
    if (auto it = mine_.find(user); it != mine_.end() && --it->second <= 0) mine_.erase(it);
    // Redis' clock starts the grace period: node clocks do not matter.
    commands_->Eval(OnlineDisconnectScript(), {UserKey(user), InstanceKey(), DueKey()},
                    {bus_->instance(), user,
                     absl::StrCat(grace_ > absl::ZeroDuration()
                                      ? absl::ToInt64Milliseconds(grace_ + kOfflineSettle)
                                      : 0)},
                    [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      done(r->number() == 1);
                    });
  });
}

void RedisOnline::Due(absl::Time now, core::Done<core::OnlineChanges> done) {
  asio::post(*io_, [this, now, done = std::move(done)]() mutable {
    core::OnlineChanges changes;
    changes.online = std::exchange(back_online_, {});
    if (due_in_flight_ || now < last_due_ + kDueInterval || !commands_->ready()) {
      return done(std::move(changes));
    }
    due_in_flight_ = true;
    last_due_ = now;
    commands_->Eval(OnlineDueScript(),
                    {DueKey(), bus_->GoneKey(), bus_->NodesKey(), bus_->InstancesKey()},
                    {prefix_, absl::StrCat(absl::ToInt64Milliseconds(grace_)),
                     absl::StrCat(absl::ToInt64Milliseconds(kTakenTtl))},
                    [this, changes = std::move(changes),
                     done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      due_in_flight_ = false;
                      if (r.ok()) {
                        for (const RedisReply& user : r->elements) {
                          changes.offline.push_back(user.str);
                        }
                      }
                      done(std::move(changes));
                    });
  });
}

void RedisOnline::Restore() {
  std::vector<std::string> args = {prefix_, bus_->instance(),
                                   absl::StrCat(absl::ToInt64Milliseconds(grace_))};
  for (const auto& [user, count] : mine_) {
    args.push_back(user);
    args.push_back(absl::StrCat(count));
  }
  commands_->Eval(
      OnlineRestoreScript(),
      {InstanceKey(), DueKey(), absl::StrCat(prefix_, ":online:taken:", bus_->instance())}, args,
      [this](absl::StatusOr<RedisReply> r) {
        if (!r.ok()) return;
        for (const RedisReply& user : r->elements) back_online_.push_back(user.str);
      });
}

}  // namespace herald::engine
