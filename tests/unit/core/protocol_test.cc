// Frame encoders written without protobuf's JSON printer print what it prints.
#include "server/core/protocol.h"

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

}  // namespace
}  // namespace herald::core
