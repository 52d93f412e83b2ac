// Frame encoders written without protobuf's JSON printer print what it prints.
#include "server/core/protocol.h"
#include "absl/strings/str_cat.h"
#include "server/core/welcome_frames.h"

#include <string>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace herald::core {
namespace {

void ExpectSameJson(const std::string& ours, const std::string& theirs) {
  rapidjson::Document a, b;
  ASSERT_FALSE(a.Parse(ours.c_str(), ours.size()).HasParseError()) << ours;
  ASSERT_FALSE(b.Parse(theirs.c_str(), theirs.size()).HasParseError()) << theirs;
  EXPECT_TRUE(a == b) << "ours:     " << ours << "\nprotobuf: " << theirs;
}

TEST(EncodeWelcome, PrintsWhatEncodeFramePrints) {
  v1::ServerFrame frame;
  v1::Welcome* w = frame.mutable_welcome();
  w->set_connection_id("n1-00000000002a");
  w->set_node("n1");
  w->set_ping_interval_ms(25000);
  w->set_max_frame_bytes(65536);
  w->set_max_subscriptions(128);
  EXPECT_EQ(EncodeWelcome(*w), EncodeFrame(frame));
  w->set_connect_required(true);
  EXPECT_EQ(EncodeWelcome(*w), EncodeFrame(frame));
}

TEST(EncodeWelcome, EscapesNodeNamesAndLeavesOutZeros) {
  for (const char* node : {"", "a\"b", "back\\slash", "tab\there", "é日本", "\x01"}) {
    v1::ServerFrame frame;
    v1::Welcome* w = frame.mutable_welcome();
    w->set_node(node);
    w->set_connection_id(std::string(node) + "-1");
    w->set_max_frame_bytes(4294967295u);
    ExpectSameJson(EncodeWelcome(*w), EncodeFrame(frame));
  }
  v1::ServerFrame empty;
  empty.mutable_welcome();
  EXPECT_EQ(EncodeWelcome(v1::Welcome()), EncodeFrame(empty));
}

// The frames a handshake splices its id into are EncodeWelcome's, byte for byte, whatever the
// node's name and the id hold (one that needs escaping is encoded whole).
TEST(WelcomeFrames, SpliceTheIdIntoWhatEncodeWelcomePrints) {
  for (const char* node : {"n1", "", "a\"b", "back\\slash", "tab\there", "é日本", "\x01"}) {
    v1::Welcome node_part;
    node_part.set_node(node);
    node_part.set_ping_interval_ms(25000);
    node_part.set_max_frame_bytes(65536);
    node_part.set_max_subscriptions(128);
    const WelcomeFrames frames(node_part);
    for (const std::string id : {absl::StrCat(node, "-0000002a"), std::string("plain-1"),
                                 std::string("quo\"te"), std::string("ctl\x1f"), std::string()}) {
      for (const bool connect_required : {false, true}) {
        v1::Welcome w = node_part;
        w.set_connection_id(id);
        w.set_connect_required(connect_required);
        EXPECT_EQ(frames.Encode(id, connect_required), EncodeWelcome(w))
            << "node " << node << " id " << id;
      }
    }
  }
}

}  // namespace
}  // namespace herald::core
