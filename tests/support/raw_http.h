#ifndef HERALD_TESTS_SUPPORT_RAW_HTTP_H_
#define HERALD_TESTS_SUPPORT_RAW_HTTP_H_

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
RawHttpResult RawHttpExchange(const std::string& host_port, const std::string& request,
                              absl::Duration timeout = absl::Seconds(10));

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_RAW_HTTP_H_
