#ifndef HERALD_TESTS_UNIT_CORE_FAKE_SESSION_H_
#define HERALD_TESTS_UNIT_CORE_FAKE_SESSION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "herald/v1/client.pb.h"
#include "server/core/mutex.h"
#include "server/core/protocol.h"
#include "server/core/session.h"
#include "tests/support/string_frame.h"

namespace herald::testing {

// A session without a socket: records what it is sent and how it was closed. Thread-safe.
class FakeSession : public core::Session {
 public:
  explicit FakeSession(std::string id, std::string user = "", std::string remote = "10.0.0.1:5000",
                       uint32_t loop = 0)
      : core::Session(core::ConnectionMeta{std::move(id), std::move(remote), "https://shop.test",
                                           "fake/1.0", std::move(user), absl::Now(), loop}) {}

  void Close(int code, absl::string_view reason) override {
    core::MutexLock lock(&mu_);
    if (close_code_ == 0) {
      close_code_ = code;
      close_reason_ = std::string(reason);
    }
  }
  size_t BufferedBytes() const override { return 7; }
  // Records the request; tests call ClientProtocol::CheckAuthDeadline (TestHub) themselves.
  void ScheduleAuthDeadline(absl::Time deadline) override {
    core::MutexLock lock(&mu_);
    auth_deadline_ = deadline;
  }
  absl::Time auth_deadline() const {
    core::MutexLock lock(&mu_);
    return auth_deadline_;
  }

  std::vector<std::string> Frames() const {
    core::MutexLock lock(&mu_);
    return frames_;
  }
  // Every received frame parsed as a ServerFrame (the test fails on a frame that does not parse).
  std::vector<v1::ServerFrame> Parsed() const;
  // Frames of one kind.
  std::vector<v1::ServerFrame> OfKind(v1::ServerFrame::KindCase kind) const {
    std::vector<v1::ServerFrame> out;
    for (auto& f : Parsed()) {
      if (f.kind_case() == kind) out.push_back(f);
    }
    return out;
  }
  v1::ServerFrame Last() const { return Parsed().back(); }
  int close_code() const {
    core::MutexLock lock(&mu_);
    return close_code_;
  }
  std::string close_reason() const {
    core::MutexLock lock(&mu_);
    return close_reason_;
  }
  void set_refuse(bool refuse) {
    core::MutexLock lock(&mu_);
    refuse_ = refuse;
  }

 protected:
  bool DoSend(const core::OutFramePtr& frame) override {
    core::MutexLock lock(&mu_);
    if (refuse_ || close_code_ != 0) return false;
    frames_.emplace_back(frame->payload());
    return true;
  }

 private:
  mutable core::Mutex mu_;
  std::vector<std::string> frames_ ABSL_GUARDED_BY(mu_);
  int close_code_ ABSL_GUARDED_BY(mu_) = 0;
  std::string close_reason_ ABSL_GUARDED_BY(mu_);
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time auth_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

inline std::vector<v1::ServerFrame> FakeSession::Parsed() const {
  std::vector<v1::ServerFrame> out;
  for (const std::string& text : Frames()) {
    v1::ServerFrame f;
    absl::Status st = core::FromJson(text, &f, 64);
    if (!st.ok()) {
      ADD_FAILURE() << "frame is not a herald.v1.ServerFrame: " << text << ": " << st;
      continue;
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_UNIT_CORE_FAKE_SESSION_H_
