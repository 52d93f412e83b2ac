#ifndef HERALD_SERVER_CORE_BROKER_H_
#define HERALD_SERVER_CORE_BROKER_H_

#include <string>

#include "absl/time/time.h"
#include "server/core/done.h"
#include "server/core/stream.h"

namespace herald::core {

// Receives the publications of the channels a node subscribed to (Broker::Subscribe). The node
// implements it (core::Node).
class BrokerEventHandler {
 public:
  virtual ~BrokerEventHandler() = default;
  // Called for one channel in offset order and never concurrently for one channel (different
  // channels may be handled concurrently on different threads), with no broker lock held.
  virtual void HandlePublication(const Publication& publication) = 0;
  // The node may have missed publications of `channel`, which it is subscribed to (a remote
  // broker lost its connection and could not replay the gap). Later publications follow through
  // HandlePublication. Called in order with them, never concurrently for one channel.
  virtual void HandleGap(const std::string& /*channel*/) {}
};

// Orders, retains, replays and carries the publications of every channel, between the nodes of
// one cluster (MemoryBroker: one process; a Redis broker: many). Every operation completes
// through a callback — at once or later, on any thread — and none blocks its caller.
// Implementations are thread-safe.
class Broker {
 public:
  virtual ~Broker() = default;

  // Where publications go; set once, before any other call. Must outlive the broker's use.
  virtual void SetEventHandler(BrokerEventHandler* handler) = 0;

  // Assigns the next position of `channel`, retains the publication (history, latest per key)
  // and hands it to HandlePublication on every node subscribed to the channel. `done` gets the
  // position, or an error when nothing was published (UNAVAILABLE: retry). A member notice
  // (PublicationKind::kMemberJoined/kMemberLeft) is only handed on: not retained, no new offset,
  // not ordered with the channel's data, lost to nodes that are not subscribed at that moment.
  virtual void Publish(const std::string& channel, PublishSpec spec, Done<StreamPosition> done) = 0;

  // Node-level subscription, counted: from when `done` gets OK, every publication of `channel`
  // reaches HandlePublication while this node has more Subscribe than Unsubscribe calls for it
  // (one per local subscriber: counting makes their order between threads irrelevant). A call
  // counts even when `done` gets an error (the Redis subscription is retried on reconnect), so
  // every Subscribe is balanced by one Unsubscribe, failed or not.
  virtual void Subscribe(const std::string& channel, StatusDone done) = 0;
  virtual void Unsubscribe(const std::string& channel) = 0;

  // The channel's current position with, when asked, what was missed since `spec.recover`
  // (recovered=false when the history no longer covers it or the epoch changed) and the latest
  // publication per live key. Not ordered with concurrent publishes: the node buffers what
  // HandlePublication brings while a join is pending and keeps what lies past `position`.
  virtual void Join(const std::string& channel, JoinSpec spec, Done<JoinResult> done) = 0;

  // Retained publications of `channel` (see HistoryQuery).
  virtual void History(const std::string& channel, HistoryQuery query,
                       Done<HistoryResult> done) = 0;

  // Drops expired history and forgets channels with nothing retained that were idle for their
  // TTL and have no node subscription. Called periodically; costs what is due.
  virtual void Sweep(absl::Time now) = 0;
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_BROKER_H_
