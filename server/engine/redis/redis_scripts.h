#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_SCRIPTS_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_SCRIPTS_H_

#include <string>

namespace herald::engine {

// A Lua script run with EVALSHA (loaded by SCRIPT LOAD when a connection opens; EVAL when Redis
// forgot it). Immutable after construction.
struct RedisScript {
  explicit RedisScript(std::string body);
  std::string source;
  std::string sha1;  // hex, as SCRIPT LOAD returns it
};

// `script` for Redis Cluster: the same body with PUBLISH replaced by the sharded SPUBLISH (its
// channel in the hash slot of the script's keys). Any thread; the reference stays valid.
const RedisScript& Sharded(const RedisScript& script);

// The engine's scripts (server/engine/redis/redis_scripts.cc documents their keys and
// arguments). Each runs atomically in Redis: that is what orders a channel's publications and
// makes the order version check and its publications one step across all nodes.
const RedisScript& PublishScript();
const RedisScript& JoinScript();
const RedisScript& HistoryScript();
const RedisScript& ApplyOrderScript();
const RedisScript& SweepOrdersScript();
// The task queues' (RedisTaskStore): one script per TaskStore operation.
const RedisScript& EnqueueTaskScript();
const RedisScript& LeaseTasksScript();
const RedisScript& AckTaskScript();
const RedisScript& ReleaseTaskScript();
const RedisScript& ListTasksScript();
const RedisScript& SweepTasksScript();
// The control bus's and presence's (RedisControlBus, RedisPresence).
const RedisScript& HeartbeatScript();
const RedisScript& LeaveScript();
const RedisScript& SurveyScript();
const RedisScript& PresenceReadScript();
// Which users are online (RedisOnline).
const RedisScript& OnlineConnectScript();
const RedisScript& OnlineDisconnectScript();
const RedisScript& OnlineDueScript();
const RedisScript& OnlineRestoreScript();

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_SCRIPTS_H_
