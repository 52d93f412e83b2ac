#ifndef HERALD_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define HERALD_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "herald/v1/client.pb.h"
#include "server/core/mutex.h"
#include "server/core/protocol.h"
#include "server/core/session.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/support/string_frame.h"

// The fuzz targets' hub fixture: a socket-free session like the unit tests' FakeSession
// (tests/unit/core/fake_session.h, which needs GoogleTest); frames from tests/support.
namespace herald::fuzz {

using herald::testing::StringFrame;
using herald::testing::StringFrameFactory;

// A session without a socket that records what it is sent. Thread-safe.
class FuzzSession : public core::Session {
 public:
  FuzzSession(std::string id, std::string user)
      : core::Session(core::ConnectionMeta{std::move(id), "10.0.0.1:5000", "https://shop.test",
                                           "fuzz/1.0", std::move(user), FuzzNow(), 0}) {}

  void Close(int code, absl::string_view reason) override {
    core::MutexLock lock(&mu_);
    if (close_code_ == 0) close_code_ = code;
  }
  size_t BufferedBytes() const override { return 0; }
  void ScheduleAuthDeadline(absl::Time) override {}

  std::vector<std::string> Frames() const {
    core::MutexLock lock(&mu_);
    return frames_;
  }
  int close_code() const {
    core::MutexLock lock(&mu_);
    return close_code_;
  }

 protected:
  bool DoSend(const core::OutFramePtr& frame) override {
    core::MutexLock lock(&mu_);
    if (close_code_ != 0) return false;
    frames_.emplace_back(frame->payload());
    return true;
  }

 private:
  mutable core::Mutex mu_;
  std::vector<std::string> frames_ ABSL_GUARDED_BY(mu_);
  int close_code_ ABSL_GUARDED_BY(mu_) = 0;
};

// Every frame Herald sends a client must be a well-formed herald.v1.ServerFrame in JSON.
inline void CheckServerFrames(const FuzzSession& session) {
  for (const std::string& text : session.Frames()) {
    v1::ServerFrame frame;
    absl::Status st = core::FromJson(text, &frame, 64);
    Check(st.ok(), "server sent a frame that is not a herald.v1.ServerFrame: " + text + ": " +
                       std::string(st.message()));
  }
}

}  // namespace herald::fuzz

#endif  // HERALD_TESTS_FUZZ_FUZZ_SUPPORT_H_
