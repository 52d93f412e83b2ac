// herald_load: a WebSocket fan-out load generator for Herald, nchan and the ceiling server.
//
// Opens N subscribers (epoll, several threads, source addresses spread over 127.0.0.x),
// subscribes them, publishes at a fixed rate with a monotonic timestamp and a per-channel
// sequence number in every payload ("hb:<ns>:<seq>:<padding>"), and prints one JSON object:
// deliveries/s, publish->deliver latency percentiles, lost/duplicate/reordered counts, connect
// rate and failures, the server's CPU time and RSS (from /proc) and the generator's own CPU time.
//
// The receive path allocates nothing per message: each thread reads into one fixed buffer and a
// connection keeps at most one partial frame in its own fixed carry-over buffer.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench/common.h"
#include "herald/v1/broker.grpc.pb.h"

namespace herald::bench {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path = "/ws";  // "{c}" is replaced by the channel name
  bool herald = true;        // herald protocol (welcome, subscribe) or raw (subscribed by URL)
  int subs = 100;
  int channels = 1;
  std::string channel_prefix = "bench";
  int threads = 2;
  int src_count = 1;  // source addresses 127.0.0.2 .. 127.0.0.(1+src_count); 0: kernel's choice
  int max_inflight = 512;
  double connect_rate = 0;  // connections per second, 0: as fast as max_inflight allows
  double connect_timeout_s = 60;
  // none | grpc | grpc-stream (Herald) | http (nchan's POST /pub/<channel>) | http-api (Herald's
  // POST /api/v1/Publish) | udp (the baseline server's trigger)
  std::string publish = "none";
  std::string pub_target;  // host:port
  int pub_inflight = 1;    // http, http-api: requests in flight (pipelined) on the connection
  std::string pub_data = "value";  // grpc, grpc-stream: "value" (data) or "json" (data_json)
  std::string api_key;             // http-api: Authorization: Bearer
  double rate = 100;               // publications per second; 0: as fast as possible
  double duration_s = 5;
  int payload = 100;  // bytes of the publication data
  double drain_s = 3;
  double hold_s = 0;             // keep connections open this long after all are ready (idle)
  double slow_fraction = 0;      // this fraction of subscribers never read after subscribing
  std::vector<int> server_pids;  // for CPU time and RSS
  std::string label;
  std::string cdf_path;       // write the latency CDF here (value_us fraction per line)
  bool no_subscribe = false;  // herald: count ready at welcome (connect storm)
  bool tls = false;           // wss://: a full TLS handshake per connection (no resumption)
  std::string pub_ca;         // gRPC publishers: TLS, verifying the server with these CAs
  // Several nodes: subscriber i connects to ports[i % ports.size()] (on the --url host).
  std::vector<int> ports;
  // Listener of another process' publisher: no publisher here; every subscriber expects this
  // many publications per channel (hb:<monotonic ns>:<seq> payloads, one machine's clock).
  uint64_t expect = 0;
  std::string ready_file;                // created once every subscriber is ready
  std::vector<std::string> start_after;  // publish only once these files exist
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr, "herald_load: %s\n", msg);
  std::fprintf(stderr,
               "usage: herald_load --url ws[s]://HOST:PORT/PATH [--raw] [--subs N] [--channels K]\n"
               "  [--threads T] [--src-count S] [--max-inflight M] [--connect-rate R]\n"
               "  [--publish none|grpc|grpc-stream|http|http-api|udp --pub-target HOST:PORT]\n"
               "  [--pub-inflight N] [--pub-data value|json] [--api-key KEY]\n"
               "  [--rate MSGS_PER_S] [--duration S] [--payload BYTES] [--drain S] [--hold S]\n"
               "  [--slow-fraction F] [--server-pids P1,P2] [--label L] [--cdf FILE]\n"
               "  [--no-subscribe] [--pub-ca CA_PEM] [--ports P1,P2] [--expect N]\n"
               "  [--ready-file F] [--start-after F1,F2]\n");
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--url") {
      std::string url = next();
      o.tls = url.rfind("wss://", 0) == 0;
      if (!o.tls && url.rfind("ws://", 0) != 0) Usage("--url must start with ws:// or wss://");
      url = url.substr(o.tls ? 6 : 5);
      size_t slash = url.find('/');
      std::string hostport = url.substr(0, slash);
      o.path = slash == std::string::npos ? "/" : url.substr(slash);
      size_t colon = hostport.rfind(':');
      o.host = hostport.substr(0, colon);
      o.port = colon == std::string::npos ? 80 : std::stoi(hostport.substr(colon + 1));
    } else if (a == "--raw") {
      o.herald = false;
    } else if (a == "--subs") {
      o.subs = std::stoi(next());
    } else if (a == "--channels") {
      o.channels = std::max(1, std::stoi(next()));
    } else if (a == "--channel-prefix") {
      o.channel_prefix = next();
    } else if (a == "--threads") {
      o.threads = std::max(1, std::stoi(next()));
    } else if (a == "--src-count") {
      o.src_count = std::stoi(next());
    } else if (a == "--max-inflight") {
      o.max_inflight = std::max(1, std::stoi(next()));
    } else if (a == "--connect-rate") {
      o.connect_rate = std::stod(next());
    } else if (a == "--connect-timeout") {
      o.connect_timeout_s = std::stod(next());
    } else if (a == "--publish") {
      o.publish = next();
    } else if (a == "--pub-target") {
      o.pub_target = next();
    } else if (a == "--pub-inflight") {
      o.pub_inflight = std::max(1, std::stoi(next()));
    } else if (a == "--pub-data") {
      o.pub_data = next();
      if (o.pub_data != "value" && o.pub_data != "json") Usage("--pub-data: value or json");
    } else if (a == "--api-key") {
      o.api_key = next();
    } else if (a == "--rate") {
      o.rate = std::stod(next());
    } else if (a == "--duration") {
      o.duration_s = std::stod(next());
    } else if (a == "--payload") {
      o.payload = std::max(24, std::stoi(next()));
    } else if (a == "--drain") {
      o.drain_s = std::stod(next());
    } else if (a == "--hold") {
      o.hold_s = std::stod(next());
    } else if (a == "--slow-fraction") {
      o.slow_fraction = std::stod(next());
    } else if (a == "--server-pids") {
      o.server_pids = ParsePids(next());
    } else if (a == "--label") {
      o.label = next();
    } else if (a == "--cdf") {
      o.cdf_path = next();
    } else if (a == "--pub-ca") {
      o.pub_ca = next();
    } else if (a == "--no-subscribe") {
      o.no_subscribe = true;
    } else if (a == "--ports") {
      for (int pid : ParsePids(next())) o.ports.push_back(pid);
    } else if (a == "--expect") {
      o.expect = std::stoull(next());
    } else if (a == "--ready-file") {
      o.ready_file = next();
    } else if (a == "--start-after") {
      std::string list = next();
      for (size_t b = 0; b <= list.size();) {
        size_t e = list.find(',', b);
        if (e == std::string::npos) e = list.size();
        if (e > b) o.start_after.push_back(list.substr(b, e - b));
        b = e + 1;
      }
    } else {
      Usage(("unknown option " + a).c_str());
    }
  }
  if (o.publish != "none" && o.pub_target.empty()) Usage("--publish needs --pub-target");
  if (o.payload > 3000) Usage("--payload at most 3000");
  if (o.expect > 0 && o.publish != "none") Usage("--expect listens to another publisher");
  return o;
}

