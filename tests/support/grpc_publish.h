#ifndef HERALD_TESTS_SUPPORT_GRPC_PUBLISH_H_
#define HERALD_TESTS_SUPPORT_GRPC_PUBLISH_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "herald/v1/broker.grpc.pb.h"

namespace herald::testing {

// One Broker.Publish call of `json` (the publication's data, as JSON) to `channel`, the way the
// integration tests publish through the control API; a `json` that does not parse fails the test.
grpc::Status Publish(v1::Broker::Stub& stub, const std::string& channel, const std::string& json,
                     v1::PublishResponse* resp);

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_GRPC_PUBLISH_H_
