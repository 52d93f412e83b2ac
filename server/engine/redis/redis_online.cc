#include "server/engine/redis/redis_online.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {
namespace {

// How often a node asks Redis for the users whose grace period ended.
constexpr absl::Duration kDueInterval = absl::Milliseconds(100);

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
                    {bus_->instance(), user, absl::StrCat(absl::ToInt64Milliseconds(grace_))},
                    [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      done(r->number() == 1);
                    });
  });
}

void RedisOnline::Due(absl::Time now, core::Done<std::vector<std::string>> done) {
  asio::post(*io_, [this, now, done = std::move(done)]() mutable {
    if (due_in_flight_ || now < last_due_ + kDueInterval || !commands_->ready()) {
      return done(std::vector<std::string>());
    }
    due_in_flight_ = true;
    last_due_ = now;
    commands_->Eval(OnlineDueScript(), {DueKey(), bus_->GoneKey()},
                    {prefix_, absl::StrCat(absl::ToInt64Milliseconds(grace_))},
                    [this, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      due_in_flight_ = false;
                      if (!r.ok()) return done(r.status());
                      std::vector<std::string> offline;
                      for (const RedisReply& user : r->elements) offline.push_back(user.str);
                      done(std::move(offline));
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
  commands_->Eval(OnlineRestoreScript(), {InstanceKey(), DueKey()}, args,
                  [](absl::StatusOr<RedisReply>) {});
}

}  // namespace herald::engine
