#include "server/ws/io_threads.h"

#include <utility>

#include "asio/post.hpp"

namespace herald::ws {
namespace {

// The IoThreads and loop an I/O thread runs (null / unused on every other thread).
thread_local IoThreads* t_owner = nullptr;
thread_local uint32_t t_loop = 0;
// Loops this I/O thread has queued work for and not woken yet, and whether WakeDeferred is
// posted on it.
thread_local std::vector<uint32_t> t_deferred;
thread_local bool t_wake_posted = false;

}  // namespace

IoThreads::IoThreads(int count) {
  for (int i = 0; i < count; ++i) {
    // Not concurrency hint 1, although one thread runs each context: with it, asio keeps work
    // posted from inside a handler in a thread-private queue until the handler returns, so a
    // publication posted from this thread could run after a later one posted from another
    // thread (a handler's socket write can let a client trigger that next publication first).
    contexts_.push_back(std::make_unique<asio::io_context>());
    queues_.push_back(std::make_unique<Queue>());
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
}

IoThreads::~IoThreads() { Stop(); }

void IoThreads::Start() {
  for (size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      t_owner = this;
      t_loop = static_cast<uint32_t>(i);
      contexts_[i]->run();
    });
  }
}

void IoThreads::Stop() {
  guards_.clear();
  for (auto& io : contexts_) io->stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void IoThreads::Post(uint32_t loop, std::function<void()> work) {
  loop %= static_cast<uint32_t>(contexts_.size());
  Queue& q = *queues_[loop];
  {
    core::MutexLock lock(&q.mu);
    q.items.push_back(std::move(work));
    if (q.wake_pending) return;
    q.wake_pending = true;
  }
  if (t_owner != this || loop == t_loop) {
    // Another thread, or this loop itself (its own post costs no wake-up): the drain now.
    asio::post(*contexts_[loop], [this, loop] { Drain(loop); });
    return;
  }
  // An I/O thread queuing for another loop: wakes it once this handler has returned.
  t_deferred.push_back(loop);
  if (!t_wake_posted) {
    t_wake_posted = true;
    asio::post(*contexts_[t_loop], [this] { WakeDeferred(); });
  }
}

void IoThreads::WakeDeferred() {
  t_wake_posted = false;
  std::vector<uint32_t> loops;
  loops.swap(t_deferred);
  for (uint32_t loop : loops) asio::post(*contexts_[loop], [this, loop] { Drain(loop); });
}

void IoThreads::Drain(uint32_t loop) {
  Queue& q = *queues_[loop];
  std::vector<std::function<void()>> items;
  {
    core::MutexLock lock(&q.mu);
    items.swap(q.items);
    q.wake_pending = false;
  }
  for (std::function<void()>& work : items) work();
}

}  // namespace herald::ws
