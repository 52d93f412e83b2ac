// `data_json`: a publication's data given as JSON text reaches subscribers byte for byte, is
// checked like any untrusted JSON (bounded before it is read), and excludes `data`.
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/protocol.h"
#include "server/engine/memory_engine.h"
#include "tests/support/string_frame.h"
#include "tests/support/test_hub.h"
#include "tests/unit/core/fake_session.h"

namespace herald::core {
namespace {

using ::herald::testing::FakeSession;
using ::herald::testing::StringFrameFactory;
using ::herald::testing::TestHub;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Kind = v1::ServerFrame::KindCase;

class RawDataTest : public ::testing::Test {
 protected:
  RawDataTest() : engine_(MakeLimits()), hub_(MakeLimits(), "n1", &engine_, &frames_) {}

  static Limits MakeLimits() {
    Limits l;
    l.max_json_depth = 4;
    l.max_publication_bytes = 64;
    return l;
  }

  std::shared_ptr<FakeSession> Subscriber(const std::string& channel,
                                          const std::string& user = "") {
    auto s = std::make_shared<FakeSession>(hub_.NextConnectionId(), user);
    EXPECT_TRUE(hub_.Register(s).ok());
    hub_.OnClientFrame(s, R"({"id":9,"subscribe":{"channel":")" + channel + R"("}})");
    EXPECT_EQ(s->Last().kind_case(), Kind::kSubscribed);
    return s;
  }

  engine::MemoryEngine engine_;
  StringFrameFactory frames_;
  TestHub hub_;
};

TEST_F(RawDataTest, PublishCarriesTheTextByteForByte) {
  auto a = Subscriber("x");
  v1::PublishRequest req;
  req.set_channel("x");
  // Digits a double cannot hold, a key order, spacing and escapes a Value tree would not keep.
  const std::string data = R"({"z": 12345678901234567890, "a":[1.50,"\u00e9"]})";
  req.set_data_json(" \n" + data + "\t ");
  auto r = hub_.Publish(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->delivery().queued(), 1u);
  EXPECT_EQ(a->Frames().back(), R"({"pub":{"channel":"x","offset":"1","data":)" + data + "}}");
}

TEST_F(RawDataTest, BroadcastAndPushesCarryTheTextByteForByte) {
  auto a = Subscriber("x", "u-1");
  v1::BroadcastRequest broadcast;
  broadcast.add_channels("x");
  broadcast.set_data_json(R"([1, 2.0])");
  ASSERT_TRUE(hub_.Broadcast(broadcast).ok());
  EXPECT_EQ(a->Frames().back(), R"({"pub":{"channel":"x","offset":"1","data":[1, 2.0]}})");
  v1::SendToUserRequest to_user;
  to_user.set_user("u-1");
  to_user.set_data_json(R"({"n":1e3})");
  ASSERT_TRUE(hub_.SendToUser(to_user).ok());
  EXPECT_EQ(a->Frames().back(), R"({"push":{"data":{"n":1e3}}})");
  v1::SendToConnectionRequest to_conn;
  to_conn.set_connection_id(a->id());
  to_conn.set_data_json("true");
  ASSERT_TRUE(hub_.SendToConnection(to_conn).ok());
  EXPECT_EQ(a->Frames().back(), R"({"push":{"data":true}})");
}

TEST_F(RawDataTest, HistoryReadsTheTextBack) {
  v1::PublishRequest req;
  req.set_channel("h");
  req.set_data_json(R"({"k":"v"})");
  ASSERT_TRUE(hub_.Publish(req).ok());
  v1::HistoryRequest history;
  history.set_channel("h");
  auto r = hub_.History(history);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->publications_size(), 1);
  EXPECT_EQ(r->publications(0).data().struct_value().fields().at("k").string_value(), "v");
}

TEST_F(RawDataTest, BadTextIsRefusedWithItsFieldAndNothingIsPublished) {
  auto a = Subscriber("x");
  const size_t frames_before = a->Frames().size();
  struct Case {
    std::string json;
    std::string message;
  };
  const Case cases[] = {
      {R"({"a":)", "data_json: not valid JSON: "},
      {R"({"a":1} x)", "data_json: not valid JSON: "},
      {"NaN", "data_json: not valid JSON: "},
      {"\"\xff\"", "data_json: not valid JSON: "},
      {"[[[[[1]]]]]", "data_json: not valid JSON: nested deeper than 4 levels"},
      {"   ", "data_json: not valid JSON: "},
      // Over max_publication_bytes: refused by its size, before it is read (it is not even
      // valid JSON, which would be another error).
      {std::string(65, '['), "data_json: larger than 64 bytes"},
  };
  for (const Case& c : cases) {
    v1::PublishRequest req;
    req.set_channel("x");
    req.set_data_json(c.json);
    auto r = hub_.Publish(req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(std::string(r.status().message()), StartsWith(c.message)) << c.json;
  }
  v1::PublishRequest both;
  both.set_channel("x");
  both.set_data_json("1");
  both.mutable_data()->set_number_value(1);
  EXPECT_THAT(std::string(hub_.Publish(both).status().message()),
              HasSubstr("data_json: set data or data_json, not both"));
  v1::PublishRequest neither;
  neither.set_channel("x");
  EXPECT_EQ(hub_.Publish(neither).status().message(), "data: required");
  v1::SendToUserRequest push;
  push.set_user("u");
  push.set_data_json("{");
  EXPECT_THAT(std::string(hub_.SendToUser(push).status().message()),
              StartsWith("data_json: not valid JSON"));
  EXPECT_EQ(a->Frames().size(), frames_before);
}

}  // namespace
}  // namespace herald::core
