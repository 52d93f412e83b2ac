#include "tests/support/grpc_publish.h"

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace herald::testing {

grpc::Status Publish(v1::Broker::Stub& stub, const std::string& channel, const std::string& json,
                     v1::PublishResponse* resp) {
  grpc::ClientContext ctx;
  v1::PublishRequest req;
  req.set_channel(channel);
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, req.mutable_data()).ok());
  return stub.Publish(&ctx, req, resp);
}

}  // namespace herald::testing
