#ifndef HERALD_TESTS_SUPPORT_RAW_WS_H_
#define HERALD_TESTS_SUPPORT_RAW_WS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace herald::testing {

// A minimal blocking WebSocket client over a plain TCP socket, for tests that need control a
// library client does not give: it reads only when asked, so a test can play a consumer that
// stops reading. Not thread-safe.
class RawWsClient {
 public:
  ~RawWsClient();
  // TCP connect + upgrade handshake on /ws; false on failure. A small receive buffer keeps the
  // kernel from absorbing megabytes on the test's behalf.
  bool Connect(const std::string& host_port, int receive_buffer_bytes = 16 * 1024);

  struct Frame {
    int opcode = 0;
    std::string payload;
    int close_code = 0;  // for close frames
  };
  // Reads the next frame (waits up to `timeout`).
  std::optional<Frame> Read(absl::Duration timeout = absl::Seconds(10));
  // Sends a masked text frame.
  bool SendText(const std::string& text);
  // Sends a masked final frame with `opcode` (9: ping).
  bool SendFrame(int opcode, const std::string& payload);

 private:
  bool Fill(size_t n, absl::Time deadline);
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_RAW_WS_H_
