#include "tests/support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace herald::testing {

int ConnectTcp(const std::string& host_port, int receive_buffer_bytes) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port)) {
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (receive_buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

size_t ParseRawResponse(const std::string& bytes, RawResponse* out) {
  const size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  RawResponse r;
  r.head = bytes.substr(0, head_end);
  std::vector<std::string> lines = absl::StrSplit(r.head, "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &r.status)) return 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    auto [it, inserted] = r.headers.emplace(name, value);
    if (!inserted) absl::StrAppend(&it->second, ", ", value);
  }
  size_t length = 0;
  if (!r.header("content-length").empty() &&
      !absl::SimpleAtoi(r.header("content-length"), &length)) {
    return 0;
  }
  if (r.status / 100 == 1) length = 0;
  const size_t total = head_end + 4 + length;
  if (bytes.size() < total) return 0;
  r.body = bytes.substr(head_end + 4, length);
  *out = std::move(r);
  return total;
}

RawHttpConnection::RawHttpConnection(const std::string& host_port, int receive_buffer_bytes)
    : fd_(ConnectTcp(host_port, receive_buffer_bytes)) {}

RawHttpConnection::~RawHttpConnection() { Close(); }

void RawHttpConnection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool RawHttpConnection::Send(const std::string& bytes) {
  size_t sent = 0;
  while (fd_ >= 0 && sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return fd_ >= 0;
}

int RawHttpConnection::ReadSome(absl::Time deadline) {
  if (fd_ < 0) return -1;
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms <= 0) return 0;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(ms)) <= 0) return 0;
  char chunk[16384];
  const ssize_t got = read(fd_, chunk, sizeof chunk);
  if (got < 0 && errno == ECONNRESET) reset_ = true;
  if (got <= 0) return -1;
  buffer_.append(chunk, static_cast<size_t>(got));
  return 1;
}

std::optional<RawResponse> RawHttpConnection::ReadResponse(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    RawResponse r;
    if (const size_t used = ParseRawResponse(buffer_, &r); used > 0) {
      buffer_.erase(0, used);
      return r;
    }
    if (ReadSome(deadline) <= 0) return std::nullopt;
  }
}

bool RawHttpConnection::ReadUntil(const std::function<bool(const std::string&)>& done,
                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done(buffer_)) {
    if (ReadSome(deadline) <= 0) return false;
  }
  return true;
}

bool RawHttpConnection::WaitClosed(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const int r = ReadSome(deadline);
    if (r < 0) return true;
    if (r == 0) return false;
  }
}

bool RawHttpConnection::QuietFor(absl::Duration window) {
  const size_t before = buffer_.size();
  return ReadSome(absl::Now() + window) == 0 && buffer_.size() == before;
}

RawHttpResult RawHttpExchange(const std::string& host_port, const std::string& request,
                              absl::Duration timeout) {
  RawHttpResult result;
  const int fd = ConnectTcp(host_port);
  if (fd < 0) return result;
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return result;
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) break;
    char chunk[4096];
    const ssize_t got = read(fd, chunk, sizeof chunk);
    if (got <= 0) {  // EOF or reset: closed either way
      result.closed = true;
      break;
    }
    result.response.append(chunk, static_cast<size_t>(got));
    RawResponse response;
    if (ParseRawResponse(result.response, &response) > 0 &&
        !absl::StrContains(absl::AsciiStrToLower(response.header("connection")), "close")) {
      break;  // a whole response on a connection the server keeps open
    }
  }
  close(fd);
  return result;
}

}  // namespace herald::testing
