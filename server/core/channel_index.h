#ifndef HERALD_SERVER_CORE_CHANNEL_INDEX_H_
#define HERALD_SERVER_CORE_CHANNEL_INDEX_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::core {

// An immutable list of a channel's subscribers at one moment, grouped by Session::loop() so
// that each I/O thread can be handed its own run of it.
struct SubscriberList {
  struct Group {
    uint32_t loop;
    size_t begin, end;  // [begin, end) of `sessions`
  };
  std::vector<std::shared_ptr<Session>> sessions;  // ordered by loop
  std::vector<LiveMark> marks;                     // sessions[i] went live with marks[i]
  std::vector<Group> groups;                       // one per loop present, in order
};
using Subscribers = std::shared_ptr<const SubscriberList>;

// Index channel -> subscribed sessions. Thread-safe, striped by channel name. A publish takes a
// snapshot: one shared_ptr copy under the stripe lock (the subscriber vector is rebuilt lazily
// after a change), so fan-out runs with no lock held and subscribe storms stay O(1) each.
class ChannelIndex {
 public:
  static constexpr size_t kStripes = 64;

  // True when `session` was not subscribed before; `mark` is where it went live (GoLive).
  bool Add(const std::string& channel, std::shared_ptr<Session> session, LiveMark mark);
  bool Remove(const std::string& channel, const Session* session);
  // Never null; empty when the channel has no subscribers.
  Subscribers Snapshot(absl::string_view channel) const;
  size_t SubscriberCount(absl::string_view channel) const;

  size_t channels() const;
  // Channels whose name starts with `prefix`, with their subscriber counts (unordered).
  std::vector<std::pair<std::string, size_t>> List(absl::string_view prefix) const;
  size_t subscriptions() const;

 private:
  struct Member {
    std::shared_ptr<Session> session;
    LiveMark mark;
  };
  struct Channel {
    absl::flat_hash_map<const Session*, Member> members;
    Subscribers snapshot;  // null when stale
  };
  struct Stripe {
    mutable core::Mutex mu;
    absl::flat_hash_map<std::string, Channel> channels ABSL_GUARDED_BY(mu);
  };
  Stripe& StripeFor(absl::string_view channel) const;

  mutable std::array<Stripe, kStripes> stripes_;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_CHANNEL_INDEX_H_
