#ifndef HERALD_SERVER_CORE_FAN_OUT_H_
#define HERALD_SERVER_CORE_FAN_OUT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "server/core/channel_index.h"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::core {

// Queues publications on the subscribers that accept them (Session::Accepts), each on the I/O
// thread that owns it (LoopExecutor), in batches: a publication whose subscriber snapshot is
// the one of the last batch a loop has not started yet joins that batch, and a batch runs
// subscriber by subscriber, queuing all its publications on one session before the next (the
// session's state is touched once per batch, not once per publication, which is what keeps a
// busy loop's cost per delivery flat as publications pile up). Only the loop's last batch is
// joined, so a loop still runs its work in posting order, and each session gets a channel's
// publications in order. Owns the loops' open batches. Thread-safe; the channel's publications
// must come one at a time (the broker's order), as Node::HandlePublication gets them.
class FanOut {
 public:
  // Null `loops`: every Send queues at once, on the calling thread (unit tests).
  void SetLoopExecutor(LoopExecutor* loops) { loops_ = loops; }
  // Queues `frame`, the publication of `channel` at `offset`, on those of `subscribers` that
  // accept it when their loop gets to it.
  void Send(const std::string& channel, uint64_t offset, const Subscribers& subscribers,
            const OutFramePtr& frame);

 private:
  struct Item {
    uint64_t offset;
    OutFramePtr frame;
  };
  struct Batch {
    Subscribers subscribers;
    SubscriberList::Group group;
    std::string channel;
    std::vector<Item> items;  // guarded by FanOut::mu_ until the batch runs
  };
  // On the batch's loop: closes it to newcomers and queues its items.
  void Run(const std::shared_ptr<Batch>& batch);
  static void Deliver(const std::string& channel, const SubscriberList& subscribers,
                      const SubscriberList::Group& group, const std::vector<Item>& items);

  LoopExecutor* loops_ = nullptr;
  core::Mutex mu_;
  // Each loop's last batch that has not started to run.
  absl::flat_hash_map<uint32_t, std::shared_ptr<Batch>> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_FAN_OUT_H_
