#ifndef HERALD_TESTS_SUPPORT_STRING_FRAME_H_
#define HERALD_TESTS_SUPPORT_STRING_FRAME_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "server/core/session.h"

namespace herald::testing {

// A frame that is just its JSON text, for socket-free sessions (unit tests, fuzz targets).
// Immutable once made.
class StringFrame : public core::OutFrame {
 public:
  explicit StringFrame(std::string payload) : payload_(std::move(payload)) {}
  absl::string_view payload() const override { return payload_; }

 private:
  std::string payload_;
};

// Makes StringFrames. Stateless, thread-safe.
class StringFrameFactory : public core::FrameFactory {
 public:
  core::OutFramePtr Make(std::string payload, std::string conflation_key = "") const override {
    auto frame = std::make_shared<StringFrame>(std::move(payload));
    frame->set_conflation_key(std::move(conflation_key));
    return frame;
  }
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_STRING_FRAME_H_
