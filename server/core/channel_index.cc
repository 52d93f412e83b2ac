#include "server/core/channel_index.h"

#include "absl/strings/match.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"

namespace herald::core {
namespace {
const Subscribers& EmptySubscribers() {
  static const auto* empty = new Subscribers(std::make_shared<const SubscriberList>());
  return *empty;
}
}  // namespace

ChannelIndex::Stripe& ChannelIndex::StripeFor(absl::string_view channel) const {
  return stripes_[absl::HashOf(channel) % kStripes];
}

bool ChannelIndex::Add(const std::string& channel, std::shared_ptr<Session> session,
                       LiveMark mark) {
  Stripe& stripe = StripeFor(channel);
  core::MutexLock lock(&stripe.mu);
  Channel& ch = stripe.channels[channel];
  const Session* key = session.get();
  if (!ch.members.try_emplace(key, Member{std::move(session), mark}).second) return false;
  ch.snapshot = nullptr;
  return true;
}

bool ChannelIndex::Remove(const std::string& channel, const Session* session) {
  Stripe& stripe = StripeFor(channel);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.channels.find(channel);
  if (it == stripe.channels.end() || it->second.members.erase(session) == 0) return false;
  if (it->second.members.empty()) {
    stripe.channels.erase(it);
  } else {
    it->second.snapshot = nullptr;
  }
  return true;
}

Subscribers ChannelIndex::Snapshot(absl::string_view channel) const {
  Stripe& stripe = StripeFor(channel);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.channels.find(channel);
  if (it == stripe.channels.end()) return EmptySubscribers();
  Channel& ch = it->second;
  if (ch.snapshot == nullptr) {
    std::vector<const Member*> members;
    members.reserve(ch.members.size());
    for (const auto& [key, member] : ch.members) members.push_back(&member);
    std::stable_sort(members.begin(), members.end(), [](const Member* a, const Member* b) {
      return a->session->loop() < b->session->loop();
    });
    auto list = std::make_shared<SubscriberList>();
    std::vector<std::shared_ptr<Session>>& sessions = list->sessions;
    sessions.reserve(members.size());
    list->marks.reserve(members.size());
    for (const Member* m : members) {
      sessions.push_back(m->session);
      list->marks.push_back(m->mark);
    }
    for (size_t i = 0; i < sessions.size(); ++i) {
      if (list->groups.empty() || list->groups.back().loop != sessions[i]->loop()) {
        list->groups.push_back({sessions[i]->loop(), i, i});
      }
      list->groups.back().end = i + 1;
    }
    ch.snapshot = std::move(list);
  }
  return ch.snapshot;
}

size_t ChannelIndex::SubscriberCount(absl::string_view channel) const {
  Stripe& stripe = StripeFor(channel);
  core::MutexLock lock(&stripe.mu);
  auto it = stripe.channels.find(channel);
  return it == stripe.channels.end() ? 0 : it->second.members.size();
}

size_t ChannelIndex::channels() const {
  size_t n = 0;
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    n += stripe.channels.size();
  }
  return n;
}

size_t ChannelIndex::subscriptions() const {
  size_t n = 0;
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    for (const auto& [name, ch] : stripe.channels) n += ch.members.size();
  }
  return n;
}

std::vector<std::pair<std::string, size_t>> ChannelIndex::List(absl::string_view prefix) const {
  std::vector<std::pair<std::string, size_t>> out;
  for (Stripe& stripe : stripes_) {
    core::MutexLock lock(&stripe.mu);
    for (const auto& [name, ch] : stripe.channels) {
      if (absl::StartsWith(name, prefix)) out.emplace_back(name, ch.members.size());
    }
  }
  return out;
}

}  // namespace herald::core
