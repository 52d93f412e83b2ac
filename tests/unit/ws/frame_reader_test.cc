// FrameReader: RFC 6455 client frames read on the server side, cut at any byte.
#include "server/ws/frame_reader.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::ws {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

struct FrameOptions {
  bool fin = true;
  bool masked = true;
  uint8_t rsv = 0;  // the RSV1-3 bits, already in place (0x40, 0x20, 0x10)
  std::array<uint8_t, 4> mask = {0x37, 0xfa, 0x21, 0x3d};
  int length_form = 0;                // 0: the minimal one; else 7, 126 or 127
  std::optional<uint64_t> announced;  // a length other than the payload's
};

// Options other than the defaults, one each (C++17 has no designated initializers).
template <typename Set>
FrameOptions With(Set set) {
  FrameOptions o;
  set(o);
  return o;
}
FrameOptions NotFin() {
  return With([](FrameOptions& o) { o.fin = false; });
}
FrameOptions Unmasked() {
  return With([](FrameOptions& o) { o.masked = false; });
}
FrameOptions Rsv(uint8_t bits) {
  return With([bits](FrameOptions& o) { o.rsv = bits; });
}
FrameOptions Mask(std::array<uint8_t, 4> mask) {
  return With([mask](FrameOptions& o) { o.mask = mask; });
}
FrameOptions LengthForm(int form) {
  return With([form](FrameOptions& o) { o.length_form = form; });
}
FrameOptions Announced(uint64_t length) {
  return With([length](FrameOptions& o) { o.announced = length; });
}

// A client frame: `opcode` (any 4-bit value) around `payload`, masked unless told otherwise.
std::string Frame(uint8_t opcode, absl::string_view payload, FrameOptions o = {}) {
  std::string out;
  out.push_back(static_cast<char>((o.fin ? 0x80 : 0) | o.rsv | opcode));
  const uint64_t length = o.announced.value_or(payload.size());
  int form = o.length_form;
  if (form == 0) form = length < 126 ? 7 : length < 65536 ? 126 : 127;
  const uint8_t mask_bit = o.masked ? 0x80 : 0;
  if (form == 7) {
    out.push_back(static_cast<char>(mask_bit | length));
  } else {
    out.push_back(static_cast<char>(mask_bit | form));
    const int n = form == 126 ? 2 : 8;
    for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<char>(length >> (8 * i)));
  }
  if (o.masked) out.append(reinterpret_cast<const char*>(o.mask.data()), 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(payload[i] ^ (o.masked ? o.mask[i % 4] : 0)));
  }
  return out;
}

std::string Text(absl::string_view payload, FrameOptions o = {}) { return Frame(1, payload, o); }
std::string Close(int code, absl::string_view reason) {
  std::string payload = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  payload.append(reason.data(), reason.size());
  return Frame(8, payload);
}

struct Received {
  std::vector<std::pair<Opcode, std::string>> messages;
  std::optional<FrameError> error;
};

// Feeds `bytes` in pieces of `piece` bytes (0: all at once), each from a buffer of its own.
Received FeedAll(FrameReader& reader, absl::string_view bytes, size_t piece = 0) {
  Received received;
  if (piece == 0) piece = bytes.size();
  for (size_t pos = 0; pos < bytes.size() && !received.error; pos += piece) {
    std::string chunk(bytes.substr(pos, piece));
    received.error = reader.Feed(absl::MakeSpan(chunk), [&](Opcode opcode, absl::string_view p) {
      received.messages.emplace_back(opcode, std::string(p));
      return true;
    });
  }
  return received;
}

Received FeedAll(size_t max, absl::string_view bytes, size_t piece = 0) {
  FrameReader reader(max);
  return FeedAll(reader, bytes, piece);
}

constexpr size_t kMax = 1 << 20;

