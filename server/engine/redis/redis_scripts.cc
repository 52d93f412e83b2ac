#include "server/engine/redis/redis_scripts.h"

#include <openssl/sha.h>

#include <map>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"

namespace herald::engine {
namespace {

// Redis' clock, which every node shares: the scripts' only time.
constexpr char kNow[] = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// Nodes whose heartbeat expired: their process (instance) is gone. Run by every heartbeat and by
// every node's due-users check (10 times a second), so a dead node's users go offline within
// about 100 ms of the dead-node bound, not at the next heartbeat.
constexpr char kReapDeadNodes[] = R"lua(
local function reap_dead_nodes(nodes, ids, gone, now)
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now, 'LIMIT', 0, 64)) do
    local i = redis.call('HGET', ids, d)
    if i then redis.call('SADD', gone, i) end
    redis.call('HDEL', ids, d)
    redis.call('ZREM', nodes, d)
  end
end
)lua";

// Shared by the scripts. A channel C has four keys (see RedisBroker): meta (hash e=epoch,
// o=offset), hist (stream, entry id "<offset>-0", fields t=published ms, d=data), keyed (hash
// key -> "<offset> <ms> <data>", the latest publication per key) and expiring (sorted set of
// final keys by the ms they leave the snapshot).
constexpr char kPrelude[] = R"lua(
-- The channel's epoch and offset; a channel without meta (new, or expired) starts a new epoch
-- (the caller's random candidate) and drops whatever is left of its old stream.
local function meta_of(meta, hist, keyed, expiring, candidate, meta_ttl)
  local m = redis.call('HMGET', meta, 'e', 'o')
  if not m[1] then
    redis.call('DEL', hist, keyed, expiring)
    redis.call('HSET', meta, 'e', candidate, 'o', 0)
    redis.call('PEXPIRE', meta, meta_ttl)
    return candidate, 0
  end
  return m[1], tonumber(m[2])
end

-- Drops the history entries published before `cutoff` (always a prefix of the stream).
local function trim(hist, cutoff)
  while true do
    local batch = redis.call('XRANGE', hist, '-', '+', 'COUNT', 64)
    if #batch == 0 then return end
    local old = {}
    for _, e in ipairs(batch) do
      if tonumber(e[2][2]) >= cutoff then break end
      old[#old + 1] = e[1]
    end
    if #old > 0 then redis.call('XDEL', hist, unpack(old)) end
    if #old < #batch then return end
  end
end

-- Forgets final keys whose retention ended; returns how many.
local function expire_keys(keyed, expiring, now)
  local gone = redis.call('ZRANGEBYSCORE', expiring, '-inf', now, 'LIMIT', 0, 256)
  if #gone > 0 then
    redis.call('HDEL', keyed, unpack(gone))
    redis.call('ZREM', expiring, unpack(gone))
  end
  return #gone
end

-- One publication: k = {meta, hist, keyed, expiring}; c = {pubsub channel, epoch candidate,
-- history size, history ttl ms}. Returns {epoch, offset}.
local function publish(k, c, now, meta_ttl, key, final, retention, head, data)
  local epoch, offset = meta_of(k[1], k[2], k[3], k[4], c[2], meta_ttl)
  offset = offset + 1
  redis.call('HSET', k[1], 'o', offset)
  redis.call('PEXPIRE', k[1], meta_ttl)
  local size, ttl = tonumber(c[3]), tonumber(c[4])
  -- The head's first number is the flags; bit 1: the publication asks for acks.
  local ack = (tonumber(string.match(head, '^%d+')) or 0) % 2 == 1
  if size > 0 then
    if ack then
      redis.call('XADD', k[2], 'MAXLEN', size, offset .. '-0', 't', now, 'd', data, 'a', 1)
    else
      redis.call('XADD', k[2], 'MAXLEN', size, offset .. '-0', 't', now, 'd', data)
    end
    trim(k[2], now - ttl)
    redis.call('PEXPIRE', k[2], ttl)
  end
  if key ~= '' then
    redis.call('HSET', k[3], key, offset .. ' ' .. now .. ' ' .. (ack and 'a ' or '') .. data)
    if final then
      redis.call('ZADD', k[4], now + retention, key)
    else
      redis.call('ZREM', k[4], key)
    end
    expire_keys(k[3], k[4], now)
    redis.call('PEXPIRE', k[3], meta_ttl)
    redis.call('PEXPIRE', k[4], meta_ttl)
  end
  redis.call('PUBLISH', c[1], epoch .. ' ' .. offset .. ' ' .. now .. ' ' .. head .. data)
  return {epoch, offset}
end
)lua";

// KEYS: meta, hist, keyed, expiring.
// ARGV: pubsub channel, epoch candidate, history size, history ttl ms, meta ttl ms, key,
//       final (0|1), retention ms, head (RedisPublicationHead), data.
// Returns {epoch, offset}.
constexpr char kPublish[] = R"lua(
return publish(KEYS, ARGV, now_ms(), tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1',
               tonumber(ARGV[8]), ARGV[9], ARGV[10])
)lua";

