#include "server/engine/redis/redis_reply.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace herald::engine {

std::string RedisReply::text() const {
  switch (type) {
    case Type::kString:
    case Type::kStatus:
      return str;
    case Type::kInteger:
      return absl::StrCat(integer);
    default:
      return "";
  }
}

int64_t RedisReply::number() const {
  if (type == Type::kInteger) return integer;
  int64_t n = 0;
  if (type == Type::kString && absl::SimpleAtoi(str, &n)) return n;
  return 0;
}

const RedisReply& RedisReply::at(size_t i) const {
  static const RedisReply kNil;
  return i < elements.size() ? elements[i] : kNil;
}

void AppendCommand(const std::vector<std::string>& argv, std::string* out) {
  absl::StrAppend(out, "*", argv.size(), "\r\n");
  for (const std::string& arg : argv) absl::StrAppend(out, "$", arg.size(), "\r\n", arg, "\r\n");
}

}  // namespace herald::engine
