#include "server/ws/frame_reader.h"

#include <algorithm>
#include <cstring>

#include <websocketpp/utf8_validator.hpp>

namespace herald::ws {
namespace {

constexpr size_t kMaxControlPayload = 125;

bool IsControl(Opcode opcode) { return static_cast<uint8_t>(opcode) >= 8; }

// Bytes of a cut data frame reserved before they arrive.
constexpr size_t kReserveAhead = 16 * 1024;

bool IsKnownOpcode(uint8_t opcode) { return opcode <= 2 || (opcode >= 8 && opcode <= 10); }

// RFC 6455 §7.4 and the IANA registry: the codes a peer may send (1004-1006 and 1015 are never
// sent; 1012-1014, service restart, try again later, bad gateway, are registered since and
// other servers send them), plus the registered and private ranges.
bool IsValidCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

FrameError ProtocolError(const char* reason) { return FrameError{1002, reason}; }

// XORs `n` bytes at `p` with the frame's mask, starting at mask byte `offset % 4`; eight bytes
// at a time, since the mask repeats every four.
void Unmask(char* p, size_t n, const uint8_t mask[4], uint64_t offset) {
  uint8_t m[8];
  for (int i = 0; i < 8; ++i) m[i] = mask[(offset + i) & 3];
  size_t i = 0;
  if (n >= 8) {
    uint64_t m64;
    std::memcpy(&m64, m, 8);
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      w ^= m64;
      std::memcpy(p + i, &w, 8);
    }
  }
  for (; i < n; ++i) p[i] = static_cast<char>(p[i] ^ m[i & 3]);
}

// Advances websocketpp's UTF-8 DFA (Hoehrmann's) over `n` bytes; false once a byte cannot
// continue valid UTF-8. Runs of ASCII between code points are skipped eight bytes at a time.
bool AdvanceUtf8(uint32_t* state, const char* p, size_t n) {
  namespace utf8 = websocketpp::utf8_validator;
  size_t i = 0;
  while (i < n) {
    if (*state == utf8::utf8_accept) {
      for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL) break;
      }
      if (i == n) break;
    }
    uint32_t code_point = 0;  // only the state matters here
    if (utf8::decode(state, &code_point, static_cast<uint8_t>(p[i])) == utf8::utf8_reject) {
      return false;
    }
    ++i;
  }
  return true;
}

bool IsValidUtf8(absl::string_view s) {
  uint32_t state = websocketpp::utf8_validator::utf8_accept;
  return AdvanceUtf8(&state, s.data(), s.size()) &&
         state == websocketpp::utf8_validator::utf8_accept;
}

}  // namespace

FrameReader::FrameReader(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

size_t FrameReader::buffered_bytes() const {
  return header_size_ + message_.size() + (control_ ? payload_received_ : 0);
}

void FrameReader::Finish() {
  state_ = State::kDone;
  header_size_ = 0;
  payload_received_ = 0;
  std::string().swap(message_);
  control_.reset();
}

std::optional<FrameError> FrameReader::Feed(
    absl::Span<char> bytes,
    absl::FunctionRef<bool(Opcode opcode, absl::string_view payload)> on_message) {
  size_t pos = 0;
  while (pos < bytes.size() && state_ != State::kDone) {
    std::optional<FrameError> error;
    bool stop = false;
    if (state_ == State::kHeader) {
      header_[header_size_++] = static_cast<uint8_t>(bytes[pos++]);
      error = OnHeaderByte();
      if (!error && state_ == State::kPayload && payload_length_ == 0) {
        error = OnPayload(bytes.subspan(pos, 0), on_message, &stop);
      }
    } else {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(payload_length_ - payload_received_, bytes.size() - pos));
      error = OnPayload(bytes.subspan(pos, n), on_message, &stop);
      pos += n;
    }
    if (error) {
      Finish();
      return error;
    }
    if (stop) return std::nullopt;
  }
  return std::nullopt;
}

