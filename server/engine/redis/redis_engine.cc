#include "server/engine/redis/redis_engine.h"

#include <utility>
#include <vector>

#include "server/engine/redis/redis_cluster_client.h"
#include "server/engine/redis/redis_cluster_pubsub.h"
#include "server/engine/redis/redis_connection.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {

RedisEngine::RedisEngine(const core::Limits& limits, RedisOptions options)
    : options_(std::move(options)), work_(asio::make_work_guard(io_)) {
  std::vector<RedisConnection::Argv> load;
  for (const RedisScript* s :
       {&PublishScript(), &JoinScript(), &HistoryScript(), &ApplyOrderScript(),
        &SweepOrdersScript(), &EnqueueTaskScript(), &LeaseTasksScript(), &AckTaskScript(),
        &ReleaseTaskScript(), &ListTasksScript(), &SweepTasksScript()}) {
    load.push_back({"SCRIPT", "LOAD", (options_.cluster ? Sharded(*s) : *s).source});
  }
  for (const RedisScript* s :
       {&HeartbeatScript(), &LeaveScript(), &SurveyScript(), &PresenceReadScript(),
        &OnlineConnectScript(), &OnlineDisconnectScript(), &OnlineDueScript(),
        &OnlineRestoreScript()}) {
    load.push_back({"SCRIPT", "LOAD", (options_.cluster ? Sharded(*s) : *s).source});
  }
  RedisConnection::Handlers command_handlers;
  command_handlers.on_ready = [this] {
    commands_up_ = true;
    control_->OnCommandsReady();
  };
  command_handlers.on_down = [this] { commands_up_ = false; };
  RedisClusterClient* cluster = nullptr;
  if (options_.cluster) {
    auto client = std::make_unique<RedisClusterClient>(&io_, options_, "command", std::move(load),
                                                       std::move(command_handlers));
    cluster = client.get();
    commands_ = std::move(client);
  } else {
    commands_ = std::make_unique<RedisConnection>(&io_, options_, "command", std::move(load),
                                                  std::move(command_handlers));
  }
  RedisConnection::Handlers pubsub_handlers;
  pubsub_handlers.on_ready = [this] {
    broker_->OnPubSubReady();
    control_->OnPubSubReady();
    // Ready once task notices flow: a task enqueued after WaitReady is announced to this node.
    tasks_->OnPubSubReady([this] { pubsub_up_ = true; });
  };
  pubsub_handlers.on_down = [this] {
    pubsub_up_ = false;
    broker_->OnPubSubDown();
    control_->OnPubSubDown();
  };
  pubsub_handlers.on_message = [this](RedisReply m) {
    if (!control_->OnMessage(m) && !tasks_->OnMessage(m)) broker_->OnMessage(std::move(m));
  };
  if (cluster != nullptr) {
    pubsub_ =
        std::make_unique<RedisClusterPubSub>(&io_, options_, cluster, std::move(pubsub_handlers));
  } else {
    pubsub_ = std::make_unique<RedisConnection>(&io_, options_, "pub/sub",
                                                std::vector<RedisConnection::Argv>{},
                                                std::move(pubsub_handlers));
  }
  broker_ = std::make_unique<RedisBroker>(limits, options_, &io_, commands_.get(), pubsub_.get());
  orders_ = std::make_unique<RedisOrderStore>(limits, &io_, broker_.get(), commands_.get());
  idempotency_ = std::make_unique<RedisIdempotencyStore>(limits.idempotency_window, options_, &io_,
                                                         commands_.get());
  tasks_ = std::make_unique<RedisTaskStore>(limits, options_, &io_, commands_.get(), pubsub_.get());
  control_ =
      std::make_unique<RedisControlBus>(options_, absl::Milliseconds(limits.control_timeout_ms),
                                        &io_, commands_.get(), pubsub_.get());
  presence_ = std::make_unique<RedisPresence>(options_.node, &io_, broker_.get(), control_.get(),
                                              commands_.get());
  online_ = std::make_unique<RedisOnline>(options_, limits.disconnect_grace, &io_, control_.get(),
                                          commands_.get());
  control_->SetRejoinHandler([this] {
    presence_->Restore();
    online_->Restore();
  });
  asio::post(io_, [this] {
    commands_->Start();
    pubsub_->Start();
    control_->Start();
  });
  thread_ = std::thread([this] { io_.run(); });
}

RedisEngine::~RedisEngine() { Shutdown(); }

void RedisEngine::Shutdown(Departure departure) {
  if (!thread_.joinable()) return;
  asio::post(io_, [this, departure] {
    control_->Stop(departure == Departure::kLeave, [this] {
      commands_->Stop();
      pubsub_->Stop();
    });
  });
  work_.reset();
  thread_.join();
}

absl::Status RedisEngine::WaitReady(absl::Duration timeout) {
  const absl::Time start = absl::Now();
  while (!ready()) {
    if (absl::Now() >= start + timeout) {
      return absl::UnavailableError(absl::StrCat("redis at ", options_.host, ":", options_.port,
                                                 " not reachable within ",
                                                 absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  // A node of an earlier process with this name may still be live: wait for its heartbeat to
  // lapse (a restart right after a crash) before calling the name taken.
  const absl::Duration name_wait =
      std::max(timeout, DeadNodeBound() + options_.heartbeat_interval * 2);
  while (true) {
    absl::Status joined = control_->joined();
    if (joined.ok()) return joined;
    const absl::Duration waited = absl::Now() - start;
    if (absl::IsAlreadyExists(joined) ? waited >= name_wait : waited >= timeout) return joined;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace herald::engine
