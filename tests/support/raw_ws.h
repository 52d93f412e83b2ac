#ifndef HERALD_TESTS_SUPPORT_RAW_WS_H_
#define HERALD_TESTS_SUPPORT_RAW_WS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

struct ssl_st;
struct ssl_ctx_st;

namespace herald::testing {

// A minimal blocking WebSocket client over a plain TCP socket, for tests that need control a
// library client does not give: it reads only when asked, so a test can play a consumer that
// stops reading. Speaks wss:// too (ConnectTls: OpenSSL over the same socket). Not thread-safe.
class RawWsClient {
 public:
  ~RawWsClient();
  // TCP connect + upgrade handshake on /ws; false on failure. A small receive buffer keeps the
  // kernel from absorbing megabytes on the test's behalf.
  bool Connect(const std::string& host_port, int receive_buffer_bytes = 16 * 1024);
  // The same over TLS, verifying the server's certificate against the PEM CAs in `ca_file`
  // (`max_version`: the highest TLS version offered, e.g. TLS1_1_VERSION; 0: OpenSSL's).
  bool ConnectTls(const std::string& host_port, const std::string& ca_file, int max_version = 0);
  // After ConnectTls: the server certificate's "subject=..., serial=HEX".
  std::string PeerCertificate() const;

  struct Frame {
    int opcode = 0;
    std::string payload;
    int close_code = 0;  // for close frames
  };
  // Reads the next frame (waits up to `timeout`).
  std::optional<Frame> Read(absl::Duration timeout = absl::Seconds(10));
  // Reads and drops what arrives until the server ends the connection (EOF or a reset: true) or
  // `timeout` passes with it still open (false).
  bool Ended(absl::Duration timeout);
  // The client socket's local port (the server sees it as the peer's).
  int local_port() const;
  // Sends a masked text frame.
  bool SendText(const std::string& text);
  // Sends a masked final frame with `opcode` (9: ping).
  bool SendFrame(int opcode, const std::string& payload);

 private:
  enum class ReadResult {
    kMore,     // bytes were appended to buffer_ (or TLS wants more): read again
    kTimeout,  // nothing by `deadline`
    kEnded,    // EOF or an error (a reset): the connection is over
  };
  // One read into buffer_, waiting up to `deadline`.
  ReadResult ReadSome(absl::Time deadline);
  // Reads until buffer_ holds `n` bytes; false on a timeout or the end of the connection.
  bool Fill(size_t n, absl::Time deadline);
  bool Upgrade(const std::string& host_port);
  bool WriteAll(const std::string& bytes);
  int fd_ = -1;
  ssl_ctx_st* ctx_ = nullptr;  // TLS only
  ssl_st* ssl_ = nullptr;
  std::string buffer_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_RAW_WS_H_