std::optional<FrameError> FrameReader::OnHeaderByte() {
  if (header_size_ == 1) {
    const uint8_t b0 = header_[0];
    if (b0 & 0x70) return ProtocolError("reserved bits set");
    if (!IsKnownOpcode(b0 & 0x0f)) return ProtocolError("unknown opcode");
    opcode_ = static_cast<Opcode>(b0 & 0x0f);
    fin_ = (b0 & 0x80) != 0;
    if (IsControl(opcode_)) {
      if (!fin_) return ProtocolError("fragmented control frame");
    } else if (opcode_ == Opcode::kContinuation) {
      if (!in_message_) return ProtocolError("continuation without a message");
    } else {
      if (in_message_) return ProtocolError("new message inside a fragmented one");
      message_opcode_ = opcode_;
      message_size_ = 0;
      utf8_state_ = websocketpp::utf8_validator::utf8_accept;
    }
    return std::nullopt;
  }
  const uint8_t length7 = header_[1] & 0x7f;
  const uint8_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
  bool length_known = false;
  if (header_size_ == 2) {
    if (!(header_[1] & 0x80)) return ProtocolError("client frames must be masked");
    if (IsControl(opcode_) && length7 > kMaxControlPayload) {
      return ProtocolError("control frame too long");
    }
    if (extended == 0) {
      payload_length_ = length7;
      length_known = true;
    }
  } else if (extended != 0 && header_size_ == 2 + extended) {
    uint64_t length = 0;
    for (int i = 0; i < extended; ++i) length = (length << 8) | header_[2 + i];
    if (extended == 8 && (length >> 63) != 0) {
      return ProtocolError("payload length with the top bit set");
    }
    if (length < (extended == 2 ? 126u : 65536u)) {
      return ProtocolError("payload length not minimally encoded");
    }
    payload_length_ = length;
    length_known = true;
  }
  // Bounds the message from its headers, before any of its payload is kept or even read.
  if (length_known && !IsControl(opcode_)) {
    if (payload_length_ > max_message_bytes_ - message_size_) {
      return FrameError{1009, "message too big"};
    }
    message_size_ += static_cast<size_t>(payload_length_);
  }
  if (header_size_ == 2 + extended + 4) {
    std::memcpy(mask_, header_ + header_size_ - 4, 4);
    header_size_ = 0;
    payload_received_ = 0;
    state_ = State::kPayload;
  }
  return std::nullopt;
}

std::optional<FrameError> FrameReader::OnPayload(
    absl::Span<char> payload,
    absl::FunctionRef<bool(Opcode opcode, absl::string_view payload)> on_message, bool* stop) {
  Unmask(payload.data(), payload.size(), mask_, payload_received_);
  const bool control = IsControl(opcode_);
  if (!control && message_opcode_ == Opcode::kText &&
      !AdvanceUtf8(&utf8_state_, payload.data(), payload.size())) {
    return FrameError{1007, "invalid UTF-8 in a text message"};
  }
  // A control frame or a one-frame message that lies wholly in `payload` goes out as a view of
  // it; anything else is kept until its frame (control) or message (data) is complete.
  const bool in_place = payload_received_ == 0 && payload.size() == payload_length_ &&
                        (control || (fin_ && opcode_ != Opcode::kContinuation));
  if (!in_place) {
    if (control) {
      if (!control_) control_.reset(new char[kMaxControlPayload]);
      std::memcpy(control_.get() + payload_received_, payload.data(), payload.size());
    } else {
      if (payload_received_ == 0) {
        // The frame's announced length is within max_message_bytes_ already, but is only a
        // promise: at most kReserveAhead bytes are reserved ahead of what has arrived (a client
        // that announces a large frame and sends one byte makes the server hold no more), and
        // append grows the buffer geometrically from there, so many pieces stay linear.
        const size_t needed =
            message_.size() + std::min(static_cast<size_t>(payload_length_), kReserveAhead);
        if (message_.capacity() < needed) message_.reserve(needed);
      }
      message_.append(payload.data(), payload.size());
    }
  }
  payload_received_ += payload.size();
  if (payload_received_ < payload_length_) return std::nullopt;
  return OnFrameEnd(in_place ? payload.data() : nullptr, on_message, stop);
}

std::optional<FrameError> FrameReader::OnFrameEnd(
    const char* whole, absl::FunctionRef<bool(Opcode opcode, absl::string_view payload)> on_message,
    bool* stop) {
  state_ = State::kHeader;
  const size_t length = static_cast<size_t>(payload_length_);
  payload_received_ = 0;
  if (IsControl(opcode_)) {
    const absl::string_view payload(whole ? whole : control_.get(), length);
    if (opcode_ == Opcode::kClose) {
      if (length == 1) return ProtocolError("close frame of one byte");
      if (length >= 2) {
        const int code = (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
        if (!IsValidCloseCode(code)) return ProtocolError("invalid close code");
        if (!IsValidUtf8(payload.substr(2))) {
          return FrameError{1007, "invalid UTF-8 in a close reason"};
        }
      }
    }
    const bool go_on = on_message(opcode_, payload);
    control_.reset();
    if (!go_on) {
      Finish();
      *stop = true;
    }
    return std::nullopt;
  }
  if (!fin_) {
    in_message_ = true;
    return std::nullopt;
  }
  if (message_opcode_ == Opcode::kText && utf8_state_ != websocketpp::utf8_validator::utf8_accept) {
    return FrameError{1007, "invalid UTF-8 in a text message"};
  }
  in_message_ = false;
  message_size_ = 0;
  const bool go_on =
      on_message(message_opcode_, whole ? absl::string_view(whole, length) : message_);
  // An idle connection keeps no buffer: the next cut message reserves its own size again.
  std::string().swap(message_);
  if (!go_on) {
    Finish();
    *stop = true;
  }
  return std::nullopt;
}

std::pair<int, std::string> ParseClosePayload(absl::string_view payload) {
  if (payload.size() < 2) return {1005, ""};
  const int code = (static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]);
  return {code, std::string(payload.substr(2))};
}

}  // namespace herald::ws
