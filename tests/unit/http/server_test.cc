// http::Server on a loopback socket, in process: the hand-over of a connection by
// Exchange::Upgrade (after every earlier reply, with the bytes read past the request), a refused
// upgrade closing its connection, a connection gone before the handler answered, and
// first_request_timeout against idle_timeout.
#include "server/http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "asio/executor_work_guard.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/post.hpp"
#include "asio/write.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kUpgradeRequest[] =
    "GET /ws HTTP/1.1\r\nHost: herald\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
constexpr char kSwitching[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
constexpr absl::Duration kWait = absl::Seconds(5);

// A blocking client socket on loopback whose reads wait with a deadline. Test thread only.
class Client {
 public:
  // `receive_buffer` > 0: SO_RCVBUF, so a client that does not read stops the server's writes
  // soon.
  explicit Client(uint16_t port, int receive_buffer = 0) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~Client() { Close(); }

  bool connected() const { return connected_; }
  const std::string& received() const { return received_; }
  bool eof() const { return eof_; }
  // The server reset the connection (ECONNRESET) rather than closing it with FIN.
  bool reset() const { return reset_; }

  bool Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until what was received contains `needle`; false at EOF or the deadline.
  bool ReadUntil(absl::string_view needle, absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(received_, needle)) {
      if (!ReadSome(deadline)) return false;
    }
    return true;
  }

  // Reads until `needle` has arrived `count` times, dropping what was read (for long replies):
  // how many times it arrived by EOF or the deadline.
  size_t ReadCount(absl::string_view needle, size_t count, absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    size_t seen = 0;
    for (;;) {
      size_t at = 0;
      while ((at = received_.find(needle.data(), at, needle.size())) != std::string::npos) {
        ++seen;
        at += needle.size();
      }
      // A needle cut in two by this read is found whole after the next.
      const size_t keep = needle.size() - 1;
      if (received_.size() > keep) received_.erase(0, received_.size() - keep);
      if (seen >= count || !ReadSome(deadline)) return seen;
    }
  }

  // Reads until the server closes (EOF or reset): false if it has not by the deadline.
  bool ReadToEof(absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!eof_) {
      if (!ReadSome(deadline) && !eof_) return false;
    }
    return true;
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  // One read; false at EOF or the deadline.
  bool ReadSome(absl::Time deadline) {
    if (eof_) return false;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) return false;
    char buffer[65536];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == ECONNRESET) reset_ = true;
    if (n <= 0) {
      eof_ = true;  // EOF, or a reset
      return false;
    }
    received_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  bool connected_ = false;
  bool eof_ = false;
  bool reset_ = false;
  std::string received_;
};

// What the new owner was given by Exchange::Upgrade.
struct Taken {
  asio::ip::tcp::socket socket;
  std::string leftover;
};

// A Server on its own I/O thread, accepting on an ephemeral loopback port. The handler the test
// sets runs on the I/O thread; what it records is read from the test thread under mu_.
class ServerUpgradeTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = ServerOptions()) {
    server_ = std::make_unique<Server>(&io_, options,
                                       [this](const Request& request, std::shared_ptr<Exchange> e) {
                                         {
                                           std::lock_guard<std::mutex> lock(mu_);
                                           requests_.push_back(request);
                                           exchanges_.push_back(e);
                                         }
                                         changed_.notify_all();
                                         if (handler_) handler_(request, e);
                                       });
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void Accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      server_->Adopt(std::move(socket), "127.0.0.1:1");
      Accept();
    });
  }

  // An UpgradeHandler that records what it is given; `then` runs first, on the I/O thread.
  UpgradeHandler Take(std::function<void(asio::ip::tcp::socket&)> then = nullptr) {
    return [this, then](asio::ip::tcp::socket socket, std::string leftover) {
      if (then) then(socket);
      {
        std::lock_guard<std::mutex> lock(mu_);
        taken_.push_back(Taken{std::move(socket), std::move(leftover)});
      }
      changed_.notify_all();
    };
  }

  // Waits until `done` holds (under mu_) or the deadline.
  template <typename Predicate>
  bool WaitFor(Predicate done, absl::Duration timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), done);
  }

  bool WaitForCount(size_t count, absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    while (server_->connection_count() != count) {
      if (absl::Now() > deadline) return false;
      // The count is an atomic the I/O thread changes: a round trip through the thread is the
      // wait.
      RunOnIo([] {});
    }
    return true;
  }

  // Runs `work` on the I/O thread and waits for it: everything posted or dispatched to the
  // thread before has run by then.
  void RunOnIo(std::function<void()> work) {
    bool ran = false;
    asio::post(io_, [&] {
      work();
      {
        std::lock_guard<std::mutex> lock(mu_);
        ran = true;
      }
      changed_.notify_all();
    });
    WaitFor([&] { return ran; });
  }

  size_t requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.size();
  }
  std::shared_ptr<Exchange> exchange(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return exchanges_.at(i);
  }
  size_t taken() {
    std::lock_guard<std::mutex> lock(mu_);
    return taken_.size();
  }

  // Declared first: destroyed last, after the sockets and the server that use it.
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  asio::ip::tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::unique_ptr<Server> server_;
  // Set before Start(); runs on the I/O thread after the request is recorded.
  Handler handler_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Request> requests_;
  std::vector<std::shared_ptr<Exchange>> exchanges_;
  std::vector<Taken> taken_;
  std::thread thread_;
};

