// PublishStream (client-streaming publish) against the real herald process.
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

using ::testing::StartsWith;

v1::PublishStreamRequest PublishReq(const std::string& channel, const std::string& json) {
  v1::PublishStreamRequest r;
  r.mutable_publish()->set_channel(channel);
  EXPECT_TRUE(
      google::protobuf::util::JsonStringToMessage(json, r.mutable_publish()->mutable_data()).ok());
  return r;
}

v1::PublishStreamRequest OrderReq(const std::string& id, uint64_t version) {
  v1::PublishStreamRequest r;
  v1::Order* o = r.mutable_order()->mutable_order();
  o->set_id(id);
  o->set_version(version);
  o->set_store_id("42");
  o->set_status(v1::ORDER_STATUS_ACCEPTED);
  return r;
}

// Writes `requests` on one PublishStream call and returns its status (and summary).
grpc::Status Stream(v1::Broker::Stub& stub, const std::vector<v1::PublishStreamRequest>& requests,
                    v1::PublishStreamSummary* summary, const std::string& key = "") {
  grpc::ClientContext ctx;
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  auto writer = stub.PublishStream(&ctx, summary);
  for (const auto& r : requests) {
    if (!writer->Write(r)) break;  // the server ended the call early
  }
  writer->WritesDone();
  return writer->Finish();
}

std::string DataText(const v1::ServerFrame& f) {
  return f.pub().data().struct_value().fields().at("n").string_value();
}

TEST(PublishStreamTest, PublishesEveryRequestInOrder) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  WsClient news, orders;
  ASSERT_TRUE(news.Connect(herald.ws_url()));
  ASSERT_TRUE(orders.Connect(herald.ws_url()));
  ASSERT_TRUE(news.Subscribe("news"));
  ASSERT_TRUE(orders.Subscribe("store:42"));
  auto stub = herald.Stub();
  v1::PublishStreamSummary summary;
  grpc::Status st = Stream(*stub,
                           {PublishReq("news", R"({"n":"a"})"), PublishReq("news", R"({"n":"b"})"),
                            OrderReq("o-1", 2), PublishReq("news", R"({"n":"c"})"),
                            OrderReq("o-1", 1), PublishReq("empty-channel", R"({"n":"d"})")},
                           &summary);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(summary.publications(), 4u);
  EXPECT_EQ(summary.orders_applied(), 1u);
  EXPECT_EQ(summary.orders_stale(), 1u);  // version 1 after version 2
  EXPECT_EQ(summary.queued(), 4u);        // 3 to `news`, 1 order to `store:42`

  news.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && DataText(f) == "c"; },
                 "third publication");
  auto pubs = news.Publications();
  ASSERT_EQ(pubs.size(), 3u);
  EXPECT_EQ(DataText(pubs[0]), "a");
  EXPECT_EQ(DataText(pubs[1]), "b");
  EXPECT_EQ(DataText(pubs[2]), "c");
  EXPECT_EQ(pubs[0].pub().offset() + 1, pubs[1].pub().offset());
  EXPECT_EQ(pubs[1].pub().offset() + 1, pubs[2].pub().offset());
  v1::ServerFrame order =
      orders.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "order");
  EXPECT_EQ(order.pub().data().struct_value().fields().at("version").string_value(), "2");
}

TEST(PublishStreamTest, FirstInvalidRequestEndsTheCallAndNamesIt) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  WsClient news;
  ASSERT_TRUE(news.Connect(herald.ws_url()));
  ASSERT_TRUE(news.Subscribe("news"));
  auto stub = herald.Stub();
  v1::PublishStreamSummary summary;
  grpc::Status st =
      Stream(*stub,
             {PublishReq("news", R"({"n":"ok"})"), PublishReq("bad channel", R"({"n":"x"})"),
              PublishReq("news", R"({"n":"after"})")},
             &summary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("requests[1].publish.channel:"));
  // The request before the bad one stays published; the one after it is not.
  news.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub(); }, "first publication");
  v1::PublishResponse marker_resp;
  {
    grpc::ClientContext ctx;
    v1::PublishRequest marker = PublishReq("news", R"({"n":"marker"})").publish();
    ASSERT_TRUE(stub->Publish(&ctx, marker, &marker_resp).ok());
  }
  news.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && DataText(f) == "marker"; },
                 "marker");
  auto pubs = news.Publications();
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_EQ(DataText(pubs[0]), "ok");

  st = Stream(*stub, {v1::PublishStreamRequest()}, &summary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("requests[0]: empty request"));

  v1::PublishStreamRequest no_store = OrderReq("o-9", 1);
  no_store.mutable_order()->mutable_order()->clear_store_id();
  st = Stream(*stub, {OrderReq("o-8", 1), no_store}, &summary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("requests[1].order.order.store_id:"));
}

TEST(PublishStreamTest, BatchesApplyInOrderAndErrorsNameTheInnerRequest) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  WsClient news;
  ASSERT_TRUE(news.Connect(herald.ws_url()));
  ASSERT_TRUE(news.Subscribe("news"));
  auto stub = herald.Stub();
  v1::PublishStreamRequest batch;
  for (const char* n : {"a", "b", "c"}) {
    *batch.mutable_batch()->add_requests() =
        PublishReq("news", absl::StrCat(R"({"n":")", n, "\"}"));
  }
  *batch.mutable_batch()->add_requests() = OrderReq("o-1", 1);
  v1::PublishStreamSummary summary;
  grpc::Status st = Stream(*stub, {PublishReq("news", R"({"n":"first"})"), batch}, &summary);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(summary.publications(), 4u);
  EXPECT_EQ(summary.orders_applied(), 1u);
  news.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && DataText(f) == "c"; },
                 "last publication of the batch");
  auto pubs = news.Publications();
  ASSERT_EQ(pubs.size(), 4u);
  EXPECT_EQ(DataText(pubs[0]), "first");
  EXPECT_EQ(DataText(pubs[1]), "a");
  EXPECT_EQ(DataText(pubs[3]), "c");
  EXPECT_LT(pubs[1].pub().offset(), pubs[3].pub().offset());

  // A bad request inside a batch is named by both indexes; the batch's earlier requests stand.
  v1::PublishStreamRequest bad;
  *bad.mutable_batch()->add_requests() = PublishReq("news", R"({"n":"kept"})");
  *bad.mutable_batch()->add_requests() = PublishReq("bad channel!", R"({"n":"x"})");
  st = Stream(*stub, {PublishReq("news", R"({"n":"0"})"), bad}, &summary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("requests[1].batch.requests[1].publish.channel:"));
  news.WaitFrame([](const v1::ServerFrame& f) { return f.has_pub() && DataText(f) == "kept"; },
                 "the batch's first request");

  v1::PublishStreamRequest nested;
  *nested.mutable_batch()->add_requests()->mutable_batch() = v1::PublishBatch();
  st = Stream(*stub, {nested}, &summary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("requests[0].batch.requests[0]: batches do not nest"));
}

TEST(PublishStreamTest, NeedsTheApiKeyWhenOneIsConfigured) {
  HeraldProcess herald({"--api-key", "s3cret"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  v1::PublishStreamSummary summary;
  grpc::Status st = Stream(*stub, {PublishReq("news", "1")}, &summary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  st = Stream(*stub, {PublishReq("news", "1")}, &summary, "s3cret");
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(summary.publications(), 1u);
}

}  // namespace
}  // namespace herald::testing
