#include "server/engine/redis/redis_scripts.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {
namespace {

// Redis' clock, which every node shares: the scripts' only time.
constexpr char kNow[] = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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
  if size > 0 then
    redis.call('XADD', k[2], 'MAXLEN', size, offset .. '-0', 't', now, 'd', data)
    trim(k[2], now - ttl)
    redis.call('PEXPIRE', k[2], ttl)
  end
  if key ~= '' then
    redis.call('HSET', k[3], key, offset .. ' ' .. now .. ' ' .. data)
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

}  // namespace

RedisScript::RedisScript(std::string body) : source(std::move(body)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source.data()), source.size(), digest);
  sha1 = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
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

}  // namespace herald::engine
