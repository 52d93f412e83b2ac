// rpc::ReadPlainPublish / WritePlainPublishResponse: the same result as protobuf's JSON mapping
// for the shapes they take, and no result for any other.
#include "server/rpc/publish_json.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/core/protocol.h"

namespace herald::rpc {
namespace {

namespace pb = google::protobuf;

bool Read(const std::string& body, v1::PublishRequest* req) {
  json::JsonTopLevel top;
  EXPECT_TRUE(json::CheckJson(body, 32, &top).ok()) << body;
  return ReadPlainPublish(body, top, req);
}

TEST(PublishJsonTest, ReadsPlainBodiesAsTheGeneralWayWould) {
  for (const char* body : {R"({"channel":"news","data":{"a":[1,2]}})",
                           R"( { "data" : "x" , "channel" : "a:b.c@d/e=f-g_1" } )",
                           R"({"channel":"n","data":null})"}) {
    SCOPED_TRACE(body);
    v1::PublishRequest fast;
    ASSERT_TRUE(Read(body, &fast));
    v1::PublishRequest general;
    ASSERT_TRUE(pb::util::JsonStringToMessage(body, &general).ok());
    EXPECT_EQ(fast.channel(), general.channel());
    // The same data: its text, and the Value protobuf built from the body.
    pb::Value data;
    ASSERT_TRUE(pb::util::JsonStringToMessage(fast.data_json(), &data).ok()) << fast.data_json();
    EXPECT_TRUE(pb::util::MessageDifferencer::Equals(data, general.data()));
    EXPECT_FALSE(fast.has_data());
  }
}

TEST(PublishJsonTest, LeavesEveryOtherShapeToTheGeneralWay) {
  for (const char* body : {
           R"({"channel":"news"})",                                // no data
           R"({"data":1})",                                        // no channel
           R"({"channel":"news","data":1,"idempotencyKey":"k"})",  // a third field
           R"({"channel":"n\u0065ws","data":1})",                  // an escape in the channel
           R"({"channel":7,"data":1})",                            // not a string
           R"({"channel":"news","channel":"x"})",                  // a key twice
           R"({"channel":"news","dataJson":"1"})",                 // the other form
           R"(["channel","data"])",                                // not an object
       }) {
    SCOPED_TRACE(body);
    v1::PublishRequest req;
    EXPECT_FALSE(Read(body, &req));
    EXPECT_EQ(req.ByteSizeLong(), 0u);
  }
}

TEST(PublishJsonTest, WritesWhatProtobufPrints) {
  v1::PublishResponse resp;
  resp.mutable_delivery()->set_channel("store:42/a.b@c=d-e_f");
  resp.mutable_delivery()->set_epoch("cc9c5c1d0");
  for (uint64_t offset : {0ull, 1ull, 18446744073709551615ull}) {
    for (uint32_t queued : {0u, 7u, 4294967295u}) {
      for (bool duplicate : {false, true}) {
        resp.mutable_delivery()->set_offset(offset);
        resp.mutable_delivery()->set_queued(queued);
        resp.set_duplicate(duplicate);
        std::string fast, general;
        ASSERT_TRUE(WritePlainPublishResponse(resp, &fast));
        ASSERT_TRUE(core::ToJson(resp, &general, /*print_defaults=*/true).ok());
        EXPECT_EQ(fast, general);
      }
    }
  }
}

TEST(PublishJsonTest, LeavesAcksAndOddStringsToProtobuf) {
  std::string out = "untouched";
  v1::PublishResponse resp;
  EXPECT_FALSE(WritePlainPublishResponse(resp, &out));  // no delivery
  resp.mutable_delivery()->set_channel("news");
  resp.mutable_ack()->set_acked(true);
  EXPECT_FALSE(WritePlainPublishResponse(resp, &out));
  resp.clear_ack();
  resp.mutable_delivery()->set_channel("a\"b");
  EXPECT_FALSE(WritePlainPublishResponse(resp, &out));
  resp.mutable_delivery()->set_channel("news");
  resp.mutable_delivery()->set_epoch("<e>");
  EXPECT_FALSE(WritePlainPublishResponse(resp, &out));
  EXPECT_EQ(out, "untouched");
}

}  // namespace
}  // namespace herald::rpc