std::string ChannelName(const Options& o, int idx) {
  if (o.channels == 1) return o.channel_prefix;
  return o.channel_prefix + "_" + std::to_string(idx);
}

// --- subscribers ------------------------------------------------------------------------------

enum class State : uint8_t {
  kConnecting,
  kTls,  // wss://: TLS handshake in progress
  kHandshake,
  kWelcome,
  kSubscribing,
  kReady,
  kDone
};

constexpr size_t kCarry = 4096;
constexpr size_t kReadBuf = 256 * 1024;

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // wss:// only
  State state = State::kConnecting;
  bool slow = false;
  bool counted = false;  // counted in ready/failed
  bool was_ready = false;
  uint32_t chan = 0;
  uint16_t carry_len = 0;
  uint16_t close_code = 0;
  uint64_t start_ns = 0;
  // Sequence tracking: `next` is one past the highest seq seen; bit i of `window` says whether
  // seq next-1-i was received.
  uint64_t next = 0;
  uint64_t window = 0;
  uint64_t distinct = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  char carry[kCarry];
};

struct Shared {
  const Options* opt = nullptr;
  std::atomic<int> ready{0};
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_connecting{false};
  std::atomic<uint64_t> received{0};  // distinct publications received, all threads
  std::vector<std::string> channel_names;
  std::vector<std::string> subscribe_frames;  // masked client frames, per channel
  std::vector<std::string> handshakes;        // HTTP upgrade requests, per channel
  SSL_CTX* tls = nullptr;                     // wss://: client context, no verification
};

struct ThreadResult {
  Histogram latency;
  Histogram handshake;
  uint64_t distinct = 0, duplicates = 0, reordered = 0, closed = 0, closed_4008 = 0;
  uint64_t first_recv_ns = 0;
  uint64_t last_recv_ns = 0;
  uint64_t frames_other = 0;
};

std::string MaskedTextFrame(const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(0x81));
  const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  for (uint8_t m : mask) f.push_back(static_cast<char>(m));
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(static_cast<char>(static_cast<uint8_t>(payload[i]) ^ mask[i % 4]));
  }
  return f;
}

bool ParseU64(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* start = p;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  *out = v;
  return p > start;
}

bool Contains(const char* data, size_t len, const char* needle) {
  return memmem(data, len, needle, std::strlen(needle)) != nullptr;
}

class Worker {
 public:
  Worker(Shared* shared, int first, int count)
      : sh_(shared), opt_(*shared->opt), first_(first), conns_(count) {
    buf_.reset(new char[kReadBuf]);
    for (int i = 0; i < count; ++i) {
      const int global = first + i;
      conns_[i].chan = static_cast<uint32_t>(global % opt_.channels);
      if (opt_.slow_fraction > 0) {
        const int every = std::max(1, static_cast<int>(1.0 / opt_.slow_fraction + 0.5));
        conns_[i].slow = global % every == every - 1;
      }
    }
  }

  void Run();
  ThreadResult& result() { return result_; }
  const std::vector<Conn>& conns() const { return conns_; }

