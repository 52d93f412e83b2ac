#include "server/engine/redis/redis_engine.h"

#include <utility>
#include <vector>

#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {

RedisEngine::RedisEngine(const core::Limits& limits, RedisOptions options)
    : options_(std::move(options)), work_(asio::make_work_guard(io_)) {
  std::vector<RedisConnection::Argv> load;
  for (const RedisScript* s :
       {&PublishScript(), &JoinScript(), &HistoryScript(), &ApplyOrderScript(),
        &SweepOrdersScript(), &EnqueueTaskScript(), &LeaseTasksScript(), &AckTaskScript(),
        &ReleaseTaskScript(), &ListTasksScript(), &SweepTasksScript()}) {
    load.push_back({"SCRIPT", "LOAD", s->source});
  }
  RedisConnection::Handlers command_handlers;
  command_handlers.on_ready = [this] { commands_up_ = true; };
  command_handlers.on_down = [this] { commands_up_ = false; };
  commands_ = std::make_unique<RedisConnection>(&io_, options_, "command", std::move(load),
                                                std::move(command_handlers));
  RedisConnection::Handlers pubsub_handlers;
  pubsub_handlers.on_ready = [this] {
    broker_->OnPubSubReady();
    // Ready once task notices flow: a task enqueued after WaitReady is announced to this node.
    tasks_->OnPubSubReady([this] { pubsub_up_ = true; });
  };
  pubsub_handlers.on_down = [this] {
    pubsub_up_ = false;
    broker_->OnPubSubDown();
  };
  pubsub_handlers.on_message = [this](RedisReply m) {
    if (!tasks_->OnMessage(m)) broker_->OnMessage(std::move(m));
  };
  pubsub_ = std::make_unique<RedisConnection>(
      &io_, options_, "pub/sub", std::vector<RedisConnection::Argv>{}, std::move(pubsub_handlers));
  broker_ = std::make_unique<RedisBroker>(limits, options_, &io_, commands_.get(), pubsub_.get());
  orders_ = std::make_unique<RedisOrderStore>(limits, &io_, broker_.get(), commands_.get());
  idempotency_ = std::make_unique<RedisIdempotencyStore>(limits.idempotency_window, options_, &io_,
                                                         commands_.get());
  tasks_ = std::make_unique<RedisTaskStore>(limits, options_, &io_, commands_.get(), pubsub_.get());
  asio::post(io_, [this] {
    commands_->Start();
    pubsub_->Start();
  });
  thread_ = std::thread([this] { io_.run(); });
}

RedisEngine::~RedisEngine() { Shutdown(); }

void RedisEngine::Shutdown() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    commands_->Stop();
    pubsub_->Stop();
  });
  work_.reset();
  thread_.join();
}

absl::Status RedisEngine::WaitReady(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("redis at ", options_.host, ":", options_.port,
                                                 " not reachable within ",
                                                 absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

}  // namespace herald::engine