TEST(FrameReaderTest, ReadsOneTextFrame) {
  FrameReader reader(kMax);
  const Received r = FeedAll(reader, Text("hello"));
  EXPECT_FALSE(r.error);
  EXPECT_THAT(r.messages, ElementsAre(Pair(Opcode::kText, "hello")));
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(FrameReaderTest, DeliversAWholeFrameAsAViewOfTheFedBytes) {
  FrameReader reader(kMax);
  std::string bytes = Frame(2, "payload of one frame") + Frame(9, "ping!");
  int calls = 0;
  EXPECT_FALSE(reader.Feed(absl::MakeSpan(bytes), [&](Opcode, absl::string_view p) {
    ++calls;
    EXPECT_GE(p.data(), bytes.data());
    EXPECT_LE(p.data() + p.size(), bytes.data() + bytes.size());
    return true;
  }));
  EXPECT_EQ(calls, 2);
  // Unmasked in place: the payload now reads in the caller's buffer.
  EXPECT_EQ(absl::string_view(bytes).substr(6, 20), "payload of one frame");
}

TEST(FrameReaderTest, UnmasksFromEveryMaskBytePosition) {
  const std::string payload = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (size_t length = 0; length <= payload.size(); ++length) {
    const std::string frame = Frame(2, payload.substr(0, length), Mask({1, 2, 4, 8}));
    // Cut the payload after each of its first eight bytes, so that a Feed starts at each mask
    // byte position (and past the eight-byte fast path's alignment).
    for (size_t cut = 6; cut <= std::min<size_t>(frame.size(), 14); ++cut) {
      FrameReader reader(kMax);
      std::string first = frame.substr(0, cut), second = frame.substr(cut);
      std::vector<std::string> got;
      auto record = [&](Opcode, absl::string_view p) {
        got.emplace_back(p);
        return true;
      };
      EXPECT_FALSE(reader.Feed(absl::MakeSpan(first), record));
      EXPECT_FALSE(reader.Feed(absl::MakeSpan(second), record));
      EXPECT_THAT(got, ElementsAre(payload.substr(0, length))) << length << " cut at " << cut;
    }
  }
}

TEST(FrameReaderTest, ReadsBytesFedOneAtATime) {
  const std::string big(300, 'x');
  const std::string bytes = Text("héllo") + Frame(2, big) + Text("frag", NotFin()) +
                            Frame(10, "pong") + Frame(0, "ment") + Close(1000, "bye");
  const Received r = FeedAll(kMax, bytes, 1);
  EXPECT_FALSE(r.error);
  EXPECT_THAT(r.messages, ElementsAre(Pair(Opcode::kText, "héllo"), Pair(Opcode::kBinary, big),
                                      Pair(Opcode::kPong, "pong"), Pair(Opcode::kText, "fragment"),
                                      Pair(Opcode::kClose, std::string("\x03\xe8"
                                                                       "bye"))));
}

TEST(FrameReaderTest, ReadsTwoFramesInOneFeed) {
  const Received r = FeedAll(kMax, Text("one") + Frame(2, "two"));
  EXPECT_FALSE(r.error);
  EXPECT_THAT(r.messages, ElementsAre(Pair(Opcode::kText, "one"), Pair(Opcode::kBinary, "two")));
}

TEST(FrameReaderTest, DeliversAPingBetweenFragmentsBeforeTheJoinedMessage) {
  const std::string bytes = Text("Hello, ", NotFin()) + Frame(9, "are you there") +
                            Frame(0, "wor", NotFin()) + Frame(0, "ld");
  for (size_t piece : {0, 1, 3, 7}) {
    FrameReader reader(kMax);
    const Received r = FeedAll(reader, bytes, piece);
    EXPECT_FALSE(r.error);
    EXPECT_THAT(r.messages, ElementsAre(Pair(Opcode::kPing, "are you there"),
                                        Pair(Opcode::kText, "Hello, world")))
        << piece;
    EXPECT_EQ(reader.buffered_bytes(), 0u);
  }
}

TEST(FrameReaderTest, EndsAMessageOnAnEmptyFinalFragment) {
  const Received r = FeedAll(kMax, Frame(2, "abc", NotFin()) + Frame(0, ""));
  EXPECT_FALSE(r.error);
  EXPECT_THAT(r.messages, ElementsAre(Pair(Opcode::kBinary, "abc")));
  EXPECT_THAT(FeedAll(kMax, Text("")).messages, ElementsAre(Pair(Opcode::kText, "")));
}

TEST(FrameReaderTest, ReadsSixteenAndSixtyFourBitLengths) {
  const std::string medium(126, 'm'), large(65536, 'L');
  for (size_t piece : {0, 1000}) {
    const Received r = FeedAll(kMax, Frame(2, medium) + Frame(2, large), piece);
    EXPECT_FALSE(r.error);
    EXPECT_THAT(r.messages,
                ElementsAre(Pair(Opcode::kBinary, medium), Pair(Opcode::kBinary, large)));
  }
}

struct ErrorCase {
  const char* name;
  std::string bytes;
  int close_code;
  const char* reason;
};

std::vector<ErrorCase> ErrorCases() {
  std::vector<ErrorCase> cases = {
      {"rsv1", Text("a", Rsv(0x40)), 1002, "reserved bits set"},
      {"rsv2", Text("a", Rsv(0x20)), 1002, "reserved bits set"},
      {"rsv3", Text("a", Rsv(0x10)), 1002, "reserved bits set"},
      {"unmasked", Text("a", Unmasked()), 1002, "client frames must be masked"},
      {"top_bit", Frame(2, "", Announced(uint64_t{1} << 63)), 1002,
       "payload length with the top bit set"},
      {"126_form_for_125", Frame(2, std::string(125, 'a'), LengthForm(126)), 1002,
       "payload length not minimally encoded"},
      {"127_form_for_65535", Frame(2, std::string(65535, 'a'), LengthForm(127)), 1002,
       "payload length not minimally encoded"},
      {"127_form_for_5", Frame(2, "abcde", LengthForm(127)), 1002,
       "payload length not minimally encoded"},
      {"fragmented_ping", Frame(9, "", NotFin()), 1002, "fragmented control frame"},
      {"fragmented_close", Frame(8, "", NotFin()), 1002, "fragmented control frame"},
      {"ping_of_126", Frame(9, std::string(126, 'p')), 1002, "control frame too long"},
      {"pong_127_form", Frame(10, "", LengthForm(127)), 1002, "control frame too long"},
      {"continuation_first", Frame(0, "a"), 1002, "continuation without a message"},
      {"continuation_after_end", Text("a") + Frame(0, "b"), 1002, "continuation without a message"},
      {"text_inside_fragmented", Text("a", NotFin()) + Text("b"), 1002,
       "new message inside a fragmented one"},
      {"binary_inside_fragmented", Frame(2, "a", NotFin()) + Frame(2, "b"), 1002,
       "new message inside a fragmented one"},
      {"close_of_one_byte", Frame(8, "\x03"), 1002, "close frame of one byte"},
      {"close_reason_not_utf8", Close(1000, "bad \xff"), 1007, "invalid UTF-8 in a close reason"},
      {"text_not_utf8", Text("caf\xc3\x28"), 1007, "invalid UTF-8 in a text message"},
      {"text_ends_inside_a_code_point", Text("caf\xc3"), 1007, "invalid UTF-8 in a text message"},
      {"text_surrogate", Text("\xed\xa0\x80"), 1007, "invalid UTF-8 in a text message"},
      {"text_overlong", Text("\xc0\xaf"), 1007, "invalid UTF-8 in a text message"},
      {"too_big", Frame(2, std::string(101, 'b')), 1009, "message too big"},
  };
  for (int opcode : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    cases.push_back({"reserved_opcode", Frame(opcode, "a"), 1002, "unknown opcode"});
  }
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    cases.push_back({"bad_close_code", Close(code, ""), 1002, "invalid close code"});
  }
  return cases;
}

