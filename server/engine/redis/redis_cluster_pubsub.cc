#include "server/engine/redis/redis_cluster_pubsub.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_slot.h"

namespace herald::engine {

RedisClusterPubSub::RedisClusterPubSub(asio::io_context* io, RedisOptions options,
                                       RedisClusterClient* map, Handlers handlers)
    : io_(io),
      options_(std::move(options)),
      map_(map),
      handlers_(std::move(handlers)),
      follow_timer_(*io) {}

RedisClusterPubSub::~RedisClusterPubSub() = default;

void RedisClusterPubSub::Start() {
  map_->SetMapHandler([this] { OnMap(); });
  if (!map_->masters().empty()) OnMap();
}

void RedisClusterPubSub::Stop() {
  stopped_ = true;
  follow_timer_.cancel();
  const bool was_ready = ready_;
  ready_ = false;
  for (auto& [address, node] : nodes_) node->Stop();
  if (was_ready && handlers_.on_down) handlers_.on_down();
}

RedisConnection* RedisClusterPubSub::Node(const std::string& address) {
  auto it = nodes_.find(address);
  if (it != nodes_.end()) return it->second.get();
  RedisConnection::Handlers handlers;
  handlers.on_ready = [this] { UpdateReady(); };
  handlers.on_down = [this] { UpdateReady(); };
  handlers.on_message = [this](RedisReply push) { OnPush(std::move(push)); };
  auto node = std::make_unique<RedisConnection>(
      io_, ClusterNodeOptions(options_, address), absl::StrCat("pub/sub ", address),
      std::vector<RedisConnection::Argv>{}, std::move(handlers));
  RedisConnection* raw = node.get();
  nodes_.emplace(address, std::move(node));
  if (!stopped_) raw->Start();
  return raw;
}

void RedisClusterPubSub::OnMap() {
  if (stopped_) return;
  following_ = false;
  for (const std::string& m : map_->masters()) Node(m);
  bool moved = false;
  for (const auto& [channel, owner] : subscribed_) {
    moved = moved || map_->OwnerOf(KeySlot(channel)) != owner;
  }
  if (moved) return Bounce();
  UpdateReady();
}

void RedisClusterPubSub::OnPush(RedisReply push) {
  if (push.at(0).str == "smessage") {
    push.elements[0].str = "message";
    if (handlers_.on_message) handlers_.on_message(std::move(push));
    return;
  }
  if (push.at(0).str == "sunsubscribe") {
    // The channel's slot migrated: follow it once the map says where.
    subscribed_.erase(push.at(1).str);
    Follow();
  }
}

void RedisClusterPubSub::Follow() {
  const auto now = std::chrono::steady_clock::now();
  if (!following_) {
    following_ = true;
    follow_since_ = now;
  }
  if (ready_) {
    ready_ = false;
    if (handlers_.on_down) handlers_.on_down();
  }
  map_->RefreshMap();
  follow_timer_.expires_after(std::chrono::milliseconds(100));
  follow_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_ || !following_) return;
    if (std::chrono::steady_clock::now() - follow_since_ > std::chrono::seconds(2)) {
      following_ = false;  // the map did not change: resubscribe where it says
      return UpdateReady();
    }
    Follow();
  });
}

void RedisClusterPubSub::Bounce() {
  if (ready_) {
    ready_ = false;
    if (handlers_.on_down) handlers_.on_down();
  }
  UpdateReady();
}

void RedisClusterPubSub::UpdateReady() {
  if (stopped_) return;
  const std::set<std::string>& masters = map_->masters();
  bool ready = !masters.empty() && !following_;
  for (const std::string& m : masters) {
    auto it = nodes_.find(m);
    ready = ready && it != nodes_.end() && it->second->ready();
  }
  if (ready == ready_) return;
  ready_ = ready;
  if (ready && handlers_.on_ready) handlers_.on_ready();
  if (!ready && handlers_.on_down) handlers_.on_down();
}

void RedisClusterPubSub::Command(Argv argv, ReplyFn done) {
  // Forgotten even when it cannot be sent: a subscription left behind would make a later map
  // change look like a move of it.
  if (!ready_ && argv.size() == 2 && argv[0] == "UNSUBSCRIBE") subscribed_.erase(argv[1]);
  if (!ready_) return done(absl::UnavailableError("redis cluster pub/sub is not ready"));
  if (argv.size() == 2 && argv[0] == "SUBSCRIBE") {
    const std::string owner = map_->OwnerOf(KeySlot(argv[1]));
    auto it = nodes_.find(owner);
    if (it == nodes_.end() || !it->second->ready()) {
      return done(absl::UnavailableError(
          absl::StrCat("redis cluster pub/sub: no ready master for ", argv[1])));
    }
    subscribed_[argv[1]] = owner;
    return it->second->Command(
        {"SSUBSCRIBE", argv[1]},
        [this, channel = argv[1], done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
          const bool moved = !r.ok() && absl::StrContains(r.status().message(), "MOVED");
          done(std::move(r));
          if (moved && !stopped_) {
            subscribed_.erase(channel);
            Follow();
          }
        });
  }
  if (argv.size() == 2 && argv[0] == "UNSUBSCRIBE") {
    auto sub = subscribed_.find(argv[1]);
    if (sub == subscribed_.end()) return done(RedisReply{});
    auto it = nodes_.find(sub->second);
    subscribed_.erase(sub);
    if (it == nodes_.end() || !it->second->ready()) {
      return done(absl::UnavailableError("redis cluster pub/sub: master not ready"));
    }
    return it->second->Command({"SUNSUBSCRIBE", argv[1]}, std::move(done));
  }
  if (argv.size() == 1 && argv[0] == "PING") {
    // One answer once every master's connection answered: everything pushed before is in.
    struct Barrier {
      size_t left = 0;
      absl::Status status;
      ReplyFn done;
    };
    auto barrier = std::make_shared<Barrier>();
    barrier->done = std::move(done);
    std::vector<RedisConnection*> targets;
    for (const std::string& m : map_->masters()) {
      auto it = nodes_.find(m);
      if (it != nodes_.end()) targets.push_back(it->second.get());
    }
    barrier->left = targets.size();
    for (RedisConnection* c : targets) {
      c->Command({"PING"}, [barrier](absl::StatusOr<RedisReply> r) {
        if (!r.ok() && barrier->status.ok()) barrier->status = r.status();
        if (--barrier->left > 0) return;
        if (!barrier->status.ok()) return barrier->done(barrier->status);
        RedisReply pong;
        pong.type = RedisReply::Type::kStatus;
        pong.str = "PONG";
        barrier->done(std::move(pong));
      });
    }
    return;
  }
  done(absl::InvalidArgumentError(
      absl::StrCat("redis cluster pub/sub: unsupported command ", argv.empty() ? "" : argv[0])));
}

void RedisClusterPubSub::Eval(const RedisScript&, const Argv&, const Argv&, ReplyFn done) {
  done(absl::UnimplementedError("redis cluster pub/sub: no scripts"));
}

}  // namespace herald::engine
