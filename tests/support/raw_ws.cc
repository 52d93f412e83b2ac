#include "tests/support/raw_ws.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "absl/time/clock.h"
#include "tests/support/raw_http.h"

namespace herald::testing {

RawWsClient::~RawWsClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

bool RawWsClient::Connect(const std::string& host_port, int receive_buffer_bytes) {
  fd_ = ConnectTcp(host_port, receive_buffer_bytes);
  if (fd_ < 0) return false;
  return Upgrade(host_port);
}

bool RawWsClient::ConnectTls(const std::string& host_port, const std::string& ca_file,
                             int max_version) {
  fd_ = ConnectTcp(host_port);
  if (fd_ < 0) return false;
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr || SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
    return false;
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (max_version != 0) {
    SSL_CTX_set_security_level(ctx_, 0);  // let OpenSSL offer old versions at all
    SSL_CTX_set_min_proto_version(ctx_, 0);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  // The handshake blocks; the test's own timeout bounds it (the server's is 5 s).
  if (SSL_connect(ssl_) != 1) {
    ERR_clear_error();
    return false;
  }
  return Upgrade(host_port);
}

std::string RawWsClient::PeerCertificate() const {
  if (ssl_ == nullptr) return "";
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
  std::string out = std::string("subject=") + subject;
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(serial);
  out += std::string(", serial=") + hex;
  OPENSSL_free(hex);
  BN_free(serial);
  X509_free(cert);
  return out;
}

bool RawWsClient::WriteAll(const std::string& bytes) {
  if (ssl_ != nullptr) {
    return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
  return write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
}

bool RawWsClient::Upgrade(const std::string& host_port) {
  const std::string request =
      "GET /ws HTTP/1.1\r\nHost: " + host_port +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (!WriteAll(request)) return false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (buffer_.find("\r\n\r\n") == std::string::npos) {
    if (!Fill(buffer_.size() + 1, deadline)) return false;
  }
  size_t end = buffer_.find("\r\n\r\n");
  bool ok = buffer_.rfind("HTTP/1.1 101", 0) == 0;
  buffer_.erase(0, end + 4);
  return ok;
}

RawWsClient::ReadResult RawWsClient::ReadSome(absl::Time deadline) {
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
  if (ms <= 0) return ReadResult::kTimeout;
  // OpenSSL may hold decrypted bytes the socket no longer shows.
  pollfd p{fd_, POLLIN, 0};
  if ((ssl_ == nullptr || SSL_pending(ssl_) == 0) && poll(&p, 1, ms) <= 0) {
    return ReadResult::kTimeout;
  }
  char chunk[65536];
  const ssize_t got =
      ssl_ != nullptr ? SSL_read(ssl_, chunk, sizeof chunk) : read(fd_, chunk, sizeof chunk);
  if (got > 0) {
    buffer_.append(chunk, got);
    return ReadResult::kMore;
  }
  // A TLS record split over two reads: SSL_read wants more bytes, poll again.
  if (ssl_ != nullptr && SSL_get_error(ssl_, static_cast<int>(got)) == SSL_ERROR_WANT_READ) {
    return ReadResult::kMore;
  }
  return ReadResult::kEnded;
}

bool RawWsClient::Fill(size_t n, absl::Time deadline) {
  while (buffer_.size() < n) {
    if (ReadSome(deadline) != ReadResult::kMore) return false;
  }
  return true;
}

bool RawWsClient::Ended(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    buffer_.clear();  // what still arrives is dropped
    switch (ReadSome(deadline)) {
      case ReadResult::kMore:
        break;
      case ReadResult::kTimeout:
        return false;
      case ReadResult::kEnded:
        return true;
    }
  }
}

int RawWsClient::local_port() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

std::optional<RawWsClient::Frame> RawWsClient::Read(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  if (!Fill(2, deadline)) return std::nullopt;
  const auto b = [&](size_t i) { return static_cast<uint8_t>(buffer_[i]); };
  size_t header = 2;
  uint64_t len = b(1) & 0x7f;
  if (len == 126) {
    if (!Fill(4, deadline)) return std::nullopt;
    len = (uint64_t{b(2)} << 8) | b(3);
    header = 4;
  } else if (len == 127) {
    if (!Fill(10, deadline)) return std::nullopt;
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | b(i);
    header = 10;
  }
  if (!Fill(header + len, deadline)) return std::nullopt;
  Frame f;
  f.opcode = b(0) & 0x0f;
  f.payload = buffer_.substr(header, len);
  buffer_.erase(0, header + len);
  if (f.opcode == 8 && f.payload.size() >= 2) {
    f.close_code = (static_cast<uint8_t>(f.payload[0]) << 8) | static_cast<uint8_t>(f.payload[1]);
    f.payload.erase(0, 2);
  }
  return f;
}

bool RawWsClient::SendText(const std::string& text) { return SendFrame(1, text); }

bool RawWsClient::SendFrame(int opcode, const std::string& text) {
  std::string frame;
  frame.push_back(static_cast<char>(0x80 | opcode));
  const uint8_t mask[4] = {1, 2, 3, 4};
  if (text.size() < 126) {
    frame.push_back(static_cast<char>(0x80 | text.size()));
  } else {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(text.size() >> 8));
    frame.push_back(static_cast<char>(text.size() & 0xff));
  }
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < text.size(); ++i) frame.push_back(text[i] ^ mask[i % 4]);
  return WriteAll(frame);
}

}  // namespace herald::testing