TEST_F(ServerUpgradeTest, HandsTheSocketOverAndLeavesTheServer) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(kUpgradeRequest));
  ASSERT_TRUE(WaitFor([&] { return requests_.size() == 1; }));
  EXPECT_EQ(server_->connection_count(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_TRUE(requests_[0].upgrade);
    EXPECT_EQ(requests_[0].target, "/ws");
    EXPECT_EQ(requests_[0].body, "");
  }
  // From the test thread: Upgrade is thread-safe.
  exchange(0)->Upgrade("", Take());
  ASSERT_TRUE(WaitFor([&] { return taken_.size() == 1; }));
  EXPECT_EQ(server_->connection_count(), 0u);
  std::lock_guard<std::mutex> lock(mu_);
  Taken& taken = taken_[0];
  EXPECT_TRUE(taken.socket.is_open());
  EXPECT_EQ(taken.leftover, "");
  // The new owner writes first: the server wrote nothing.
  asio::error_code ec;
  asio::write(taken.socket, asio::buffer(std::string("new protocol")), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(client.ReadUntil("new protocol"));
  EXPECT_EQ(client.received(), "new protocol");
}

TEST_F(ServerUpgradeTest, BytesBehindTheRequestAreTheLeftover) {
  handler_ = [this](const Request&, std::shared_ptr<Exchange> e) { e->Upgrade("", Take()); };
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(std::string(kUpgradeRequest) + "0123456789"));
  ASSERT_TRUE(WaitFor([&] { return taken_.size() == 1; }));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(taken_[0].leftover, "0123456789");
  EXPECT_EQ(requests_.size(), 1u);
}

// Bytes that arrive while the handler decides are either read (leftover) or still in the
// socket: the new owner gets them all, in order.
TEST_F(ServerUpgradeTest, BytesSentWhileTheHandlerDecidesReachTheNewOwner) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(kUpgradeRequest));
  ASSERT_TRUE(WaitFor([&] { return requests_.size() == 1; }));
  ASSERT_TRUE(client.Send("0123456789"));
  exchange(0)->Upgrade("", Take());
  ASSERT_TRUE(WaitFor([&] { return taken_.size() == 1; }));
  std::lock_guard<std::mutex> lock(mu_);
  std::string got = taken_[0].leftover;
  asio::ip::tcp::socket& socket = taken_[0].socket;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < 10 && std::chrono::steady_clock::now() < deadline) {
    char buffer[16];
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    asio::error_code ec;
    const size_t n = socket.read_some(asio::buffer(buffer), ec);
    ASSERT_FALSE(ec) << ec.message();
    got.append(buffer, n);
  }
  EXPECT_EQ(got, "0123456789");
}

