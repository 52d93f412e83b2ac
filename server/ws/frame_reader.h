#ifndef HERALD_SERVER_WS_FRAME_READER_H_
#define HERALD_SERVER_WS_FRAME_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace herald::ws {

// The opcodes of RFC 6455 §5.2; the others are reserved and refused.
enum class Opcode : uint8_t {
  kContinuation = 0,
  kText = 1,
  kBinary = 2,
  kClose = 8,
  kPing = 9,
  kPong = 10,
};

// What ended a connection's reading: the close code and reason to send (RFC 6455 §7.4).
struct FrameError {
  int close_code;
  std::string reason;
};

// Reads the frames a client sends on one plain WebSocket connection (RFC 6455, server side, no
// extensions) and hands over whole messages and control frames. Owns the state of the frame in
// progress (at most a 14-byte header, inline) and, only while a message or control frame is cut
// across reads or fragments, a buffer for its payload, reserved from the announced length (which
// is checked against max_message_bytes from the header, before any payload is kept). Between
// messages it owns no heap memory. Payloads that arrive whole in one read are unmasked in place
// and passed on without a copy. Not thread-safe: one per connection, used on that connection's
// I/O thread only.
class FrameReader {
 public:
  explicit FrameReader(size_t max_message_bytes);
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Takes bytes a client sent, in order and cut anywhere, unmasks them in place (`bytes` is the
  // caller's read buffer) and calls `on_message` once per complete message (text or binary,
  // fragments joined) or control frame (ping, pong, close), in wire order, with the unmasked
  // payload: a view valid only during the call. `on_message` returns false to stop reading (e.g.
  // after a close frame): Feed returns at once, and ignores the bytes of later calls. Returns the
  // error that must close the connection, or nullopt; after an error the reader must not be fed
  // again.
  std::optional<FrameError> Feed(
      absl::Span<char> bytes,
      absl::FunctionRef<bool(Opcode opcode, absl::string_view payload)> on_message);

  // Bytes held for an incomplete frame or message (0 between messages), for tests and accounting.
  size_t buffered_bytes() const;

 private:
  enum class State : uint8_t { kHeader, kPayload, kDone };

  // Checks the header bytes read so far once `header_size_` reaches a point where a rule can be
  // decided; on success, moves to kPayload when the header is complete.
  std::optional<FrameError> OnHeaderByte();
  // Unmasks, validates and keeps or delivers `payload`, the next bytes of the current frame.
  // Sets `*stop` when on_message asked to stop.
  std::optional<FrameError> OnPayload(
      absl::Span<char> payload,
      absl::FunctionRef<bool(Opcode opcode, absl::string_view payload)> on_message, bool* stop);
  // The current frame's payload is complete: delivers it (from `whole` if it is not null, a view
  // of the caller's bytes holding the entire payload, else from the buffers).
  std::optional<FrameError> OnFrameEnd(
      const char* whole,
      absl::FunctionRef<bool(Opcode opcode, absl::string_view payload)> on_message, bool* stop);
  // Drops every buffer and the frame in progress; the reader no longer reads.
  void Finish();

  const size_t max_message_bytes_;
  uint64_t payload_length_ = 0;    // of the current frame
  uint64_t payload_received_ = 0;  // of the current frame
  size_t message_size_ = 0;  // the announced payload of the data frames of the current message
  std::string message_;      // the data message's payload, when it is cut or fragmented
  std::unique_ptr<char[]> control_;  // a control frame's payload (<= 125 bytes), when it is cut
  uint32_t utf8_state_ = 0;          // of the current text message (websocketpp's UTF-8 DFA)
  uint8_t header_[14];
  uint8_t header_size_ = 0;
  uint8_t mask_[4] = {0, 0, 0, 0};
  Opcode opcode_ = Opcode::kContinuation;          // of the current frame
  Opcode message_opcode_ = Opcode::kContinuation;  // of the current message (text or binary)
  bool fin_ = false;                               // of the current frame
  bool in_message_ = false;                        // a fragmented message has begun and not ended
  State state_ = State::kHeader;
};

// The code and reason of a close frame's payload (already validated by Feed): an empty payload
// is 1005 ("no status received") with an empty reason.
std::pair<int, std::string> ParseClosePayload(absl::string_view payload);

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_FRAME_READER_H_