// KEYS: meta, hist, keyed, expiring.
// ARGV: epoch candidate, meta ttl ms, history ttl ms, recover (0|1), since epoch, since offset,
//       snapshot (0|1).
// Returns {epoch, offset, recovered (0|1), missed entries, snapshot values}.
constexpr char kJoin[] = R"lua(
local now = now_ms()
local epoch, offset = meta_of(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
trim(KEYS[2], now - tonumber(ARGV[3]))
local recovered, missed = 0, {}
if ARGV[4] == '1' and ARGV[5] == epoch then
  local since = tonumber(ARGV[6])
  if since == offset then
    recovered = 1
  elseif since < offset then
    -- Recovered only when every offset after `since` is still retained.
    local first = (since + 1) .. '-0'
    local entries = redis.call('XRANGE', KEYS[2], first, '+')
    if #entries > 0 and entries[1][1] == first then
      recovered = 1
      missed = entries
    end
  end
end
local snapshot = {}
if ARGV[7] == '1' then
  while expire_keys(KEYS[3], KEYS[4], now) == 256 do end
  snapshot = redis.call('HVALS', KEYS[3])
end
return {epoch, offset, recovered, missed, snapshot}
)lua";

// KEYS: meta, hist, keyed, expiring.
// ARGV: epoch candidate, meta ttl ms, history ttl ms, since offset, limit, reverse (0|1).
// Returns {epoch, offset, entries}.
constexpr char kHistory[] = R"lua(
local now = now_ms()
local epoch, offset = meta_of(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[2]))
trim(KEYS[2], now - tonumber(ARGV[3]))
local first = (tonumber(ARGV[4]) + 1) .. '-0'
local entries
if ARGV[6] == '1' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', first, 'COUNT', ARGV[5])
else
  entries = redis.call('XRANGE', KEYS[2], first, '+', 'COUNT', ARGV[5])
end
return {epoch, offset, entries}
)lua";

// Orders: KEYS[1] versions (hash id -> version, zero-padded to 20 digits so that string order is
// numeric order for every uint64), KEYS[2] ended (sorted set id -> ms it is forgotten), then the
// four keys of every channel of the update.
// ARGV: id, version (padded), final (0|1), retention ms, meta ttl ms, key, head, data, then per
// channel: pubsub channel, epoch candidate, history size, history ttl ms.
// Returns {applied (0|1), latest version, tracked orders, then epoch, offset per channel}.
constexpr char kApplyOrder[] = R"lua(
local now = now_ms()
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 256)
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
local id, version = ARGV[1], ARGV[2]
local current = redis.call('HGET', KEYS[1], id)
if current and version <= current then
  return {0, current, redis.call('HLEN', KEYS[1])}
end
redis.call('HSET', KEYS[1], id, version)
local final, retention, meta_ttl = ARGV[3] == '1', tonumber(ARGV[4]), tonumber(ARGV[5])
if final then
  redis.call('ZADD', KEYS[2], now + retention, id)
else
  redis.call('ZREM', KEYS[2], id)
