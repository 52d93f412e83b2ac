// core::EncodeWelcome: byte for byte what the protobuf JSON mapping prints for the frame.
#include <string>

#include "gtest/gtest.h"
#include "server/core/protocol.h"

namespace herald::core {
namespace {

std::string ViaProtobuf(const v1::Welcome& welcome) {
  v1::ServerFrame frame;
  *frame.mutable_welcome() = welcome;
  return EncodeFrame(frame);
}

TEST(EncodeWelcomeTest, SameBytesAsTheProtobufMapping) {
  v1::Welcome w;
  EXPECT_EQ(EncodeWelcome(w), ViaProtobuf(w));  // every field at its zero value
  w.set_connection_id("n1-00000001");
  w.set_node("n1");
  w.set_ping_interval_ms(25000);
  w.set_max_frame_bytes(65536);
  w.set_max_subscriptions(100);
  EXPECT_EQ(EncodeWelcome(w), ViaProtobuf(w));
  EXPECT_EQ(EncodeWelcome(w),
            R"({"welcome":{"connectionId":"n1-00000001","node":"n1","pingIntervalMs":25000,)"
            R"("maxFrameBytes":65536,"maxSubscriptions":100}})");
  w.set_ping_interval_ms(0);  // omitted, as the mapping omits zeros
  w.set_max_subscriptions(4294967295u);
  EXPECT_EQ(EncodeWelcome(w), ViaProtobuf(w));
  w.clear_connection_id();
  EXPECT_EQ(EncodeWelcome(w), ViaProtobuf(w));
  w.set_node("eu.west-1:a@b/c=d_e");
  EXPECT_EQ(EncodeWelcome(w), ViaProtobuf(w));
}

TEST(EncodeWelcomeTest, NamesThatNeedEscapingGoThroughProtobuf) {
  v1::Welcome w;
  w.set_connection_id("x\"y");
  w.set_node("n\\ode <é>");
  w.set_max_frame_bytes(1);
  EXPECT_EQ(EncodeWelcome(w), ViaProtobuf(w));
}

}  // namespace
}  // namespace herald::core