TEST_F(ServerUpgradeTest, EarlierPipelinedRepliesAreWrittenFirst) {
  handler_ = [this](const Request& request, std::shared_ptr<Exchange> e) {
    // /a is answered later, from the test thread; the upgrade at once.
    if (request.target == "/ws") {
      e->Upgrade("", Take([](asio::ip::tcp::socket& socket) {
                   asio::error_code ec;
                   asio::write(socket, asio::buffer(std::string("NEW")), ec);
                 }));
    }
  };
  Start();
  Client client(port_);
  ASSERT_TRUE(
      client.Send(std::string("GET /a HTTP/1.1\r\nHost: herald\r\n\r\n") + kUpgradeRequest));
  ASSERT_TRUE(WaitFor([&] { return requests_.size() == 2; }));
  RunOnIo([] {});
  EXPECT_EQ(taken(), 0u);  // /a is not answered yet
  Response a;
  a.body = "a";
  exchange(0)->Respond(std::move(a));
  ASSERT_TRUE(WaitFor([&] { return taken_.size() == 1; }));
  ASSERT_TRUE(client.ReadUntil("NEW"));
  EXPECT_EQ(client.received(), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naNEW");
  EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(ServerUpgradeTest, TheGivenResponseIsWrittenBeforeTheHandOver) {
  handler_ = [this](const Request&, std::shared_ptr<Exchange> e) {
    e->Upgrade(kSwitching, Take([](asio::ip::tcp::socket& socket) {
                 asio::error_code ec;
                 asio::write(socket, asio::buffer(std::string("FRAME")), ec);
               }));
  };
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(kUpgradeRequest));
  ASSERT_TRUE(client.ReadUntil("FRAME"));
  EXPECT_EQ(client.received(), std::string(kSwitching) + "FRAME");
}

TEST_F(ServerUpgradeTest, ARefusedUpgradeClosesTheConnection) {
  handler_ = [](const Request& request, std::shared_ptr<Exchange> e) {
    Response refusal;
    refusal.status = request.target == "/ws" ? 403 : 200;
    refusal.body = "no";
    e->Respond(std::move(refusal));
  };
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(std::string(kUpgradeRequest) + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_THAT(client.received(), StartsWith("HTTP/1.1 403 Forbidden\r\n"));
  EXPECT_THAT(client.received(), HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_EQ(client.received().find("HTTP/1.1", 1), std::string::npos) << client.received();
  EXPECT_EQ(requests(), 1u);  // /next was not parsed
  EXPECT_EQ(taken(), 0u);
}

TEST_F(ServerUpgradeTest, UpgradeOfAPlainRequestIsRefused) {
  handler_ = [this](const Request&, std::shared_ptr<Exchange> e) { e->Upgrade("", Take()); };
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_THAT(client.received(), StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
  EXPECT_THAT(client.received(), HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_EQ(taken(), 0u);
}

TEST_F(ServerUpgradeTest, NoHandOverOnceThePeerLeft) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(kUpgradeRequest));
  ASSERT_TRUE(WaitFor([&] { return requests_.size() == 1; }));
  client.Close();
  ASSERT_TRUE(WaitForCount(0));
  bool dropped = false;
  exchange(0)->Upgrade("HTTP/1.1 101 Switching Protocols\r\n\r\n",
                       [this, guard = std::shared_ptr<bool>(&dropped, [this](bool* d) {
                                std::lock_guard<std::mutex> lock(mu_);
                                *d = true;
                              })](asio::ip::tcp::socket socket, std::string leftover) {
                         Take()(std::move(socket), std::move(leftover));
                       });
  RunOnIo([] {});  // the Upgrade has run on the I/O thread
  EXPECT_EQ(taken(), 0u);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(dropped);  // the caller's objects were let go
}

TEST_F(ServerUpgradeTest, ASilentConnectionClosesAfterFirstRequestTimeout) {
  ServerOptions options;
  options.first_request_timeout = absl::Milliseconds(300);
  options.idle_timeout = absl::Seconds(10);
  handler_ = [](const Request&, std::shared_ptr<Exchange> e) { e->Respond(Response()); };
  Start(options);
  const absl::Time start = absl::Now();
  Client silent(port_);
  Client talker(port_);
  ASSERT_TRUE(talker.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(talker.ReadUntil("\r\n\r\n"));
  ASSERT_TRUE(silent.ReadToEof(absl::Seconds(2)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_EQ(silent.received(), "");
  // The connection that sent a request is under idle_timeout now: open past 300 ms.
  EXPECT_FALSE(talker.ReadToEof(absl::Milliseconds(700)));
  EXPECT_EQ(server_->connection_count(), 1u);
}

// A request whose head arrived in time is not cut off by first_request_timeout while its body
// is still coming: from the complete head on, only idle_timeout applies.
TEST_F(ServerUpgradeTest, ABodyStillArrivingAfterTheFirstHeadIsNotCutOff) {
  ServerOptions options;
  options.first_request_timeout = absl::Milliseconds(300);
  options.idle_timeout = absl::Seconds(10);
  handler_ = [](const Request& request, std::shared_ptr<Exchange> e) {
    Response response;
    response.body = request.body;
    e->Respond(std::move(response));
  };
  Start(options);
  Client client(port_);
  ASSERT_TRUE(client.Send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab"));
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(client.Send("cd"));
  absl::SleepFor(absl::Milliseconds(200));  // 400 ms in: past first_request_timeout
  ASSERT_TRUE(client.Send("ef"));
  ASSERT_TRUE(client.ReadUntil("abcdef")) << client.received();
  EXPECT_THAT(client.received(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(client.eof());
}

// Replies of 64 KB, a client that pipelines 1000 requests and reads nothing: the server stops
// reading requests once max_buffered_bytes of replies wait (the kernel's socket buffers hold a
// few MB more), rather than holding 64 MB of replies; they all arrive once the client reads.
TEST_F(ServerUpgradeTest, RepliesThePeerDoesNotReadStopTheReadingOfRequests) {
  ServerOptions options;
  options.max_buffered_bytes = 256 * 1024;
  handler_ = [](const Request&, std::shared_ptr<Exchange> e) {
    Response response;
    response.body = std::string(64 * 1024, 'r');
    e->Respond(std::move(response));
  };
  Start(options);
  Client client(port_, 16 * 1024);
  constexpr int kRequests = 1000;
  std::string pipelined;
  for (int i = 0; i < kRequests; ++i) pipelined += "GET /r HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_TRUE(client.Send(pipelined));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_LT(requests(), size_t{kRequests} / 2);
  // Reading now gets every reply.
  EXPECT_EQ(client.ReadCount("HTTP/1.1 200 OK\r\n", kRequests, absl::Seconds(30)),
            size_t{kRequests});
  EXPECT_EQ(requests(), size_t{kRequests});
}

// A connection idle because its peer stopped reading our replies is reset, not closed with a
// FIN that would wait behind the unsent bytes (FIN-WAIT-1, the bytes kept in the kernel).
TEST_F(ServerUpgradeTest, AnIdleConnectionThatDoesNotReadIsReset) {
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(300);
  handler_ = [](const Request&, std::shared_ptr<Exchange> e) {
    Response response;
    response.body = std::string(64 * 1024, 'r');
    e->Respond(std::move(response));
  };
  Start(options);
  Client stuck(port_, 16 * 1024);
  std::string pipelined;
  for (int i = 0; i < 200; ++i) pipelined += "GET /r HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_TRUE(stuck.Send(pipelined));
  ASSERT_TRUE(WaitForCount(1));
  ASSERT_TRUE(WaitForCount(0, absl::Seconds(5)));  // idle_timeout later, without a read
  ASSERT_TRUE(stuck.ReadToEof(absl::Seconds(10)));
  EXPECT_TRUE(stuck.reset());
  // A client that reads its reply and is then idle gets a plain FIN.
  Client idle(port_);
  ASSERT_TRUE(idle.Send("GET /r HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(idle.ReadToEof(absl::Seconds(5)));
  EXPECT_FALSE(idle.reset());
  EXPECT_THAT(idle.received(), StartsWith("HTTP/1.1 200 OK\r\n"));
  // As does one whose last reply says Connection: close.
  Client closing(port_);
  ASSERT_TRUE(closing.Send("GET /r HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(closing.ReadToEof(absl::Seconds(5)));
  EXPECT_FALSE(closing.reset());
  EXPECT_THAT(closing.received(), HasSubstr("Connection: close\r\n"));
}

}  // namespace
}  // namespace herald::http