end
local out = {1, version, redis.call('HLEN', KEYS[1])}
local channels = (#KEYS - 2) / 4
for i = 0, channels - 1 do
  local k = {KEYS[3 + 4 * i], KEYS[4 + 4 * i], KEYS[5 + 4 * i], KEYS[6 + 4 * i]}
  local c = {ARGV[9 + 4 * i], ARGV[10 + 4 * i], ARGV[11 + 4 * i], ARGV[12 + 4 * i]}
  local pos = publish(k, c, now, meta_ttl, ARGV[6], final, retention, ARGV[7], ARGV[8])
  out[#out + 1] = pos[1]
  out[#out + 1] = pos[2]
end
return out
)lua";

// KEYS: versions, ended. Forgets the orders whose retention ended; returns how many are tracked.
constexpr char kSweepOrders[] = R"lua(
local now = now_ms()
while true do
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 256)
  if #gone == 0 then break end
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return redis.call('HLEN', KEYS[1])
)lua";

// The control bus and presence (RedisControlBus, RedisPresence). Nodes: a sorted set of node
// names scored by the ms their heartbeat lapses, a hash node -> instance (the process now using
// the name), a sorted set of the nodes that have watchers (scored like the nodes) and a set of
// gone instances (processes that died, left, or whose name a new process took) whose presence
// entries are still to be removed. A process's presence entries are listed in its own set,
// "<prefix>:presence:<instance>", as "<hash key length> " + hash key + connection id.
constexpr char kPresenceHead[] = R"lua(
-- owner node, instance and user of a presence entry (EncodePresence); nil when malformed.
local function presence_head(v)
  local a, b, c, at = string.match(v, '^(%d+) (%d+) (%d+) ()')
  if not at then return nil end
  a, b, c = tonumber(a), tonumber(b), tonumber(c)
  return string.sub(v, at, at + a - 1), string.sub(v, at + a, at + a + b - 1),
         string.sub(v, at + a + b, at + a + b + c - 1)
end
)lua";

// KEYS: nodes, ids, watching, gone. ARGV: node, instance, ttl ms, watching (0|1), key prefix.
// Returns {-1, instance} when a live node of another process has the name; otherwise
// {rejoined (1: the node was not live as this instance: first heartbeat, or after a lapse or a
// Redis restart), live nodes other than this one that have watchers}. Also reaps: nodes whose
// heartbeat lapsed are gone, and one gone process loses up to 256 presence entries.
constexpr char kHeartbeat[] = R"lua(
local nodes, ids, watching, gone = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local node, instance, ttl, watches = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local now = now_ms()
local score = redis.call('ZSCORE', nodes, node)
local alive = score and tonumber(score) > now
local owner = redis.call('HGET', ids, node)
local rejoined = 0
if owner ~= instance then
  if owner then
    if alive then return {-1, owner} end
    redis.call('SADD', gone, owner)
  end
  rejoined = 1
elseif not alive then
  rejoined = 1
end
redis.call('SREM', gone, instance)
redis.call('HSET', ids, node, instance)
redis.call('ZADD', nodes, now + ttl, node)
if watches then
  redis.call('ZADD', watching, now + ttl, node)
else
  redis.call('ZREM', watching, node)
end
reap_dead_nodes(nodes, ids, gone, now)
redis.call('ZREMRANGEBYSCORE', watching, '-inf', now)
local g = redis.call('SRANDMEMBER', gone)
if g then
  local set = ARGV[5] .. ':presence:' .. g
  for _, m in ipairs(redis.call('SPOP', set, 256)) do
    local n, at = string.match(m, '^(%d+) ()')
    if at then
      local key = string.sub(m, at, at + tonumber(n) - 1)
      local conn = string.sub(m, at + tonumber(n))
      local v = redis.call('HGET', key, conn)
      if v then
        local _, inst = presence_head(v)
        if inst == g then redis.call('HDEL', key, conn) end
      end
    end
  end
  -- Gone for good once RedisOnline also took its users' connections out (OnlineDueScript).
  if redis.call('EXISTS', set) == 0 and
      redis.call('EXISTS', ARGV[5] .. ':online:i:' .. g) == 0 then
    redis.call('SREM', gone, g)
  end
end
local others = redis.call('ZCOUNT', watching, '(' .. now, '+inf')
if watches then others = others - 1 end
return {rejoined, others}
)lua";

