#ifndef HERALD_SERVER_WS_IO_THREADS_H_
#define HERALD_SERVER_WS_IO_THREADS_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "server/core/session.h"

namespace herald::ws {

// One io_context per I/O thread (the uWebSockets/Envoy model): each thread runs its own
// WebSocket listener (SO_REUSEPORT spreads new connections over them) and owns the connections
// it accepted, so a publication's fan-out is split by thread and each writes only to its own
// sockets. Owns the io_contexts and threads. Start() and Stop() from one control thread; Post()
// and context() from any thread.
class IoThreads : public core::LoopExecutor {
 public:
  explicit IoThreads(int count);
  ~IoThreads() override;
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  int size() const { return static_cast<int>(contexts_.size()); }
  asio::io_context& context(int i) { return *contexts_[i]; }
  // Runs each io_context on its own thread until Stop().
  void Start();
  // Lets the contexts run out of work, stops them and joins the threads.
  void Stop();
  void Post(uint32_t loop, std::function<void()> work) override;

 private:
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_IO_THREADS_H_
