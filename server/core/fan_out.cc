#include "server/core/fan_out.h"

#include <utility>

namespace herald::core {

void FanOut::Send(const std::string& channel, uint64_t offset, const Subscribers& subscribers,
                  const OutFramePtr& frame) {
  if (loops_ == nullptr) {
    const std::vector<Item> items{{offset, frame}};
    for (const SubscriberList::Group& g : subscribers->groups) {
      Deliver(channel, *subscribers, g, items);
    }
    return;
  }
  for (const SubscriberList::Group& g : subscribers->groups) {
    std::shared_ptr<Batch> fresh;
    {
      core::MutexLock lock(&mu_);
      std::shared_ptr<Batch>& open = open_[g.loop];
      if (open != nullptr && open->subscribers == subscribers) {
        open->items.push_back({offset, frame});
        continue;
      }
      fresh = std::make_shared<Batch>(Batch{subscribers, g, channel, {{offset, frame}}});
      open = fresh;
    }
    // Posted outside the lock: until it runs, the batch only takes more of the same channel's
    // publications, which come one at a time, after this one.
    loops_->Post(g.loop, [this, fresh] { Run(fresh); });
  }
}

void FanOut::Run(const std::shared_ptr<Batch>& batch) {
  std::vector<Item> items;
  {
    core::MutexLock lock(&mu_);
    auto it = open_.find(batch->group.loop);
    if (it != open_.end() && it->second == batch) open_.erase(it);
    items.swap(batch->items);
  }
  Deliver(batch->channel, *batch->subscribers, batch->group, items);
}

void FanOut::Deliver(const std::string& channel, const SubscriberList& subscribers,
                     const SubscriberList::Group& group, const std::vector<Item>& items) {
  // A session that unsubscribed after the snapshot but before its thread got here gets nothing
  // (no publication follows `unsubscribed`), nor one whose join already covered a publication.
  for (size_t i = group.begin; i < group.end; ++i) {
    Session& s = *subscribers.sessions[i];
    const LiveMark& mark = subscribers.marks[i];
    for (const Item& item : items) {
      if (s.Accepts(channel, item.offset, mark)) s.Send(item.frame);
    }
  }
}

}  // namespace herald::core
