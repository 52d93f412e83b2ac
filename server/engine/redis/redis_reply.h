#ifndef HERALD_SERVER_ENGINE_REDIS_REDIS_REPLY_H_
#define HERALD_SERVER_ENGINE_REDIS_REDIS_REPLY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace herald::engine {

// One parsed RESP reply, owned (converted from hiredis' redisReply tree, which is freed at once).
// Error replies never reach a RedisReply: the connection turns them into an absl::Status. Plain
// value type.
struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
  bool is_array() const { return type == Type::kArray; }
  // The text of a string, status or integer reply ("" for nil and arrays).
  std::string text() const;
  // An integer reply, or a string holding a decimal number; 0 otherwise.
  int64_t number() const;
  // Element `i` of an array, or a nil reply when there is none.
  const RedisReply& at(size_t i) const;
};

// Appends one command in RESP (an array of bulk strings) to `out`.
void AppendCommand(const std::vector<std::string>& argv, std::string* out);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REDIS_REDIS_REPLY_H_
