// IoThreads::Post: work for a loop runs in posting order, whichever threads post it, and an I/O
// thread's posts to another loop wake it only once the posting handler has returned.
#include "server/ws/io_threads.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "asio/post.hpp"
#include "gtest/gtest.h"

namespace herald::ws {
namespace {

TEST(IoThreadsTest, WorkForALoopRunsInPostingOrderFromEveryThread) {
  IoThreads threads(2);
  threads.Start();
  constexpr int kPerProducer = 20000;
  // Loop 1 records, per producer, the sequence numbers it sees; each must rise by one.
  std::vector<int> last(3, -1);
  std::atomic<int> out_of_order{0};
  std::atomic<int> done{0};
  auto produce = [&](int producer) {
    for (int i = 0; i < kPerProducer; ++i) {
      threads.Post(1, [&, producer, i] {
        if (last[producer] + 1 != i) out_of_order.fetch_add(1);
        last[producer] = i;
        done.fetch_add(1);
      });
    }
  };
  // Producer 0 is loop 0's own thread (deferred wake-ups), 1 is loop 1 itself, 2 another thread.
  asio::post(threads.context(0), [&] { produce(0); });
  asio::post(threads.context(1), [&] { produce(1); });
  std::thread other([&] { produce(2); });
  other.join();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (done.load() < 3 * kPerProducer && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  threads.Stop();
  EXPECT_EQ(done.load(), 3 * kPerProducer);
  EXPECT_EQ(out_of_order.load(), 0);
}

TEST(IoThreadsTest, AnIoThreadsPostWakesTheOtherLoopOnlyAfterItsHandlerReturned) {
  IoThreads threads(2);
  threads.Start();
  std::atomic<bool> ran{false};
  std::atomic<bool> ran_while_posting{false};
  asio::post(threads.context(0), [&] {
    threads.Post(1, [&] { ran.store(true); });
    // Loop 1 is idle, but is not woken before this handler returns (an HTTP publish's reply is
    // written here first).
    absl::SleepFor(absl::Milliseconds(100));
    ran_while_posting.store(ran.load());
  });
  threads.Post(0, [&] {});
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!ran.load() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  threads.Stop();
  EXPECT_TRUE(ran.load());
  EXPECT_FALSE(ran_while_posting.load());
}

TEST(IoThreadsTest, AnotherThreadsPostWakesTheLoopAtOnce) {
  IoThreads threads(2);
  threads.Start();
  absl::Notification ran;
  const absl::Time start = absl::Now();
  threads.Post(1, [&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  threads.Stop();
}

}  // namespace
}  // namespace herald::ws