TEST(FrameReaderTest, RefusesEveryProtocolViolationWithItsCloseCode) {
  for (const ErrorCase& c : ErrorCases()) {
    for (size_t piece : {0, 1}) {
      FrameReader reader(100);
      const Received r = FeedAll(reader, c.bytes, piece);
      ASSERT_TRUE(r.error) << c.name << " piece " << piece;
      EXPECT_EQ(r.error->close_code, c.close_code) << c.name;
      EXPECT_EQ(r.error->reason, c.reason) << c.name;
      EXPECT_EQ(reader.buffered_bytes(), 0u) << c.name;
    }
  }
}

TEST(FrameReaderTest, AcceptsEveryValidCloseCode) {
  for (int code :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
    const Received r = FeedAll(kMax, Close(code, "ok é"));
    EXPECT_FALSE(r.error) << code;
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_THAT(ParseClosePayload(r.messages[0].second), Pair(code, "ok é"));
  }
}

TEST(FrameReaderTest, RefusesAHugeAnnouncedLengthFromTheHeaderAlone) {
  FrameReader reader(kMax);
  // Only the header: the 2^62 bytes never come, and none is waited for or reserved.
  const Received r = FeedAll(reader, Frame(2, "", Announced(uint64_t{1} << 62)));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->close_code, 1009);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(FrameReaderTest, RefusesTooBigBeforeTheMaskArrives) {
  FrameReader reader(10);
  std::string header = Frame(2, std::string(11, 'x')).substr(0, 2);
  const Received r = FeedAll(reader, header);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->close_code, 1009);
}