 private:
  void StartConnect(Conn& c, int idx);
  void OnEvent(Conn& c, uint32_t events, uint64_t now);
  void Fail(Conn& c);
  void MarkReady(Conn& c, uint64_t now);
  size_t Process(Conn& c, char* data, size_t len, uint64_t now);
  void OnText(Conn& c, const char* p, size_t n, uint64_t now);
  void Accept(Conn& c, uint64_t seq);
  void CloseConn(Conn& c);
  // Writes a small message (upgrade request, subscribe, pong) whole; false on failure.
  bool Send(Conn& c, const char* data, size_t n);
  void TlsStep(Conn& c, int idx);
  void SendUpgrade(Conn& c, int idx);
  // Reads what the connection has (through TLS on wss://); <0 with errno EAGAIN: nothing now.
  ssize_t Receive(Conn& c, char* buf, size_t n);

  Shared* const sh_;
  const Options& opt_;
  const int first_;
  std::vector<Conn> conns_;
  std::unique_ptr<char[]> buf_;
  int ep_ = -1;
  int inflight_ = 0;
  ThreadResult result_;
};

void Worker::Fail(Conn& c) {
  if (!c.counted) {
    c.counted = true;
    sh_->failed.fetch_add(1);
    if (c.state != State::kReady) --inflight_;
  }
  CloseConn(c);
}

bool Worker::Send(Conn& c, const char* data, size_t n) {
  if (c.ssl == nullptr) return write(c.fd, data, n) == static_cast<ssize_t>(n);
  return SSL_write(c.ssl, data, static_cast<int>(n)) == static_cast<int>(n);
}

ssize_t Worker::Receive(Conn& c, char* buf, size_t n) {
  if (c.ssl == nullptr) return read(c.fd, buf, n);
  const int got = SSL_read(c.ssl, buf, static_cast<int>(n));
  if (got > 0) return got;
  const int err = SSL_get_error(c.ssl, got);
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  return 0;  // closed or failed
}

void Worker::TlsStep(Conn& c, int idx) {
  const int rc = SSL_do_handshake(c.ssl);
  if (rc == 1) {
    SendUpgrade(c, idx);
    return;
  }
  const int err = SSL_get_error(c.ssl, rc);
  ERR_clear_error();
  epoll_event ev{};
  ev.data.u32 = static_cast<uint32_t>(idx);
  if (err == SSL_ERROR_WANT_READ) {
    ev.events = EPOLLIN;
  } else if (err == SSL_ERROR_WANT_WRITE) {
    ev.events = EPOLLOUT;
  } else {
    Fail(c);
    return;
  }
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Worker::SendUpgrade(Conn& c, int idx) {
  const std::string& req = sh_->handshakes[c.chan];
  if (!Send(c, req.data(), req.size())) {
    Fail(c);
    return;
  }
  c.state = State::kHandshake;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(idx);
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Worker::CloseConn(Conn& c) {
  if (c.ssl != nullptr) {
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  if (c.fd >= 0) {
    close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
  }
  c.state = State::kDone;
}

void Worker::MarkReady(Conn& c, uint64_t now) {
  c.state = State::kReady;
  c.counted = true;
  c.was_ready = true;
  --inflight_;
  result_.handshake.Record(now - c.start_ns);
  sh_->ready.fetch_add(1);
  if (c.slow) {
    // A slow reader: tiny receive buffer, never read again.
    int small = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  }
}

void Worker::StartConnect(Conn& c, int idx) {
  c.start_ns = NowNs();
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    Fail(c);
    return;
  }
  ++inflight_;
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt_.src_count > 0) {
    setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr =
        htonl(0x7f000002u + static_cast<uint32_t>((first_ + idx) % opt_.src_count));
    if (bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      Fail(c);
      return;
    }
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  const int port = opt_.ports.empty()
                       ? opt_.port
                       : opt_.ports[static_cast<size_t>(first_ + idx) % opt_.ports.size()];
  dst.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, opt_.host.c_str(), &dst.sin_addr);
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) {
    Fail(c);
    return;
  }
  c.state = State::kConnecting;
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u32 = static_cast<uint32_t>(idx);
  epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
}

