#ifndef HERALD_TESTS_SUPPORT_RAW_HTTP_H_
#define HERALD_TESTS_SUPPORT_RAW_HTTP_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace herald::testing {

// A blocking TCP connection to "host:port" (IPv4) with SO_RCVBUF set when
// `receive_buffer_bytes` > 0; the fd, or -1.
int ConnectTcp(const std::string& host_port, int receive_buffer_bytes = 0);

// What a server answered to bytes sent as they are: for requests no HTTP client library will
// make (two Content-Lengths, a Content-Length beside a Transfer-Encoding).
struct RawHttpResult {
  std::string response;  // everything read
  bool closed = false;   // the server closed the connection within the timeout
};
// Reads until the server closes the connection, or, once a whole response has arrived that does
// not say `Connection: close` (a kept-alive connection), returns it with `closed` false.
RawHttpResult RawHttpExchange(const std::string& host_port, const std::string& request,
                              absl::Duration timeout = absl::Seconds(10));

// One response as read from the socket.
struct RawResponse {
  int status = 0;
  std::string head;                            // status line and headers, up to the blank line
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// The length of the first whole response in `bytes` with a Content-Length (or none: no body),
// or 0 while it is incomplete; fills `out` when complete.
size_t ParseRawResponse(const std::string& bytes, RawResponse* out);

// A client connection that sends bytes as they are and reads responses one by one: for
// keep-alive, pipelining and streams.
class RawHttpConnection {
 public:
  explicit RawHttpConnection(const std::string& host_port, int receive_buffer_bytes = 0);
  ~RawHttpConnection();
  RawHttpConnection(const RawHttpConnection&) = delete;
  RawHttpConnection& operator=(const RawHttpConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool Send(const std::string& bytes);
  // The next whole response (Content-Length framed), or nullopt at timeout or close.
  std::optional<RawResponse> ReadResponse(absl::Duration timeout = absl::Seconds(10));
  // Reads until `done(everything read so far, not yet taken)` holds; false at timeout or close.
  bool ReadUntil(const std::function<bool(const std::string&)>& done,
                 absl::Duration timeout = absl::Seconds(10));
  // True when the server closes the connection within `timeout` (what it sends meanwhile is
  // kept in buffer()).
  bool WaitClosed(absl::Duration timeout = absl::Seconds(10));
  // True when nothing arrives for `window` (and the connection stays open).
  bool QuietFor(absl::Duration window);
  // The server reset the connection (RST: ECONNRESET), rather than closing it with FIN.
  bool reset() const { return reset_; }
  // Bytes read and not taken by ReadResponse.
  std::string& buffer() { return buffer_; }
  void Close();

 private:
  // One read; 1 data, 0 timeout, -1 closed.
  int ReadSome(absl::Time deadline);
  int fd_ = -1;
  bool reset_ = false;
  std::string buffer_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_RAW_HTTP_H_