// KEYS: nodes, ids, watching, gone. ARGV: node, instance. This process leaves: it is no longer
// a live node, and its presence entries are gone (reaped by the heartbeats).
constexpr char kLeave[] = R"lua(
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[2])
end
return 1
)lua";

// KEYS: nodes. ARGV: control channel, survey message. Publishes the survey and returns the nodes
// that were live when it was published: the ones expected to answer.
constexpr char kSurvey[] = R"lua(
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return live
)lua";

// KEYS: a channel's presence hash, nodes, ids. ARGV: count (0|1). The entries of live processes
// only (their node live, with the instance that wrote them): their values, or with count
// {connections, distinct non-empty users}.
constexpr char kPresenceRead[] = R"lua(
local now = now_ms()
local known = {}
local function alive(owner, inst)
  local k = owner .. '\0' .. inst
  local a = known[k]
  if a == nil then
    local s = redis.call('ZSCORE', KEYS[2], owner)
    a = (s and tonumber(s) > now and redis.call('HGET', KEYS[3], owner) == inst) or false
    known[k] = a
  end
  return a
end
local all = redis.call('HGETALL', KEYS[1])
local out, users, connections, distinct = {}, {}, 0, 0
for i = 2, #all, 2 do
  local owner, inst, user = presence_head(all[i])
  if owner and alive(owner, inst) then
    if ARGV[1] == '1' then
      connections = connections + 1
      if user ~= '' and not users[user] then
        users[user] = true
        distinct = distinct + 1
      end
    else
      out[#out + 1] = all[i]
    end
  end
end
if ARGV[1] == '1' then return {connections, distinct} end
return out
)lua";

// Task queues (RedisTaskStore). ARGV[1] is the key root "<prefix>:tasks:"; the keys under it:
//   seq         string: the last task number (ids "t<n>")
//   queues      set: every queue that ever had a task
//   c:<queue>   hash: w waiting, d dispatched, a acked, r redelivered, e expired
//   w:<queue>   list: waiting task ids, front first; may hold ids of tasks that expired while
//               waiting (skipped, and dropped in bulk once they outnumber the live ones)
//   l:<queue>   hash: delivery id -> task id, the queue's leases
//   t:<id>      hash: the task: q queue, d data, a ack deadline ms, x expiry (ms, Redis clock),
//               n attempt, h holder ('' while waiting), p previous holder, g time granted to the
//               current or last delivery (ms), l its deadline (ms)
//   due         sorted set: task id -> when it is next due (leased: its deadline, which is at
//               most its expiry; waiting: its expiry), one entry per live task
//   o:<node>    list: timeouts of that node's leases found by another node's sweep, until that
//               node's sweep takes them (PEXPIRE: a node that is gone leaves nothing behind)
// Keys are named from data (a queue, a task id), so these scripts need a single Redis.
constexpr char kTaskPrelude[] = R"lua(
local R = ARGV[1]

local function load(id)
  local v = redis.call('HMGET', R .. 't:' .. id, 'q', 'a', 'x', 'n', 'h', 'p', 'g', 'l')
  if not v[1] then return nil end
  return {id = id, q = v[1], a = tonumber(v[2]), x = tonumber(v[3]), n = tonumber(v[4]),
          h = v[5], p = v[6], g = tonumber(v[7]), l = tonumber(v[8])}
end

-- A lease as DecodeLease (redis_codec.h) reads it.
local function encode(t, data)
  return t.n .. ' ' .. t.g .. ' ' .. t.l .. ' ' .. #t.q .. ' ' .. #t.id .. ' ' .. #t.h .. ' ' ..
         #t.p .. ' ' .. t.q .. t.id .. t.h .. t.p .. (data or '')
end

-- Leases waiting (and popped) task t to `holder`: the task's ack deadline, cut short by its TTL.
local function grant(t, holder, now)
  local key = R .. 't:' .. t.id
  t.n, t.h = t.n + 1, holder
  t.g = math.min(t.a, t.x - now)
  t.l = now + t.g
  redis.call('HSET', key, 'n', t.n, 'h', t.h, 'g', t.g, 'l', t.l)
  redis.call('HSET', R .. 'l:' .. t.q, t.id .. '.' .. t.n, t.id)
  redis.call('ZADD', R .. 'due', t.l, t.id)
  return encode(t, redis.call('HGET', key, 'd'))