void Worker::Accept(Conn& c, uint64_t seq) {
  if (seq >= c.next) {
    const uint64_t shift = seq - c.next + 1;
    c.window = shift >= 64 ? 1 : ((c.window << shift) | 1);
    c.next = seq + 1;
    ++c.distinct;
    sh_->received.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint64_t back = c.next - 1 - seq;
  if (back < 64 && !(c.window & (1ull << back))) {
    c.window |= 1ull << back;
    ++c.distinct;
    ++c.reordered;
    sh_->received.fetch_add(1, std::memory_order_relaxed);
  } else {
    ++c.duplicates;
  }
}

void Worker::OnText(Conn& c, const char* p, size_t n, uint64_t now) {
  if (c.state == State::kReady) {
    const char* hb = static_cast<const char*>(memmem(p, n, "hb:", 3));
    if (hb == nullptr) {
      ++result_.frames_other;
      return;
    }
    const char* q = hb + 3;
    const char* end = p + n;
    uint64_t t = 0, seq = 0;
    if (!ParseU64(q, end, &t) || q >= end || *q++ != ':' || !ParseU64(q, end, &seq)) {
      ++result_.frames_other;
      return;
    }
    result_.latency.Record(now > t ? now - t : 0);
    if (result_.first_recv_ns == 0) result_.first_recv_ns = now;
    result_.last_recv_ns = now;
    Accept(c, seq);
    return;
  }
  if (c.state == State::kWelcome && Contains(p, n, "\"welcome\"")) {
    if (opt_.no_subscribe) {
      MarkReady(c, now);
      return;
    }
    const std::string& f = sh_->subscribe_frames[c.chan];
    if (!Send(c, f.data(), f.size())) {
      Fail(c);
      return;
    }
    c.state = State::kSubscribing;
  } else if (c.state == State::kSubscribing) {
    if (Contains(p, n, "\"subscribed\"")) {
      MarkReady(c, now);
    } else if (Contains(p, n, "\"error\"")) {
      Fail(c);
    }
  }
}

// Consumes complete frames (and the HTTP response) from data[0..len); returns bytes consumed.
size_t Worker::Process(Conn& c, char* data, size_t len, uint64_t now) {
  size_t pos = 0;
  if (c.state == State::kHandshake) {
    char* end = static_cast<char*>(memmem(data, len, "\r\n\r\n", 4));
    if (end == nullptr) return 0;
    if (len < 12 || std::memcmp(data, "HTTP/1.1 101", 12) != 0) {
      Fail(c);
      return len;
    }
    pos = static_cast<size_t>(end - data) + 4;
    if (opt_.herald) {
      c.state = State::kWelcome;
    } else {
      MarkReady(c, now);
      if (c.slow) return len;
    }
  }
  while (c.fd >= 0 && len - pos >= 2) {
    const uint8_t b0 = static_cast<uint8_t>(data[pos]);
    const uint8_t b1 = static_cast<uint8_t>(data[pos + 1]);
    size_t hdr = 2;
    uint64_t plen = b1 & 0x7f;
    if (plen == 126) {
      if (len - pos < 4) break;
      plen = (static_cast<uint64_t>(static_cast<uint8_t>(data[pos + 2])) << 8) |
             static_cast<uint8_t>(data[pos + 3]);
      hdr = 4;
    } else if (plen == 127) {
      if (len - pos < 10) break;
      plen = 0;
      for (int i = 0; i < 8; ++i) plen = (plen << 8) | static_cast<uint8_t>(data[pos + 2 + i]);
      hdr = 10;
    }
    if (b1 & 0x80) hdr += 4;  // servers do not mask; tolerate it anyway
    if (len - pos < hdr + plen) {
      if (hdr + plen > kCarry) {
        Fail(c);  // a frame larger than we ever expect
        return len;
      }
      break;
    }
    const char* payload = data + pos + hdr;
    const uint8_t opcode = b0 & 0x0f;
    if (opcode == 0x1 || opcode == 0x2) {
      OnText(c, payload, plen, now);
    } else if (opcode == 0x8) {
      c.close_code = plen >= 2 ? static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                       static_cast<uint8_t>(payload[1]))
                               : 1005;
      ++result_.closed;
      if (c.close_code == 4008) ++result_.closed_4008;
      if (c.state != State::kReady) {
        Fail(c);
      } else {
        CloseConn(c);
      }
      return len;
    } else if (opcode == 0x9) {
      // Ping: answer with a masked pong carrying the same (short) payload.
      char pong[2 + 4 + 125];
      const size_t n = std::min<uint64_t>(plen, 125);
      pong[0] = static_cast<char>(0x8a);
      pong[1] = static_cast<char>(0x80 | n);
      std::memset(pong + 2, 0, 4);
      std::memcpy(pong + 6, payload, n);
      (void)Send(c, pong, 6 + n);
    }
    pos += hdr + plen;
  }
  return pos;
}

void Worker::OnEvent(Conn& c, uint32_t events, uint64_t now) {
  const int idx = static_cast<int>(&c - conns_.data());
  if (c.state == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      Fail(c);
      return;
    }
    if (sh_->tls == nullptr) {
      SendUpgrade(c, idx);
      return;
    }
    c.ssl = SSL_new(sh_->tls);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    c.state = State::kTls;
  }
  if (c.state == State::kTls) {
    TlsStep(c, idx);
    return;
  }
  // One read per event on ws:// (epoll reports the rest); on wss:// until OpenSSL wants more
  // bytes, since a record it has read already is not visible to epoll.
  for (int reads = 0; reads < 64 && c.fd >= 0; ++reads) {
    char* buf = buf_.get();
    std::memcpy(buf, c.carry, c.carry_len);
    const ssize_t n = Receive(c, buf + c.carry_len, kReadBuf - c.carry_len);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (c.state == State::kReady) {
        ++result_.closed;
        CloseConn(c);
      } else {
        Fail(c);
      }
      return;
    }
    const size_t total = c.carry_len + static_cast<size_t>(n);
    const size_t used = Process(c, buf, total, now);
    const size_t left = total - used;
    if (c.fd < 0) return;
    if (left > kCarry) {
      Fail(c);
      return;
    }
    std::memmove(c.carry, buf + used, left);
    c.carry_len = static_cast<uint16_t>(left);
    if (c.ssl == nullptr || (c.state == State::kReady && c.slow)) return;
  }
}

