#include "server/engine/memory_presence.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"

namespace herald::engine {

MemoryPresence::Stripe& MemoryPresence::StripeFor(const std::string& channel) {
  return stripes_[absl::HashOf(channel) % kStripes];
}

void MemoryPresence::Add(const std::string& channel, v1::ClientInfo client, core::StatusDone done) {
  {
    Stripe& stripe = StripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    std::string id = client.connection_id();
    stripe.channels[channel][std::move(id)] = std::move(client);
  }
  done(absl::OkStatus());
}

void MemoryPresence::Remove(const std::string& channel, const std::string& connection_id,
                            core::StatusDone done) {
  {
    Stripe& stripe = StripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.channels.find(channel);
    if (it != stripe.channels.end()) {
      it->second.erase(connection_id);
      if (it->second.empty()) stripe.channels.erase(it);
    }
  }
  done(absl::OkStatus());
}

void MemoryPresence::Get(const std::string& channel, core::Done<std::vector<v1::ClientInfo>> done) {
  std::vector<v1::ClientInfo> clients;
  {
    Stripe& stripe = StripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.channels.find(channel);
    if (it != stripe.channels.end()) {
      for (const auto& [id, client] : it->second) clients.push_back(client);
    }
  }
  done(std::move(clients));
}

void MemoryPresence::Count(const std::string& channel, core::Done<Counts> done) {
  Counts counts;
  {
    Stripe& stripe = StripeFor(channel);
    core::MutexLock lock(&stripe.mu);
    auto it = stripe.channels.find(channel);
    if (it != stripe.channels.end()) {
      absl::flat_hash_set<std::string> users;
      for (const auto& [id, client] : it->second) {
        if (!client.user().empty()) users.insert(client.user());
      }
      counts.connections = static_cast<uint32_t>(it->second.size());
      counts.users = static_cast<uint32_t>(users.size());
    }
  }
  done(counts);
}

}  // namespace herald::engine
