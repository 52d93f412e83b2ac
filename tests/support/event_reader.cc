#include "tests/support/event_reader.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "tests/support/herald_process.h"

namespace herald::testing {

EventReader::EventReader(v1::Broker::Stub& stub, const v1::WatchEventsRequest& request) {
  reader_ = stub.WatchEvents(&context_, request);
  reader_->WaitForInitialMetadata();
  thread_ = std::thread([this] {
    v1::Event e;
    while (reader_->Read(&e)) {
      absl::MutexLock lock(&mu_);
      events_.push_back(e);
    }
  });
}

EventReader::~EventReader() {
  context_.TryCancel();
  thread_.join();
}

std::optional<v1::Event> EventReader::WaitFor(v1::EventType type, const std::string& connection_id,
                                              absl::Duration timeout) {
  std::optional<v1::Event> found;
  testing::WaitFor(
      [&] {
        absl::MutexLock lock(&mu_);
        for (const v1::Event& e : events_) {
          if (e.type() == type && (connection_id.empty() || e.connection_id() == connection_id)) {
            found = e;
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

v1::Event EventReader::Expect(v1::EventType type, const std::string& connection_id) {
  std::optional<v1::Event> found = WaitFor(type, connection_id);
  if (found.has_value()) return *std::move(found);
  ADD_FAILURE() << "no event " << v1::EventType_Name(type) << " for " << connection_id;
  return v1::Event();
}

size_t EventReader::Count(v1::EventType type, const std::string& connection_id) {
  absl::MutexLock lock(&mu_);
  return std::count_if(events_.begin(), events_.end(), [&](const v1::Event& e) {
    return e.type() == type && e.connection_id() == connection_id;
  });
}

std::vector<v1::Event> EventReader::OfUser(v1::EventType type, const std::string& user) {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Event> out;
  for (const v1::Event& e : events_) {
    if (e.type() == type && e.user() == user) out.push_back(e);
  }
  return out;
}

std::vector<v1::EventType> EventReader::TypesOfUser(const std::string& user) {
  absl::MutexLock lock(&mu_);
  std::vector<v1::EventType> out;
  for (const v1::Event& e : events_) {
    if (e.user() == user) out.push_back(e.type());
  }
  return out;
}

bool EventReader::WaitForUser(v1::EventType type, const std::string& user, absl::Duration timeout) {
  return testing::WaitFor([&] { return !OfUser(type, user).empty(); }, timeout);
}

}  // namespace herald::testing