void Worker::Run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  const int count = static_cast<int>(conns_.size());
  const int inflight_cap = std::max(1, opt_.max_inflight / opt_.threads);
  const double rate = opt_.connect_rate / opt_.threads;
  const uint64_t t0 = NowNs();
  int started = 0;
  std::vector<epoll_event> events(1024);
  while (!sh_->stop.load(std::memory_order_relaxed)) {
    if (!sh_->stop_connecting.load(std::memory_order_relaxed)) {
      while (started < count && inflight_ < inflight_cap) {
        if (rate > 0 && started >= rate * static_cast<double>(NowNs() - t0) / 1e9) break;
        StartConnect(conns_[started], started);
        ++started;
      }
    }
    const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 20);
    if (n <= 0) continue;
    const uint64_t now = NowNs();
    for (int i = 0; i < n; ++i) {
      Conn& c = conns_[events[i].data.u32];
      if (c.fd >= 0) OnEvent(c, events[i].events, now);
    }
  }
  for (Conn& c : conns_) CloseConn(c);
  close(ep_);
}

// --- publishers -------------------------------------------------------------------------------

class Publisher {
 public:
  virtual ~Publisher() = default;
  // True when the publication was sent (and, with one request in flight, accepted).
  virtual bool Publish(const std::string& channel, const std::string& payload) = 0;
  virtual void Finish() {}
  // Publications found to have failed after Publish() returned (pipelined HTTP).
  virtual uint64_t LateErrors() const { return 0; }
  // Connections the publisher opened (HTTP: 1 when it kept its connection alive throughout).
  virtual uint64_t Connects() const { return 0; }
};

std::pair<std::string, int> SplitHostPort(const std::string& hp) {
  size_t colon = hp.rfind(':');
  return {hp.substr(0, colon), std::stoi(hp.substr(colon + 1))};
}

// Plaintext, or TLS verified against the PEM CAs in `ca_file` (--pub-ca).
std::shared_ptr<grpc::Channel> GrpcChannel(const std::string& target, const std::string& ca_file) {
  if (ca_file.empty()) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  std::ifstream in(ca_file);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (pem.empty()) Usage("--pub-ca: cannot read the file");
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pem;
  return grpc::CreateChannel(target, grpc::SslCredentials(options));
}

// The payload as `data` (a google.protobuf.Value string) or, with --pub-data json, as the JSON
// text of that string in `data_json` (no Value on either side).
void SetData(v1::PublishRequest* req, const std::string& payload, bool raw_json) {
  if (raw_json) {
    std::string* json = req->mutable_data_json();
    json->assign(1, '"');
    json->append(payload);  // "hb:<digits>:<digits>:x…": nothing to escape
    json->push_back('"');
  } else {
    req->mutable_data()->set_string_value(payload);
  }
}

class GrpcPublisher : public Publisher {
 public:
  GrpcPublisher(const std::string& target, const std::string& ca_file, bool raw_json)
      : stub_(v1::Broker::NewStub(GrpcChannel(target, ca_file))), raw_json_(raw_json) {}
  bool Publish(const std::string& channel, const std::string& payload) override {
    req_.set_channel(channel);
    SetData(&req_, payload, raw_json_);
    grpc::ClientContext ctx;
    v1::PublishResponse resp;
    return stub_->Publish(&ctx, req_, &resp).ok();
  }

 private:
  std::unique_ptr<v1::Broker::Stub> stub_;
  const bool raw_json_;
  v1::PublishRequest req_;
};

class GrpcStreamPublisher : public Publisher {
 public:
  GrpcStreamPublisher(const std::string& target, const std::string& ca_file, bool raw_json)
      : stub_(v1::Broker::NewStub(GrpcChannel(target, ca_file))), raw_json_(raw_json) {
    writer_ = stub_->PublishStream(&ctx_, &summary_);
  }
  bool Publish(const std::string& channel, const std::string& payload) override {
    v1::PublishRequest* p = req_.mutable_publish();
    p->set_channel(channel);
    SetData(p, payload, raw_json_);
    return writer_->Write(req_);
  }
  void Finish() override {
    writer_->WritesDone();
    grpc::Status st = writer_->Finish();
    if (!st.ok())
      std::fprintf(stderr, "herald_load: PublishStream: %s\n", st.error_message().c_str());
  }

 private:
  std::unique_ptr<v1::Broker::Stub> stub_;
  const bool raw_json_;
  grpc::ClientContext ctx_;
  v1::PublishStreamSummary summary_;
  std::unique_ptr<grpc::ClientWriter<v1::PublishStreamRequest>> writer_;
  v1::PublishStreamRequest req_;
};