TEST(FrameReaderTest, AcceptsExactlyMaxMessageBytesAlsoAcrossFragments) {
  const std::string ten(10, 't');
  EXPECT_THAT(FeedAll(10, Text(ten)).messages, ElementsAre(Pair(Opcode::kText, ten)));
  EXPECT_EQ(FeedAll(10, Text(ten + "!")).error->close_code, 1009);
  const std::string fragmented =
      Text("12345", NotFin()) + Frame(9, std::string(125, 'p')) + Frame(0, "6789", NotFin());
  EXPECT_THAT(
      FeedAll(10, fragmented + Frame(0, "0")).messages,
      ElementsAre(Pair(Opcode::kPing, std::string(125, 'p')), Pair(Opcode::kText, "1234567890")));
  const Received over = FeedAll(10, fragmented + Frame(0, "01"), 1);
  ASSERT_TRUE(over.error);
  EXPECT_EQ(over.error->close_code, 1009);
  EXPECT_EQ(over.messages.size(), 1u);  // the ping only
}

TEST(FrameReaderTest, RefusesInvalidUtf8SplitAcrossFragmentsAsSoonAsItArrives) {
  // "é" is C3 A9; C3 28 is not UTF-8. The first fragment alone is still a valid prefix.
  FrameReader reader(kMax);
  EXPECT_FALSE(FeedAll(reader, Text("caf\xc3", NotFin())).error);
  const Received r = FeedAll(reader, Frame(0, "\x28 more", NotFin()));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->close_code, 1007);
  // A first fragment that is invalid already fails before the message ends.
  EXPECT_EQ(FeedAll(kMax, Text("\xff", NotFin())).error->close_code, 1007);
  // Binary messages are not UTF-8.
  EXPECT_FALSE(FeedAll(kMax, Frame(2, "\xff\xc3")).error);
}

TEST(FrameReaderTest, AcceptsACodePointSplitAcrossFeedsAndFragments) {
  const std::string frame = Text("caf\xc3\xa9");
  // Cut between the two bytes of "é".
  FrameReader reader(kMax);
  Received r = FeedAll(reader, frame.substr(0, frame.size() - 1));
  EXPECT_FALSE(r.error);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(reader.buffered_bytes(), 4u);
  r = FeedAll(reader, frame.substr(frame.size() - 1));
  EXPECT_FALSE(r.error);
  EXPECT_THAT(r.messages, ElementsAre(Pair(Opcode::kText, "café")));
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  EXPECT_THAT(FeedAll(kMax, Text("caf\xc3", NotFin()) + Frame(0, "\xa9")).messages,
              ElementsAre(Pair(Opcode::kText, "café")));
}

TEST(FrameReaderTest, StopsWhenOnMessageReturnsFalse) {
  FrameReader reader(kMax);
  std::string bytes = Text("a") + Close(1000, "") + Text("after the close");
  std::vector<Opcode> got;
  auto record = [&](Opcode opcode, absl::string_view) {
    got.push_back(opcode);
    return opcode != Opcode::kClose;
  };
  EXPECT_FALSE(reader.Feed(absl::MakeSpan(bytes), record));
  EXPECT_THAT(got, ElementsAre(Opcode::kText, Opcode::kClose));
  // The rest was not even unmasked, and later bytes are ignored.
  EXPECT_EQ(bytes.substr(bytes.size() - 15), Text("after the close").substr(6));
  std::string later = Text("later");
  EXPECT_FALSE(reader.Feed(absl::MakeSpan(later), record));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(FrameReaderTest, ParsesClosePayloads) {
  EXPECT_THAT(ParseClosePayload(""), Pair(1005, ""));
  EXPECT_THAT(ParseClosePayload("\x03\xe8"), Pair(1000, ""));
  EXPECT_THAT(ParseClosePayload("\x0f\xa0going away"), Pair(4000, "going away"));
}

TEST(FrameReaderTest, HoldsBytesOnlyWhileAFrameOrMessageIsIncomplete) {
  FrameReader reader(kMax);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  const std::string frame = Frame(2, std::string(1000, 'b'));
  FeedAll(reader, frame.substr(0, 3));
  EXPECT_EQ(reader.buffered_bytes(), 3u);  // part of the header
  FeedAll(reader, frame.substr(3, 500));
  EXPECT_EQ(reader.buffered_bytes(), 500u - 5);  // payload so far; the header is consumed
  FeedAll(reader, frame.substr(503));
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  FeedAll(reader, Frame(2, "frag", NotFin()));
  EXPECT_EQ(reader.buffered_bytes(), 4u);
  FeedAll(reader, Frame(9, "ping").substr(0, 8));
  EXPECT_EQ(reader.buffered_bytes(), 4u + 2);
  FeedAll(reader, Frame(9, "ping").substr(8) + Frame(0, "ment"));
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(FrameReaderTest, IsSmall) {
  // One per connection; the buffers are on the heap only while a message is incomplete.
  EXPECT_LE(sizeof(FrameReader), 112u);
}

}  // namespace
}  // namespace herald::ws