end

-- Takes leased task t from its holder and puts it at the front of its queue, counted redelivered.
local function give_back(t)
  redis.call('HDEL', R .. 'l:' .. t.q, t.id .. '.' .. t.n)
  t.p, t.h = t.h, ''
  redis.call('HSET', R .. 't:' .. t.id, 'h', '', 'p', t.p)
  redis.call('LPUSH', R .. 'w:' .. t.q, t.id)
  redis.call('HINCRBY', R .. 'c:' .. t.q, 'w', 1)
  redis.call('HINCRBY', R .. 'c:' .. t.q, 'r', 1)
  redis.call('ZADD', R .. 'due', t.x, t.id)
end

-- Forgets task t, past its TTL: leased, or waiting (its id stays in the list, skipped).
local function expire(t)
  if t.h ~= '' then
    redis.call('HDEL', R .. 'l:' .. t.q, t.id .. '.' .. t.n)
  else
    redis.call('HINCRBY', R .. 'c:' .. t.q, 'w', -1)
  end
  redis.call('HINCRBY', R .. 'c:' .. t.q, 'e', 1)
  redis.call('DEL', R .. 't:' .. t.id)
  redis.call('ZREM', R .. 'due', t.id)
end

-- Whether list entry `id` is a waiting task (not one that expired meanwhile).
local function waiting(id)
  return redis.call('HGET', R .. 't:' .. id, 'h') == ''
end