// One HTTP POST per publication on one keep-alive connection, with up to `window` requests in
// flight (pipelined; 1: each request waits for its reply). Two request shapes, one client:
// nchan's publisher location (`POST /pub/<channel>`, the payload as text/plain) and Herald's
// control API (`POST /api/v1/Publish`, `{"channel":…,"data":"<payload>"}`). Replies are read in
// order (both servers answer pipelined requests in order); a reply with `Connection: close`, or a
// broken connection, fails what is still in flight and the next publication reconnects.
class HttpPublisher : public Publisher {
 public:
  enum class Shape { kNchan, kHeraldApi };
  HttpPublisher(const std::string& target, Shape shape, int window, std::string api_key)
      : shape_(shape), window_(std::max(1, window)), api_key_(std::move(api_key)) {
    auto [host, port] = SplitHostPort(target);
    host_ = host;
    port_ = port;
    Connect();
  }
  ~HttpPublisher() override {
    if (fd_ >= 0) close(fd_);
  }
  bool Publish(const std::string& channel, const std::string& payload) override {
    if (fd_ < 0 && !Connect()) return false;
    while (inflight_ >= window_) {
      if (!ReadReply()) return false;
    }
    req_.clear();
    if (shape_ == Shape::kNchan) {
      req_ += "POST /pub/";
      req_ += channel;
      req_ += " HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\nContent-Length: ";
      req_ += std::to_string(payload.size());
      req_ += "\r\n\r\n";
      req_ += payload;
    } else {
      // The payload is "hb:<digits>:<digits>:x…": nothing in it needs escaping in JSON.
      body_ = "{\"channel\":\"" + channel + "\",\"data\":\"" + payload + "\"}";
      req_ += "POST /api/v1/Publish HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n";
      if (!api_key_.empty()) req_ += "Authorization: Bearer " + api_key_ + "\r\n";
      req_ += "Content-Length: ";
      req_ += std::to_string(body_.size());
      req_ += "\r\n\r\n";
      req_ += body_;
    }
    if (!WriteAll(req_.data(), req_.size())) return Reset();
    ++inflight_;
    if (window_ == 1) return ReadReply() && last_ok_;
    return true;
  }
  void Finish() override {
    while (fd_ >= 0 && inflight_ > 0 && ReadReply()) {
    }
  }
  // Replies that were not 2xx, and requests lost with their connection (window > 1 only: with
  // one request in flight Publish() reports its own).
  uint64_t LateErrors() const override { return late_errors_; }
  uint64_t Connects() const override { return connects_; }

 private:
  bool WriteAll(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = write(fd_, p, n);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  // Reads one whole reply (head, then Content-Length bytes; both servers always send one).
  bool ReadReply() {
    for (;;) {
      char* const begin = buf_ + pos_;
      const size_t have = end_ - pos_;
      char* head_end = static_cast<char*>(memmem(begin, have, "\r\n\r\n", 4));
      if (head_end != nullptr) {
        const size_t head = static_cast<size_t>(head_end - begin) + 4;
        size_t body = 0;
        const char* cl = static_cast<const char*>(memmem(begin, head, "Content-Length:", 15));
        if (cl == nullptr)
          cl = static_cast<const char*>(memmem(begin, head, "content-length:", 15));
        if (cl != nullptr) body = std::strtoul(cl + 15, nullptr, 10);
        if (head + body > sizeof buf_) return Reset();
        if (have >= head + body) {
          last_ok_ = have > 9 && begin[9] == '2';
          const bool close_after = memmem(begin, head, "Connection: close", 17) != nullptr ||
                                   memmem(begin, head, "connection: close", 17) != nullptr;
          pos_ += head + body;
          --inflight_;
          if (!last_ok_ && window_ > 1) ++late_errors_;
          if (close_after) Reset();
          return true;
        }
      }
      if (pos_ > 0) {  // keep the partial reply at the front
        std::memmove(buf_, buf_ + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
      }
      if (end_ == sizeof buf_) return Reset();
      const ssize_t n = read(fd_, buf_ + end_, sizeof buf_ - end_);
      if (n <= 0) return Reset();
      end_ += static_cast<size_t>(n);
    }
  }
  bool Connect() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, host_.c_str(), &dst.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return Reset();
    ++connects_;
    return true;
  }
  bool Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (window_ > 1) late_errors_ += static_cast<uint64_t>(inflight_);
    inflight_ = 0;
    pos_ = end_ = 0;
    return false;
  }
  const Shape shape_;
  const int window_;
  const std::string api_key_;
  std::string host_;
  int port_ = 0;
  int fd_ = -1;
  int inflight_ = 0;
  bool last_ok_ = false;
  uint64_t late_errors_ = 0;
  uint64_t connects_ = 0;
  std::string req_;
  std::string body_;
  char buf_[65536];
  size_t pos_ = 0;
  size_t end_ = 0;
};

// One datagram per publication to the ceiling server's trigger port.
class UdpPublisher : public Publisher {
 public:
  explicit UdpPublisher(const std::string& target) {
    auto [host, port] = SplitHostPort(target);
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    dst_.sin_family = AF_INET;
    dst_.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &dst_.sin_addr);
  }
  ~UdpPublisher() override { close(fd_); }
  bool Publish(const std::string&, const std::string& payload) override {
    return sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst_),
                  sizeof dst_) == static_cast<ssize_t>(payload.size());
  }

 private:
  int fd_;
  sockaddr_in dst_{};
};

std::unique_ptr<Publisher> MakePublisher(const Options& o) {
  const bool raw_json = o.pub_data == "json";
  if (o.publish == "grpc") return std::make_unique<GrpcPublisher>(o.pub_target, o.pub_ca, raw_json);
  if (o.publish == "grpc-stream") {
    return std::make_unique<GrpcStreamPublisher>(o.pub_target, o.pub_ca, raw_json);
  }
  if (o.publish == "http") {
    return std::make_unique<HttpPublisher>(o.pub_target, HttpPublisher::Shape::kNchan,
                                           o.pub_inflight, o.api_key);
  }
  if (o.publish == "http-api") {
    return std::make_unique<HttpPublisher>(o.pub_target, HttpPublisher::Shape::kHeraldApi,
                                           o.pub_inflight, o.api_key);
  }
  if (o.publish == "udp") return std::make_unique<UdpPublisher>(o.pub_target);
  return nullptr;
}

struct PublishResult {
  uint64_t published = 0;
  uint64_t errors = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t max_lag_ns = 0;  // how far the publisher fell behind its schedule
  std::vector<uint64_t> per_channel;
};

