#ifndef HERALD_SERVER_WS_IO_THREADS_H_
#define HERALD_SERVER_WS_IO_THREADS_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "server/core/mutex.h"
#include "server/core/session.h"

namespace herald::ws {

// One io_context per I/O thread (the uWebSockets/Envoy model): each thread runs its own
// WebSocket listener (SO_REUSEPORT spreads new connections over them) and owns the connections
// it accepted, so a publication's fan-out is split by thread and each writes only to its own
// sockets.
//
// Post() queues work for a loop in one queue per loop, run in posting order by one drain
// handler. A loop is woken once per batch, not once per item: from another thread (gRPC), at
// once; from an I/O thread, when that thread's current handler has returned (an HTTP publish's
// reply goes out before the subscriber's thread is woken, and a burst of publications handled
// in one turn wakes each loop once). Order holds: items are queued, in order, at the moment
// Post() is called; only the wake-up waits.
//
// Owns the io_contexts, the threads and the queues. Start() and Stop() from one control thread;
// Post() and context() from any thread.
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
  // The work queued for one loop. core::Mutex: a std::mutex under TSan, which cannot see how
  // Debian's (uninstrumented) absl::Mutex orders memory.
  struct Queue {
    core::Mutex mu;
    std::vector<std::function<void()>> items ABSL_GUARDED_BY(mu);
    // A drain is posted, or its wake-up deferred to the end of an I/O thread's handler: the
    // next Post() need not wake the loop again.
    bool wake_pending ABSL_GUARDED_BY(mu) = false;
  };
  // Runs everything queued for `loop` (on that loop's thread).
  void Drain(uint32_t loop);
  // Posts the drains whose wake-ups this I/O thread deferred (on that thread, after its handler).
  void WakeDeferred();

  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::unique_ptr<Queue>> queues_;
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_IO_THREADS_H_
