#ifndef HERALD_TESTS_SUPPORT_EVENT_READER_H_
#define HERALD_TESTS_SUPPORT_EVENT_READER_H_

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "herald/v1/broker.grpc.pb.h"

namespace herald::testing {

// Follows one WatchEvents stream and keeps every event it brings, from the moment the server
// attached the watcher (its initial metadata, awaited in the constructor, so no later event is
// missed) until destruction (which cancels the call). Owns the call and its reading thread; every
// method may be called from any thread.
class EventReader {
 public:
  explicit EventReader(v1::Broker::Stub& stub,
                       const v1::WatchEventsRequest& request = v1::WatchEventsRequest());
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // The first event of `type` about `connection_id` (any connection when empty), waiting for it
  // up to `timeout`; nullopt when none came.
  std::optional<v1::Event> WaitFor(v1::EventType type, const std::string& connection_id,
                                   absl::Duration timeout = absl::Seconds(10));
  // As WaitFor, failing the test when none came (then an empty event).
  v1::Event Expect(v1::EventType type, const std::string& connection_id);
  // How many events of `type` about `connection_id` came so far.
  size_t Count(v1::EventType type, const std::string& connection_id);
  // The events of `type` about `user` so far, and a bounded wait for the first of them.
  std::vector<v1::Event> OfUser(v1::EventType type, const std::string& user);
  bool WaitForUser(v1::EventType type, const std::string& user,
                   absl::Duration timeout = absl::Seconds(10));
  // The types of the events about `user` so far, in the order they came.
  std::vector<v1::EventType> TypesOfUser(const std::string& user);

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_EVENT_READER_H_
