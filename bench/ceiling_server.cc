// ceiling_server: the least work a WebSocket broadcast server can do, as a yardstick for Herald.
//
// Accepts WebSocket handshakes on any path (Sec-WebSocket-Accept from OpenSSL's SHA1 and EVP
// base64), ignores everything clients send, and for every UDP datagram received on the trigger
// port writes one pre-built text frame carrying the datagram to every open socket. One epoll
// loop per thread, each with its own SO_REUSEPORT listener and its own connections; thread 0 reads
// the trigger and hands the frame to the others through an eventfd. A socket whose unsent backlog
// exceeds --max-backlog bytes is closed (like Herald's slow-consumer limit), so memory is bounded.
//
// usage: ceiling_server --port P --trigger-port U [--threads N] [--max-backlog BYTES]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using FramePtr = std::shared_ptr<const std::string>;

struct Conn {
  int fd = -1;
  bool open = false;   // handshake done
  std::string in;      // handshake bytes until the blank line
  std::string out;     // unsent bytes
  size_t out_pos = 0;  // first unsent byte of `out`
};

size_t g_max_backlog = 8 << 20;
std::atomic<bool> g_stop{false};

std::string AcceptKey(const std::string& key) {
  const std::string src = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(src.data()), src.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

std::string MakeFrame(const char* data, size_t n) {
  std::string f;
  f.reserve(n + 10);
  f.push_back(static_cast<char>(0x81));
  if (n < 126) {
    f.push_back(static_cast<char>(n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  f.append(data, n);
  return f;
}

int Listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4096) != 0) {
    std::fprintf(stderr, "ceiling_server: cannot listen on 127.0.0.1:%d: %s\n", port,
                 std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

class Loop {
 public:
  Loop(int port, int trigger_fd) : listen_fd_(Listener(port)), trigger_fd_(trigger_fd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    Add(listen_fd_, EPOLLIN, kListen);
    Add(wake_fd_, EPOLLIN, kWake);
    if (trigger_fd_ >= 0) Add(trigger_fd_, EPOLLIN, kTrigger);
  }

  void set_peers(std::vector<Loop*> peers) { peers_ = std::move(peers); }

  // Called from the trigger thread: queue a frame for this loop.
  void Post(FramePtr frame) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(std::move(frame));
    }
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }

  void Run() {
    std::vector<epoll_event> events(1024);
    while (!g_stop.load(std::memory_order_relaxed)) {
      const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 200);
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kListen) {
          AcceptAll();
        } else if (tag == kWake) {
          uint64_t v;
          (void)!read(wake_fd_, &v, sizeof v);
          std::vector<FramePtr> frames;
          {
            std::lock_guard<std::mutex> lock(mu_);
            frames.swap(pending_);
          }
          for (const FramePtr& f : frames) Broadcast(*f);
        } else if (tag == kTrigger) {
          ReadTrigger();
        } else {
          OnConn(static_cast<int>(tag), events[i].events);
        }
      }
    }
  }

 private:
  static constexpr uint64_t kListen = 1ull << 40, kWake = (1ull << 40) + 1,
                            kTrigger = (1ull << 40) + 2;

  void Add(int fd, uint32_t events, uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void AcceptAll() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 1024);
      conns_[fd] = std::make_unique<Conn>();
      conns_[fd]->fd = fd;
      Add(fd, EPOLLIN, static_cast<uint64_t>(fd));
    }
  }

  void ReadTrigger() {
    char buf[65536];
    for (;;) {
      const ssize_t n = recv(trigger_fd_, buf, sizeof buf, 0);
      if (n < 0) return;
      auto frame = std::make_shared<const std::string>(MakeFrame(buf, static_cast<size_t>(n)));
      for (Loop* peer : peers_) {
        if (peer != this) peer->Post(frame);
      }
      Broadcast(*frame);
    }
  }

  void Close(Conn& c) {
    close(c.fd);
    open_.erase(std::remove(open_.begin(), open_.end(), c.fd), open_.end());
    conns_[c.fd].reset();
  }

  void OnConn(int fd, uint32_t events) {
    Conn* c = static_cast<size_t>(fd) < conns_.size() ? conns_[fd].get() : nullptr;
    if (c == nullptr) return;
    if (events & EPOLLOUT) {
      if (!Flush(*c)) return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      Close(*c);
      return;
    }
    if (n < 0 || c->open) return;  // client frames are ignored
    c->in.append(buf, static_cast<size_t>(n));
    const size_t end = c->in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c->in.size() > 8192) Close(*c);
      return;
    }
    std::string key;
    size_t pos = 0;
    while ((pos = c->in.find("\r\n", pos)) != std::string::npos && pos < end) {
      pos += 2;
      static const char kHeader[] = "sec-websocket-key:";
      if (strncasecmp(c->in.c_str() + pos, kHeader, sizeof kHeader - 1) == 0) {
        size_t v = pos + sizeof kHeader - 1;
        while (c->in[v] == ' ') ++v;
        key = c->in.substr(v, c->in.find("\r\n", v) - v);
      }
    }
    if (key.empty()) {
      static const char kBad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      (void)!write(fd, kBad, sizeof kBad - 1);
      Close(*c);
      return;
    }
    const std::string resp =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        AcceptKey(key) + "\r\n\r\n";
    std::string().swap(c->in);
    c->open = true;
    open_.push_back(fd);
    Queue(*c, resp.data(), resp.size());
  }

  // Writes what it can; keeps the rest. False when the connection was closed.
  bool Queue(Conn& c, const char* data, size_t n) {
    if (c.out.size() == c.out_pos) {
      const ssize_t w = write(c.fd, data, n);
      if (w == static_cast<ssize_t>(n)) return true;
      if (w < 0 && errno != EAGAIN) {
        Close(c);
        return false;
      }
      const size_t done = w > 0 ? static_cast<size_t>(w) : 0;
      c.out.assign(data + done, n - done);
      c.out_pos = 0;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u64 = static_cast<uint64_t>(c.fd);
      epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      return true;
    }
    if (c.out.size() - c.out_pos + n > g_max_backlog) {
      Close(c);
      return false;
    }
    c.out.append(data, n);
    return true;
  }

  bool Flush(Conn& c) {
    while (c.out_pos < c.out.size()) {
      const ssize_t w = write(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos);
      if (w < 0) {
        if (errno == EAGAIN) return true;
        Close(c);
        return false;
      }
      c.out_pos += static_cast<size_t>(w);
    }
    std::string().swap(c.out);
    c.out_pos = 0;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(c.fd);
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    return true;
  }

  void Broadcast(const std::string& frame) {
    // Iterate over a copy of the ids: Queue() may close (and unlist) a connection.
    ids_ = open_;
    for (int fd : ids_) {
      if (conns_[fd] != nullptr) Queue(*conns_[fd], frame.data(), frame.size());
    }
  }

  const int listen_fd_;
  const int trigger_fd_;
  int ep_ = -1;
  int wake_fd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<int> open_;
  std::vector<int> ids_;
  std::vector<Loop*> peers_;
  std::mutex mu_;
  std::vector<FramePtr> pending_;
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  int port = 0, trigger_port = 0;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (a == "--trigger-port") {
      trigger_port = std::atoi(argv[i + 1]);
    } else if (a == "--threads") {
      threads = std::max(1, std::atoi(argv[i + 1]));
    } else if (a == "--max-backlog") {
      g_max_backlog = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: ceiling_server --port P --trigger-port U [--threads N]\n");
      return 2;
    }
  }
  if (port == 0 || trigger_port == 0) {
    std::fprintf(stderr, "ceiling_server: --port and --trigger-port are required\n");
    return 2;
  }
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(trigger_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int big = 4 << 20;
  setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::fprintf(stderr, "ceiling_server: cannot bind udp 127.0.0.1:%d\n", trigger_port);
    return 1;
  }
  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < threads; ++t)
    loops.push_back(std::make_unique<Loop>(port, t == 0 ? udp : -1));
  std::vector<Loop*> all;
  for (auto& l : loops) all.push_back(l.get());
  for (auto& l : loops) l->set_peers(all);
  std::printf("ws listening on 127.0.0.1:%d\ntrigger udp 127.0.0.1:%d\n", port, trigger_port);
  std::fflush(stdout);
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  std::vector<std::thread> pool;
  for (auto& l : loops) pool.emplace_back([&l] { l->Run(); });
  for (auto& t : pool) t.join();
  return 0;
}