-- Drops ids of expired tasks from the list of queue q: at the front (where expiry usually
-- happens), and everywhere once they outnumber the live ones, so each costs O(1) amortized.
local function tidy(q)
  local list = R .. 'w:' .. q
  while true do
    local id = redis.call('LINDEX', list, 0)
    if not id or waiting(id) then break end
    redis.call('LPOP', list)
  end
  local len = redis.call('LLEN', list)
  if len > 64 and len > 2 * tonumber(redis.call('HGET', R .. 'c:' .. q, 'w') or '0') then
    local keep = {}
    for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
      if waiting(id) then keep[#keep + 1] = id end
    end
    redis.call('DEL', list)
    for i = 1, #keep, 1000 do
      redis.call('RPUSH', list, unpack(keep, i, math.min(i + 999, #keep)))
    end
  end
end
)lua";

// ARGV: root, queue, data, ack deadline ms, ttl ms, offer to ('' for none), max depth, notice
// channel. Returns {0, waiting} when the queue is full, else {1, waiting after, task id[, lease]}.
constexpr char kEnqueueTask[] = R"lua(
local now, q = now_ms(), ARGV[2]
local counters = R .. 'c:' .. q
local depth = tonumber(redis.call('HGET', counters, 'w') or '0')
if depth >= tonumber(ARGV[7]) then return {0, depth} end
redis.call('SADD', R .. 'queues', q)
redis.call('HINCRBY', counters, 'd', 1)
-- A counter that is new (first use, or Redis lost its data) starts at its creation time in ms
-- times 1000 (core::FirstTaskNumber), so no id is ever given twice. '%.0f': exact up to 2^53,
-- where Lua's default number format keeps only 14 digits.
local seq = R .. 'seq'
if redis.call('EXISTS', seq) == 0 then redis.call('SET', seq, string.format('%.0f', now * 1000)) end
local t = {id = 't' .. string.format('%.0f', redis.call('INCR', seq)), q = q, a = tonumber(ARGV[4]),
           x = now + tonumber(ARGV[5]), n = 0, h = '', p = '', g = 0, l = 0}
redis.call('HSET', R .. 't:' .. t.id, 'q', q, 'd', ARGV[3], 'a', t.a, 'x', t.x, 'n', 0, 'h', '',
           'p', '', 'g', 0, 'l', 0)
if ARGV[6] ~= '' and depth == 0 then
  return {1, 0, t.id, grant(t, ARGV[6], now)}
end
redis.call('RPUSH', R .. 'w:' .. q, t.id)
redis.call('HINCRBY', counters, 'w', 1)
redis.call('ZADD', R .. 'due', t.x, t.id)
redis.call('PUBLISH', ARGV[8], q)
return {1, depth + 1, t.id}
)lua";

// ARGV: root, queue, holders... (one entry per task wanted, best first).
// Returns {leases, tasks found expired (reports "t <lease>")}.
constexpr char kLeaseTasks[] = R"lua(
local now, q = now_ms(), ARGV[2]
local holders, leases, expired = {}, {}, {}
for i = 3, #ARGV do holders[#holders + 1] = ARGV[i] end
while #holders > 0 do
  local id = redis.call('LPOP', R .. 'w:' .. q)
  if not id then break end
  local t = load(id)
  if t and t.h == '' then
    if t.x <= now then
      expire(t)
      expired[#expired + 1] = 't ' .. encode(t)
    else
      redis.call('HINCRBY', R .. 'c:' .. q, 'w', -1)
      local to = 1
      for i, h in ipairs(holders) do
        if h ~= t.p then
          to = i
          break
        end
      end
      leases[#leases + 1] = grant(t, table.remove(holders, to), now)
    end
  end
end
return {leases, expired}
)lua";

// The task of delivery ARGV[2] when ARGV[3] holds it now, or nil.
constexpr char kHeldTask[] = R"lua(
local function held()
  local id = string.match(ARGV[2], '^(.+)%.%d+$')
  if not id or ARGV[3] == '' then return nil end
  local t = load(id)
  if not t or t.h ~= ARGV[3] or ARGV[2] ~= t.id .. '.' .. t.n then return nil end
  return t
end
)lua";

// ARGV: root, delivery id, holder. Returns 1, or 0 when the holder does not hold that lease.
constexpr char kAckTask[] = R"lua(
local t = held()
if not t then return 0 end
redis.call('HDEL', R .. 'l:' .. t.q, ARGV[2])  -- = t.id .. '.' .. t.n (held)
redis.call('DEL', R .. 't:' .. t.id)
redis.call('ZREM', R .. 'due', t.id)
redis.call('HINCRBY', R .. 'c:' .. t.q, 'a', 1)
return 1
)lua";

// ARGV: root, delivery id, holder, notice channel. Returns 1, or 0 as for ack.
constexpr char kReleaseTask[] = R"lua(
local t = held()
if not t then return 0 end
give_back(t)
redis.call('PUBLISH', ARGV[4], t.q)
return 1
)lua";

