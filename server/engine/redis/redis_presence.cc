#include "server/engine/redis/redis_presence.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"
#include "server/engine/redis/redis_slot.h"

namespace herald::engine {
namespace {

// Completes `done` once, after `n` command replies, with the first error.
struct Gather {
  int left;
  absl::Status status;
  core::StatusDone done;
  void Reply(const absl::Status& st) {
    if (status.ok()) status = st;
    if (--left == 0 && done) done(status);
  }
};

}  // namespace

RedisPresence::RedisPresence(std::string node, asio::io_context* io, RedisBroker* broker,
                             RedisControlBus* bus, RedisClient* commands)
    : node_(std::move(node)), io_(io), broker_(broker), bus_(bus), commands_(commands) {}

std::string RedisPresence::PresenceKey(const std::string& channel) const {
  return ClusterWideKey(broker_->options().prefix, absl::StrCat("presence:c:", channel));
}

std::string RedisPresence::Member(const std::string& hash, const std::string& connection_id) {
  return absl::StrCat(hash.size(), " ", hash, connection_id);
}

void RedisPresence::Add(const std::string& channel, v1::ClientInfo client, core::StatusDone done) {
  asio::post(*io_, [this, channel, client = std::move(client), done = std::move(done)]() mutable {
    unremoved_.erase({channel, client.connection_id()});
    mine_[channel][client.connection_id()] = client;
    Write(channel, client, std::move(done));
  });
}

void RedisPresence::Remove(const std::string& channel, const std::string& connection_id,
                           core::StatusDone done) {
  asio::post(*io_, [this, channel, connection_id, done = std::move(done)]() mutable {
    auto it = mine_.find(channel);
    if (it != mine_.end()) {
      it->second.erase(connection_id);
      if (it->second.empty()) mine_.erase(it);
    }
    Erase(channel, connection_id, std::move(done));
  });
}

void RedisPresence::Write(const std::string& channel, const v1::ClientInfo& client,
                          core::StatusDone done) {
  const std::string hash = PresenceKey(channel);
  auto gather = std::make_shared<Gather>(Gather{2, absl::OkStatus(), std::move(done)});
  auto reply = [gather](absl::StatusOr<RedisReply> r) { gather->Reply(r.status()); };
  commands_->Command(
      {"HSET", hash, client.connection_id(), EncodePresence(node_, bus_->instance(), client)},
      reply);
  commands_->Command({"SADD", bus_->PresenceSetKey(), Member(hash, client.connection_id())}, reply);
}

void RedisPresence::Erase(const std::string& channel, const std::string& connection_id,
                          core::StatusDone done) {
  const std::string hash = PresenceKey(channel);
  auto gather = std::make_shared<Gather>(Gather{
      2, absl::OkStatus(),
      [this, channel, connection_id, done = std::move(done)](absl::Status st) mutable {
        // Tried again by Restore, unless the connection came back meanwhile.
        if (!st.ok() && !(mine_.contains(channel) && mine_[channel].contains(connection_id))) {
          unremoved_.insert({channel, connection_id});
        }
        if (done) done(st);
      }});
  auto reply = [gather](absl::StatusOr<RedisReply> r) { gather->Reply(r.status()); };
  commands_->Command({"HDEL", hash, connection_id}, reply);
  commands_->Command({"SREM", bus_->PresenceSetKey(), Member(hash, connection_id)}, reply);
}

void RedisPresence::Restore() {
  for (const auto& [channel, clients] : mine_) {
    for (const auto& [id, client] : clients) Write(channel, client, nullptr);
  }
  auto unremoved = std::move(unremoved_);
  unremoved_.clear();
  for (const auto& [channel, id] : unremoved) Erase(channel, id, nullptr);
}

void RedisPresence::Get(const std::string& channel, core::Done<std::vector<v1::ClientInfo>> done) {
  asio::post(*io_, [this, channel, done = std::move(done)]() mutable {
    commands_->Eval(PresenceReadScript(),
                    {PresenceKey(channel), bus_->NodesKey(), bus_->InstancesKey()}, {"0"},
                    [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      std::vector<v1::ClientInfo> clients;
                      for (const RedisReply& value : r->elements) {
                        std::optional<v1::ClientInfo> client = DecodePresence(value.str);
                        if (client.has_value()) clients.push_back(*std::move(client));
                      }
                      std::sort(clients.begin(), clients.end(), [](const auto& a, const auto& b) {
                        return a.connection_id() < b.connection_id();
                      });
                      done(std::move(clients));
                    });
  });
}

void RedisPresence::Count(const std::string& channel, core::Done<Counts> done) {
  asio::post(*io_, [this, channel, done = std::move(done)]() mutable {
    commands_->Eval(PresenceReadScript(),
                    {PresenceKey(channel), bus_->NodesKey(), bus_->InstancesKey()}, {"1"},
                    [done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      if (!r->is_array() || r->elements.size() != 2) {
                        return done(Malformed("presence"));
                      }
                      Counts counts;
                      counts.connections = static_cast<uint32_t>(r->at(0).number());
                      counts.users = static_cast<uint32_t>(r->at(1).number());
                      done(counts);
                    });
  });
}

}  // namespace herald::engine
