#include "server/ws/io_threads.h"

#include <utility>

#include "asio/post.hpp"

namespace herald::ws {

IoThreads::IoThreads(int count) {
  for (int i = 0; i < count; ++i) {
    // Not concurrency hint 1, although one thread runs each context: with it, asio keeps work
    // posted from inside a handler in a thread-private queue until the handler returns, so a
    // publication posted from this thread could run after a later one posted from another
    // thread (a handler's socket write can let a client trigger that next publication first).
    contexts_.push_back(std::make_unique<asio::io_context>());
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
}

IoThreads::~IoThreads() { Stop(); }

void IoThreads::Start() {
  for (auto& io : contexts_) threads_.emplace_back([ctx = io.get()] { ctx->run(); });
}

void IoThreads::Stop() {
  guards_.clear();
  for (auto& io : contexts_) io->stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void IoThreads::Post(uint32_t loop, std::function<void()> work) {
  asio::post(*contexts_[loop % contexts_.size()], std::move(work));
}

}  // namespace herald::ws