// ARGV: root. Returns per queue {name, waiting, dispatched, acked, redelivered, expired, leases}.
constexpr char kListTasks[] = R"lua(
local out = {}
for _, q in ipairs(redis.call('SMEMBERS', R .. 'queues')) do
  local c = redis.call('HMGET', R .. 'c:' .. q, 'w', 'd', 'a', 'r', 'e')
  local leased = {}
  local l = redis.call('HGETALL', R .. 'l:' .. q)
  for i = 2, #l, 2 do
    local t = load(l[i])
    if t then leased[#leased + 1] = encode(t) end
  end
  out[#out + 1] = {q, c[1] or '0', c[2] or '0', c[3] or '0', c[4] or '0', c[5] or '0', leased}
end
return out
)lua";

// ARGV: root, this node, batch, notice channel, outbox ttl ms.
// Redelivers up to `batch` due leases and expires tasks past their TTL, of any node; a timeout
// of a lease of another node goes to that node's outbox, and this node takes its own outbox.
// Returns {reports for this node ("a <lease>": ack deadline, "t <lease>": TTL), more (0|1)}.
constexpr char kSweepTasks[] = R"lua(
local now, node, batch = now_ms(), ARGV[2], tonumber(ARGV[3])
local here, announce, untidy = {}, {}, {}
local function report(t, why)
  local entry = why .. ' ' .. encode(t)
  local owner = string.match(t.h, '^([^/]*)/')
  if t.h == '' or not owner or owner == node then
    here[#here + 1] = entry
  else
    local box = R .. 'o:' .. owner
    redis.call('RPUSH', box, entry)
    redis.call('PEXPIRE', box, ARGV[5])
  end
end
local due = redis.call('ZRANGEBYSCORE', R .. 'due', '-inf', now, 'LIMIT', 0, batch)
for _, id in ipairs(due) do
  local t = load(id)
  if not t then
    redis.call('ZREM', R .. 'due', id)
  elseif t.x <= now then
    if t.h == '' then untidy[t.q] = true end
    expire(t)
    report(t, 't')
  elseif t.h ~= '' and t.l <= now then
    report(t, 'a')
    give_back(t)
    announce[t.q] = true
  else
    redis.call('ZADD', R .. 'due', t.h ~= '' and t.l or t.x, id)
  end
end
for q in pairs(untidy) do tidy(q) end
for q in pairs(announce) do redis.call('PUBLISH', ARGV[4], q) end
local box = R .. 'o:' .. node
local mine = redis.call('LRANGE', box, 0, batch - 1)
if #mine > 0 then redis.call('LTRIM', box, #mine, -1) end
for _, entry in ipairs(mine) do here[#here + 1] = entry end
return {here, (#due == batch or #mine == batch) and 1 or 0}
)lua";

// RedisOnline. Per user U, the hash "<prefix>:online:u:U": instance -> its connections of U; per
// instance, the set "<prefix>:online:i:<instance>" of its users; the sorted set
// "<prefix>:online:due": user -> when their grace period ends (Redis ms).
//
// KEYS user hash, instance set, due; ARGV instance, user. 1 when the user came online (no
// connection anywhere and no grace period running), else 0.
constexpr char kOnlineConnect[] = R"lua(
local before = redis.call('HLEN', KEYS[1])
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
local pending = redis.call('ZREM', KEYS[3], ARGV[2])
if before == 0 and pending == 0 then return 1 end
return 0
)lua";
// KEYS as above; ARGV instance, user, grace ms. 1 when the user is offline at once (no grace
// period), else 0 (the grace period runs, or connections remain).
constexpr char kOnlineDisconnect[] = R"lua(
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
local grace = tonumber(ARGV[3])
if grace <= 0 then return 1 end
redis.call('ZADD', KEYS[3], now_ms() + grace, ARGV[2])
return 0
)lua";
// KEYS due, gone instances, nodes, ids (RedisControlBus); ARGV prefix, grace ms, taken-set TTL
// ms. First counts the nodes whose heartbeat expired gone (as the heartbeat does), then takes the
// connections of dead instances out of their users' hashes (256 users a call),
// starting the grace period of the users left with none, and notes the users taken from each in
// "<prefix>:online:taken:<instance>" (for kOnlineRestore, should it come back); then returns the
// users whose grace period ended, removed from the due set (so only the caller reports them).
constexpr char kOnlineDue[] = R"lua(
local now = now_ms()
reap_dead_nodes(KEYS[3], KEYS[4], KEYS[2], now)
local grace = tonumber(ARGV[2])
local budget = 256
for _, g in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if budget <= 0 then break end
  local set = ARGV[1] .. ':online:i:' .. g
  local taken = ARGV[1] .. ':online:taken:' .. g
  for _, u in ipairs(redis.call('SPOP', set, budget)) do
    budget = budget - 1
    redis.call('SADD', taken, u)
    redis.call('PEXPIRE', taken, ARGV[3])
    local key = ARGV[1] .. ':online:u:' .. u
    redis.call('HDEL', key, g)
    if redis.call('HLEN', key) == 0 and not redis.call('ZSCORE', KEYS[1], u) then
      redis.call('ZADD', KEYS[1], now + grace, u)
    end
  end
end
local out = {}
for _, u in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 256)) do
  redis.call('ZREM', KEYS[1], u)
  if redis.call('EXISTS', ARGV[1] .. ':online:u:' .. u) == 0 then out[#out + 1] = u end
end
return out
)lua";
// KEYS instance set, due, taken set; ARGV prefix, instance, grace ms, then user, count pairs:
// this instance's connections as it counts them (after Redis lost them, or missed updates).
// Users it no longer has lose its entry (their grace period starts when none is left). Returns
// the users that are online again: taken from this instance while it was counted gone, reported
// offline since (no connection anywhere, no grace period running), and still connected here.
constexpr char kOnlineRestore[] = R"lua(
local now = now_ms()
local mine = {}
for i = 4, #ARGV, 2 do mine[ARGV[i]] = ARGV[i + 1] end
for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not mine[u] then
    local key = ARGV[1] .. ':online:u:' .. u
    redis.call('HDEL', key, ARGV[2])
    redis.call('SREM', KEYS[1], u)
    if redis.call('HLEN', key) == 0 then
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), u)
    end
  end