PublishResult RunPublisher(const Options& o, Shared& sh, Publisher& pub) {
  PublishResult r;
  r.per_channel.assign(o.channels, 0);
  // --rate 0: as fast as the publisher's round trips allow, for --duration.
  const uint64_t period = o.rate > 0 ? static_cast<uint64_t>(1e9 / o.rate) : 0;
  const uint64_t duration = static_cast<uint64_t>(o.duration_s * 1e9);
  std::string payload;
  payload.reserve(o.payload + 64);
  r.start_ns = NowNs();
  for (uint64_t k = 0;; ++k) {
    const uint64_t target = r.start_ns + k * period;
    if (target - r.start_ns >= duration) break;
    uint64_t now = NowNs();
    // A publisher that cannot keep up stops at twice the duration: the rate it reached is the
    // result (deliveries/s and publish_rate say so), not a longer run.
    if (now - r.start_ns >= (period > 0 ? 2 : 1) * duration) break;
    if (now < target) {
      timespec ts{static_cast<time_t>(target / 1000000000ull),
                  static_cast<long>(target % 1000000000ull)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    } else if (now - target > r.max_lag_ns) {
      r.max_lag_ns = now - target;
    }
    const uint32_t chan = static_cast<uint32_t>(k % static_cast<uint64_t>(o.channels));
    const uint64_t seq = r.per_channel[chan];
    now = NowNs();
    payload = "hb:" + std::to_string(now) + ":" + std::to_string(seq) + ":";
    if (payload.size() < static_cast<size_t>(o.payload))
      payload.append(o.payload - payload.size(), 'x');
    if (pub.Publish(sh.channel_names[chan], payload)) {
      ++r.per_channel[chan];
      ++r.published;
    } else {
      ++r.errors;
    }
  }
  pub.Finish();
  r.errors += pub.LateErrors();
  r.end_ns = NowNs();
  return r;
}

int Main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const Options opt = Parse(argc, argv);
  Shared sh;
  sh.opt = &opt;
  for (int c = 0; c < opt.channels; ++c) {
    const std::string name = ChannelName(opt, c);
    sh.channel_names.push_back(name);
    sh.subscribe_frames.push_back(
        MaskedTextFrame("{\"id\":1,\"subscribe\":{\"channel\":\"" + name + "\"}}"));
    std::string path = opt.path;
    if (size_t p = path.find("{c}"); p != std::string::npos) path.replace(p, 3, name);
    sh.handshakes.push_back("GET " + path + " HTTP/1.1\r\nHost: " + opt.host + ":" +
                            std::to_string(opt.port) +
                            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n");
  }

  if (opt.tls) {
    // Every connection a full handshake, as new clients make: no session resumption.
    sh.tls = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(sh.tls, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(sh.tls, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(sh.tls, SSL_OP_NO_TICKET);
  }
  const uint64_t rss_before = ProcRssBytes(opt.server_pids);
  const double server_cpu_connect0 = ProcCpuSeconds(opt.server_pids);
  const double gen_cpu0 = SelfCpuSeconds();
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < opt.threads; ++t) {
    const int first = opt.subs * t / opt.threads;
    const int last = opt.subs * (t + 1) / opt.threads;
    workers.push_back(std::make_unique<Worker>(&sh, first, last - first));
  }
  const uint64_t connect_start = NowNs();
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });

  const uint64_t connect_deadline =
      connect_start + static_cast<uint64_t>(opt.connect_timeout_s * 1e9);
  while (sh.ready.load() + sh.failed.load() < opt.subs && NowNs() < connect_deadline) {
    usleep(2000);
  }
  const uint64_t connect_end = NowNs();
  sh.stop_connecting = true;
  const int ready = sh.ready.load();
  const double connect_s = static_cast<double>(connect_end - connect_start) / 1e9;

  if (opt.hold_s > 0) usleep(static_cast<useconds_t>(opt.hold_s * 1e6));
  const uint64_t rss_ready = ProcRssBytes(opt.server_pids);
  const double server_cpu_connect = ProcCpuSeconds(opt.server_pids) - server_cpu_connect0;

  if (!opt.ready_file.empty()) std::ofstream(opt.ready_file) << ready << "\n";
  for (const std::string& f : opt.start_after) {
    while (access(f.c_str(), F_OK) != 0 && NowNs() < connect_deadline) usleep(10000);
  }

  const double server_cpu0 = ProcCpuSeconds(opt.server_pids);
  const double gen_cpu1 = SelfCpuSeconds();
  PublishResult pr;
  std::unique_ptr<Publisher> pub = MakePublisher(opt);
  if (pub != nullptr) pr = RunPublisher(opt, sh, *pub);
  if (opt.expect > 0) pr.per_channel.assign(opt.channels, opt.expect);

  // Wait for the stragglers: until the fast subscribers have everything (estimated), the count
  // stops growing for 300 ms, or the drain time is over.
  std::atomic<int>& ready_now = sh.ready;
  int slow_ready = 0;
  if (opt.slow_fraction > 0) {
    const int every = std::max(1, static_cast<int>(1.0 / opt.slow_fraction + 0.5));
    slow_ready = ready_now.load() / every;
  }
  const uint64_t per_channel = opt.expect > 0 ? opt.expect * opt.channels : pr.published;
  const uint64_t estimate =
      per_channel * static_cast<uint64_t>(ready_now.load() - slow_ready) / opt.channels;
  // A listener waits for another process' publisher: all of its drain time, unless all arrived.
  const uint64_t drain_deadline =
      NowNs() +
      static_cast<uint64_t>((opt.expect > 0 ? opt.duration_s + opt.drain_s : opt.drain_s) * 1e9);
  uint64_t last_count = sh.received.load();
  uint64_t last_change = NowNs();
  while ((pub != nullptr || opt.expect > 0) && NowNs() < drain_deadline) {
    const uint64_t got = sh.received.load();
    if (got >= estimate) break;
    if (opt.expect > 0) {
      usleep(1000);
      continue;
    }
    if (got != last_count) {
      last_count = got;
      last_change = NowNs();
    } else if (NowNs() - last_change > 300000000ull) {
      break;
    }
    usleep(1000);
  }
  const double server_cpu1 = ProcCpuSeconds(opt.server_pids);
  const uint64_t rss_end = ProcRssBytes(opt.server_pids);
  const double gen_cpu2 = SelfCpuSeconds();
  sh.stop = true;
  for (std::thread& t : threads) t.join();

  ThreadResult total;
  uint64_t expected = 0, distinct = 0, duplicates = 0, reordered = 0, lost = 0;
  int slow = 0;
  for (auto& w : workers) {
    total.latency.Merge(w->result().latency);
    total.handshake.Merge(w->result().handshake);
    total.closed += w->result().closed;
    total.closed_4008 += w->result().closed_4008;
    total.frames_other += w->result().frames_other;
    total.last_recv_ns = std::max(total.last_recv_ns, w->result().last_recv_ns);
    if (w->result().first_recv_ns != 0 &&
        (total.first_recv_ns == 0 || w->result().first_recv_ns < total.first_recv_ns)) {
      total.first_recv_ns = w->result().first_recv_ns;
    }
    for (const Conn& c : w->conns()) {
      if (!c.was_ready) continue;
      if (c.slow) {
        ++slow;
        continue;
      }
      const uint64_t want = pr.per_channel.empty() ? 0 : pr.per_channel[c.chan];
      expected += want;
      distinct += c.distinct;
      duplicates += c.duplicates;
      reordered += c.reordered;
      if (want > c.distinct) lost += want - c.distinct;
    }
  }
  // A listener's window: its first delivery to its last.
  const double window_s =
      pub != nullptr
          ? static_cast<double>(std::max(total.last_recv_ns, pr.end_ns) - pr.start_ns) / 1e9
      : opt.expect > 0 && total.first_recv_ns != 0
          ? static_cast<double>(total.last_recv_ns - total.first_recv_ns) / 1e9
          : 0;
  const double server_cpu = server_cpu1 - server_cpu0;

  JsonObject out;
  out.Str("label", opt.label)
      .Int("subs", opt.subs)
      .Int("channels", opt.channels)
      .Int("ready", ready)
      .Int("connect_failed", opt.subs - ready)
      .Num("connect_s", connect_s)
      .Num("connect_per_s", connect_s > 0 ? ready / connect_s : 0)
      .Raw("handshake_latency", LatencyJson(total.handshake))
      .Int("tls", opt.tls ? 1 : 0)
      .Num("server_cpu_connect_s", server_cpu_connect)
      .Num("server_cpu_us_per_connect", ready > 0 ? server_cpu_connect * 1e6 / ready : 0)
      .Str("publish", opt.publish)
      .Int("pub_inflight", opt.pub_inflight)
      .Int("pub_connects", pub != nullptr ? pub->Connects() : 0)
      .Num("rate_target", pub != nullptr ? opt.rate : 0)
      .Int("published", pr.published)
      .Int("publish_errors", pr.errors)
      .Num("publish_rate", pub != nullptr && pr.end_ns > pr.start_ns
                               ? pr.published / (static_cast<double>(pr.end_ns - pr.start_ns) / 1e9)
                               : 0)
      .Num("publisher_max_lag_ms", static_cast<double>(pr.max_lag_ns) / 1e6)
      .Int("slow_subscribers", slow)
      .Int("expected", expected)
      .Int("deliveries", distinct)
      .Int("lost", lost)
      .Int("duplicates", duplicates)
      .Int("reordered", reordered)
      .Int("closed_by_server", total.closed)
      .Int("closed_4008", total.closed_4008)
      .Num("window_s", window_s)
      .Num("deliveries_per_s", window_s > 0 ? distinct / window_s : 0)
      .Raw("latency", LatencyJson(total.latency))
      .Num("server_cpu_s", server_cpu)
      .Num("server_cpu_us_per_delivery", distinct > 0 ? server_cpu * 1e6 / distinct : 0)
      .Int("server_rss_before", rss_before)
      .Int("server_rss_ready", rss_ready)
      .Int("server_rss_end", rss_end)
      .Num("server_rss_per_conn",
           ready > 0 ? (static_cast<double>(rss_ready) - static_cast<double>(rss_before)) / ready
                     : 0)
      .Num("gen_cpu_connect_s", gen_cpu1 - gen_cpu0)
      .Num("gen_cpu_publish_s", gen_cpu2 - gen_cpu1);
  std::printf("%s\n", out.Done().c_str());
  if (!opt.cdf_path.empty()) {
    std::ofstream cdf(opt.cdf_path);
    for (const auto& [v, f] : total.latency.Cdf())
      cdf << static_cast<double>(v) / 1000.0 << " " << f << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) { return herald::bench::Main(argc, argv); }
