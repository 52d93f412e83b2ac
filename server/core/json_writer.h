#ifndef HERALD_SERVER_CORE_JSON_WRITER_H_
#define HERALD_SERVER_CORE_JSON_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace herald::core::json_writer {

// Fields of protobuf's JSON mapping written with RapidJSON's writer, for the few messages Herald
// writes on hot paths (orders, the welcome frame): each helper leaves a field out when it holds
// its default value, as protobuf's printer does. The helpers take any RapidJSON writer; Writer is
// the usual one. Stateless functions.
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

template <typename W>
void String(W& w, const char* name, const std::string& value) {
  if (value.empty()) return;
  w.Key(name);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

template <typename W>
void Uint32(W& w, const char* name, uint32_t value) {
  if (value == 0) return;
  w.Key(name);
  w.Uint(value);
}

template <typename W>
void Bool(W& w, const char* name, bool value) {
  if (!value) return;
  w.Key(name);
  w.Bool(true);
}

// 64-bit integers are printed as decimal strings.
template <typename W, typename Int>
void Int64(W& w, const char* name, Int value) {
  if (value == 0) return;
  const absl::AlphaNum digits(value);
  w.Key(name);
  w.String(digits.data(), static_cast<rapidjson::SizeType>(digits.size()));
}

// The text of any RapidJSON string buffer (StringBuffer, or one on a pool allocator).
template <typename Buffer>
std::string Text(const Buffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace herald::core::json_writer

#endif  // HERALD_SERVER_CORE_JSON_WRITER_H_