end
local back = {}
for u, n in pairs(mine) do
  local key = ARGV[1] .. ':online:u:' .. u
  local before = redis.call('HLEN', key)
  redis.call('HSET', key, ARGV[2], n)
  redis.call('SADD', KEYS[1], u)
  local pending = redis.call('ZREM', KEYS[2], u)
  if before == 0 and pending == 0 and redis.call('SISMEMBER', KEYS[3], u) == 1 then
    back[#back + 1] = u
  end
end
redis.call('DEL', KEYS[3])
return back
)lua";

}  // namespace

RedisScript::RedisScript(std::string body) : source(std::move(body)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source.data()), source.size(), digest);
  sha1 = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

const RedisScript& Sharded(const RedisScript& script) {
  static absl::Mutex* const mu = new absl::Mutex;
  static auto* const variants = new std::map<std::string, std::unique_ptr<RedisScript>>;
  absl::MutexLock lock(mu);
  std::unique_ptr<RedisScript>& v = (*variants)[script.sha1];
  if (v == nullptr) {
    v = std::make_unique<RedisScript>(
        absl::StrReplaceAll(script.source, {{"'PUBLISH'", "'SPUBLISH'"}}));
  }
  return *v;
}

const RedisScript& PublishScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kPrelude, kPublish));
  return *s;
}
const RedisScript& JoinScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kPrelude, kJoin));
  return *s;
}
const RedisScript& HistoryScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kPrelude, kHistory));
  return *s;
}
const RedisScript& ApplyOrderScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kPrelude, kApplyOrder));
  return *s;
}
const RedisScript& SweepOrdersScript() {
  static const RedisScript* s = new RedisScript(kSweepOrders);
  return *s;
}

const RedisScript& HeartbeatScript() {
  static const RedisScript* s =
      new RedisScript(absl::StrCat(kNow, kReapDeadNodes, kPresenceHead, kHeartbeat));
  return *s;
}
const RedisScript& LeaveScript() {
  static const RedisScript* s = new RedisScript(kLeave);
  return *s;
}
const RedisScript& SurveyScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kSurvey));
  return *s;
}
const RedisScript& PresenceReadScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kPresenceHead, kPresenceRead));
  return *s;
}
const RedisScript& EnqueueTaskScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kTaskPrelude, kEnqueueTask));
  return *s;
}
const RedisScript& LeaseTasksScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kTaskPrelude, kLeaseTasks));
  return *s;
}
const RedisScript& AckTaskScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kTaskPrelude, kHeldTask, kAckTask));
  return *s;
}
const RedisScript& ReleaseTaskScript() {
  static const RedisScript* s =
      new RedisScript(absl::StrCat(kTaskPrelude, kHeldTask, kReleaseTask));
  return *s;
}
const RedisScript& ListTasksScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kTaskPrelude, kListTasks));
  return *s;
}
const RedisScript& OnlineConnectScript() {
  static const RedisScript* s = new RedisScript(kOnlineConnect);
  return *s;
}
const RedisScript& OnlineDisconnectScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kOnlineDisconnect));
  return *s;
}
const RedisScript& OnlineDueScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kReapDeadNodes, kOnlineDue));
  return *s;
}
const RedisScript& OnlineRestoreScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kOnlineRestore));
  return *s;
}
const RedisScript& SweepTasksScript() {
  static const RedisScript* s = new RedisScript(absl::StrCat(kNow, kTaskPrelude, kSweepTasks));
  return *s;
}

}  // namespace herald::engine
