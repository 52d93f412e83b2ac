// Fuzzes the RFC 6455 frame reader of Herald's ws:// transport: ws::FrameReader on the bytes a
// client sent on one connection, unmasked in place.
//
// Input: the first byte picks max_message_bytes (16 << (b % 12): 16 B to 32 KB); the rest is the
// bytes a client sent, fed once in one piece and once cut into reads at pseudo-random points
// derived from the input (1 to 256 bytes each, mostly few, each read in a buffer of its own so that
// ASan sees a view kept past its read). Invariants: no crash/leak/UB (sanitizers); text messages
// are valid UTF-8, data messages are at most max_message_bytes, control payloads at most 125 bytes,
// a close payload has a valid code and a UTF-8 reason; an error is 1002, 1007 or 1009 and leaves
// nothing buffered; nothing buffered exceeds the bounds; and the messages and the error are the
// same whether the bytes come in one read or in many (the reader does not depend on TCP
// segmentation).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <websocketpp/utf8_validator.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/ws/frame_reader.h"
#include "tests/fuzz/fuzz_check.h"

namespace herald::fuzz {
namespace {

// What one connection's bytes read as: each message or control frame, then the error.
struct Outcome {
  std::vector<std::pair<ws::Opcode, std::string>> messages;
  int error_code = 0;
  std::string error_reason;
  bool operator==(const Outcome& o) const {
    return messages == o.messages && error_code == o.error_code && error_reason == o.error_reason;
  }
};

bool OnMessage(Outcome& outcome, size_t max, ws::Opcode opcode, absl::string_view payload) {
  switch (opcode) {
    case ws::Opcode::kText:
      Check(websocketpp::utf8_validator::validate(std::string(payload)),
            "a text message is not UTF-8");
      [[fallthrough]];
    case ws::Opcode::kBinary:
      Check(payload.size() <= max, absl::StrCat("a message of ", payload.size(), " bytes > ", max));
      break;
    case ws::Opcode::kClose: {
      Check(payload.size() != 1, "a close payload of one byte");
      const auto [code, reason] = ws::ParseClosePayload(payload);
      // 1005: an empty payload; 1012-1014 are registered (RFC 6455's registry, since).
      Check((code >= 1000 && code <= 1003) || code == 1005 || (code >= 1007 && code <= 1014) ||
                (code >= 3000 && code <= 4999),
            absl::StrCat("close code ", code));
      Check(code != 1005 || payload.empty(), "1005 sent on the wire");
      Check(websocketpp::utf8_validator::validate(reason), "a close reason is not UTF-8");
      [[fallthrough]];
    }
    case ws::Opcode::kPing:
    case ws::Opcode::kPong:
      Check(payload.size() <= 125, "a control payload over 125 bytes");
      break;
    default:
      Fail(absl::StrCat("delivered opcode ", static_cast<int>(opcode)));
  }
  outcome.messages.emplace_back(opcode, std::string(payload));
  return opcode != ws::Opcode::kClose;  // as the server does: nothing is read after a close
}

// Feeds `input` in one read (seed 0) or in reads whose lengths `seed` picks.
Outcome Read(absl::string_view input, size_t max, uint64_t seed) {
  Outcome outcome;
  ws::FrameReader reader(max);
  size_t offset = 0;
  while (offset < input.size()) {
    size_t n = input.size() - offset;
    if (seed != 0) {
      seed ^= seed << 13;  // xorshift64
      seed ^= seed >> 7;
      seed ^= seed << 17;
      n = std::min<size_t>(n, 1 + ((seed >> 56) >> ((seed >> 8) & 7)));
    }
    std::vector<char> read(input.begin() + offset, input.begin() + offset + n);
    offset += n;
    const std::optional<ws::FrameError> error =
        reader.Feed(absl::MakeSpan(read), [&](ws::Opcode opcode, absl::string_view payload) {
          return OnMessage(outcome, max, opcode, payload);
        });
    if (error) {
      Check(error->close_code == 1002 || error->close_code == 1007 || error->close_code == 1009,
            absl::StrCat("error code ", error->close_code));
      Check(!error->reason.empty(), "an error without a reason");
      Check(reader.buffered_bytes() == 0, "bytes held after an error");
      outcome.error_code = error->close_code;
      outcome.error_reason = error->reason;
      return outcome;
    }
    Check(reader.buffered_bytes() <= max + 125, "more held than a message and a control frame");
  }
  return outcome;
}

}  // namespace
}  // namespace herald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max = size_t{16} << (data[0] % 12);
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  uint64_t seed = 14695981039346656037ULL;  // FNV-1a of the whole input: the cuts follow the data
  for (size_t i = 0; i < size; ++i) seed = (seed ^ data[i]) * 1099511628211ULL;
  if (seed == 0) seed = 1;
  const herald::fuzz::Outcome whole = herald::fuzz::Read(input, max, 0);
  const herald::fuzz::Outcome cut = herald::fuzz::Read(input, max, seed);
  herald::fuzz::Check(whole == cut, "the outcome depends on how the bytes were cut into reads");
  return 0;
}
