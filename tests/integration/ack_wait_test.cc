// Publish calls that wait for a client's ack (ack.wait_ms) finish by completion: against the real
// herald, a pending wait holds no thread — not the I/O thread that serves WebSockets and HTTP
// (--threads 1), not a gRPC thread — and the wait ends at the first ack or at its deadline.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/herald_process.h"
#include "tests/support/ws_client.h"

namespace herald::testing {
namespace {

// One HTTP/1.1 exchange over a plain socket, timed from connect to the end of the response (no
// curl process in the measurement).
struct TimedHttp {
  int status = 0;  // 0: no response
  std::string body;
  absl::Duration elapsed;
};

TimedHttp Exchange(const std::string& address, const std::string& method, const std::string& path,
                   const std::string& body = "", absl::Duration timeout = absl::Seconds(10)) {
  TimedHttp out;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  std::pair<std::string, std::string> host_port = absl::StrSplit(address, ':');
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host_port.first.c_str(), host_port.second.c_str(), &hints, &res) != 0) {
    return out;
  }
  const int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  const bool connected = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  if (!connected) {
    if (fd >= 0) close(fd);
    return out;
  }
  std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", address, "\r\nConnection: close\r\n");
  if (method == "POST") {
    absl::StrAppend(&request, "Content-Type: application/json\r\nContent-Length: ", body.size(),
                    "\r\n");
  }
  absl::StrAppend(&request, "\r\n", body);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  // herald closes the connection after each HTTP response.
  std::string response;
  char buf[4096];
  while (true) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  out.elapsed = absl::Now() - start;
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) return out;
  std::vector<std::string> status_line = absl::StrSplit(response.substr(0, head_end), ' ');
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &out.status)) return out;
  out.body = response.substr(head_end + 4);
  return out;
}

// A thread joined on destruction, so a failed assertion cannot leave it running.
class JoinedThread {
 public:
  template <typename Fn>
  explicit JoinedThread(Fn fn) : thread_(std::move(fn)) {}
  ~JoinedThread() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

v1::PublishResponse ParsePublish(const std::string& json) {
  v1::PublishResponse resp;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &resp).ok()) << json;
  return resp;
}

v1::PublishRequest PublishReq(const std::string& channel, uint32_t wait_ms) {
  v1::PublishRequest req;
  req.set_channel(channel);
  req.mutable_data()->set_string_value("where are you?");
  if (wait_ms > 0) req.mutable_ack()->set_wait_ms(wait_ms);
  return req;
}

std::string PublishJson(const std::string& channel, uint32_t wait_ms) {
  return absl::StrCat(R"({"channel":")", channel, R"(","data":{"n":1})",
                      wait_ms > 0 ? absl::StrCat(R"(,"ack":{"waitMs":)", wait_ms, "}") : "", "}");
}

// A gRPC Publish in flight on the callback API, timed from start to reply.
class AsyncPublish {
 public:
  AsyncPublish(v1::Broker::Stub& stub, const v1::PublishRequest& req) : start_(absl::Now()) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stub.async()->Publish(&ctx_, &req, &resp_, [this](grpc::Status st) {
      absl::MutexLock lock(&mu_);
      status_ = std::move(st);
      elapsed_ = absl::Now() - start_;
      done_ = true;
    });
  }
  ~AsyncPublish() { Wait(absl::Seconds(30)); }

  // Waits for the reply; false on timeout.
  bool Wait(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }
  bool done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  // Valid after Wait() returned true.
  const grpc::Status& status() const { return status_; }
  const v1::PublishResponse& response() const { return resp_; }
  absl::Duration elapsed() const { return elapsed_; }

 private:
  const absl::Time start_;
  grpc::ClientContext ctx_;
  v1::PublishResponse resp_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_;
  absl::Duration elapsed_;
};

// Times one plain gRPC Publish (no ack wait).
absl::Duration TimePlainGrpcPublish(v1::Broker::Stub& stub, const std::string& channel) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::PublishResponse resp;
  const absl::Time start = absl::Now();
  EXPECT_TRUE(stub.Publish(&ctx, PublishReq(channel, 0), &resp).ok());
  return absl::Now() - start;
}

// Checks that /healthz, a plain HTTP Publish and a plain gRPC Publish answer at once.
void ExpectOtherCallsAnswerAtOnce(const HeraldProcess& herald, v1::Broker::Stub& stub) {
  TimedHttp health = Exchange(herald.ws_address(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_LT(health.elapsed, absl::Milliseconds(200)) << "/healthz";
  TimedHttp plain =
      Exchange(herald.ws_address(), "POST", "/api/v1/Publish", PublishJson("elsewhere", 0));
  EXPECT_EQ(plain.status, 200) << plain.body;
  EXPECT_LT(plain.elapsed, absl::Milliseconds(200)) << "POST /api/v1/Publish";
  EXPECT_LT(TimePlainGrpcPublish(stub, "elsewhere"), absl::Milliseconds(200)) << "gRPC Publish";
}

// The publication a subscriber was sent with an ack request, within `timeout`.
v1::ServerFrame WaitAckRequest(WsClient& client, absl::Duration timeout) {
  return client.WaitFrame(
      [](const v1::ServerFrame& f) { return f.has_pub() && f.pub().ack_requested(); },
      "publication with ackRequested", timeout);
}

void SendAck(WsClient& client, const v1::Publication& pub) {
  client.Send(absl::StrCat(R"({"id":77,"ack":{"channel":")", pub.channel(), R"(","offset":")",
                           pub.offset(), R"("}})"));
}

TEST(AckWaitTest, OverHttpThePublicationArrivesAtOnceAndTheAckAnswersTheCall) {
  HeraldProcess herald({"--threads", "1"});
  ASSERT_TRUE(herald.ok());
  WsClient alice;
  ASSERT_TRUE(alice.Connect(herald.ws_url()));
  ASSERT_TRUE(alice.Subscribe("customer:alice"));

  TimedHttp reply;
  const absl::Time start = absl::Now();
  JoinedThread caller([&] {
    reply = Exchange(herald.ws_address(), "POST", "/api/v1/Publish",
                     PublishJson("customer:alice", 3000));
  });
  v1::ServerFrame pub = WaitAckRequest(alice, absl::Seconds(1));
  const absl::Duration delivered_after = absl::Now() - start;
  ASSERT_TRUE(pub.has_pub());
  EXPECT_LT(delivered_after, absl::Milliseconds(500));
  SendAck(alice, pub.pub());
  caller.Join();
  ASSERT_EQ(reply.status, 200) << reply.body;
  v1::PublishResponse resp = ParsePublish(reply.body);
  EXPECT_TRUE(resp.ack().acked());
  EXPECT_EQ(resp.ack().connection_id(), alice.connection_id());
  EXPECT_EQ(resp.ack().offset(), pub.pub().offset());
  EXPECT_LT(reply.elapsed, absl::Seconds(1)) << "the ack, not the deadline, ended the wait";
  EXPECT_TRUE(alice.WaitReply(77).has_acked());
}

TEST(AckWaitTest, OverHttpAPendingWaitDelaysNothingAndEndsAtItsDeadline) {
  HeraldProcess herald({"--threads", "1"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  WsClient bob;  // receives the publication and never acks
  ASSERT_TRUE(bob.Connect(herald.ws_url()));
  ASSERT_TRUE(bob.Subscribe("customer:bob"));
  ExpectOtherCallsAnswerAtOnce(herald, *stub);  // warm: the gRPC channel is connected

  TimedHttp reply;
  JoinedThread caller([&] {
    reply =
        Exchange(herald.ws_address(), "POST", "/api/v1/Publish", PublishJson("customer:bob", 3000));
  });
  // Delivered: the wait is registered and pending.
  ASSERT_TRUE(WaitAckRequest(bob, absl::Seconds(1)).has_pub());
  ExpectOtherCallsAnswerAtOnce(herald, *stub);
  caller.Join();
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_FALSE(ParsePublish(reply.body).ack().acked());
  EXPECT_GE(reply.elapsed, absl::Milliseconds(2900));
  EXPECT_LT(reply.elapsed, absl::Milliseconds(4500));
}

TEST(AckWaitTest, OverGrpcThePublicationArrivesAtOnceAndTheAckAnswersTheCall) {
  HeraldProcess herald({"--threads", "1"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  WsClient alice;
  ASSERT_TRUE(alice.Connect(herald.ws_url()));
  ASSERT_TRUE(alice.Subscribe("customer:alice"));
  TimePlainGrpcPublish(*stub, "warm-up");

  const absl::Time start = absl::Now();
  AsyncPublish call(*stub, PublishReq("customer:alice", 3000));
  v1::ServerFrame pub = WaitAckRequest(alice, absl::Seconds(1));
  ASSERT_TRUE(pub.has_pub());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  SendAck(alice, pub.pub());
  ASSERT_TRUE(call.Wait());
  ASSERT_TRUE(call.status().ok()) << call.status().error_message();
  EXPECT_TRUE(call.response().ack().acked());
  EXPECT_EQ(call.response().ack().connection_id(), alice.connection_id());
  EXPECT_EQ(call.response().ack().channel(), "customer:alice");
  EXPECT_LT(call.elapsed(), absl::Seconds(1));
}

TEST(AckWaitTest, OverGrpcAPendingWaitDelaysNothingAndEndsAtItsDeadline) {
  HeraldProcess herald({"--threads", "1"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  WsClient bob;
  ASSERT_TRUE(bob.Connect(herald.ws_url()));
  ASSERT_TRUE(bob.Subscribe("customer:bob"));
  ExpectOtherCallsAnswerAtOnce(herald, *stub);

  AsyncPublish call(*stub, PublishReq("customer:bob", 3000));
  ASSERT_TRUE(WaitAckRequest(bob, absl::Seconds(1)).has_pub());
  EXPECT_FALSE(call.done());
  ExpectOtherCallsAnswerAtOnce(herald, *stub);
  ASSERT_TRUE(call.Wait());
  ASSERT_TRUE(call.status().ok()) << call.status().error_message();
  EXPECT_FALSE(call.response().ack().acked());
  EXPECT_GE(call.elapsed(), absl::Milliseconds(2900));
  EXPECT_LT(call.elapsed(), absl::Milliseconds(4500));
}

TEST(AckWaitTest, EightPendingGrpcWaitsDoNotDelayANinthCall) {
  HeraldProcess herald;
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  WsClient silent;  // gets every publication, acks none
  ASSERT_TRUE(silent.Connect(herald.ws_url()));
  ASSERT_TRUE(silent.Subscribe("silent"));
  TimePlainGrpcPublish(*stub, "warm-up");

  std::vector<std::unique_ptr<AsyncPublish>> waits;
  for (int i = 0; i < 8; ++i) {
    waits.push_back(std::make_unique<AsyncPublish>(*stub, PublishReq("silent", 3000)));
  }
  // All eight published (so all eight waits are pending) before the ninth call.
  ASSERT_TRUE(WaitFor([&] { return silent.publication_count() == 8; }, absl::Seconds(2)));
  for (const auto& w : waits) EXPECT_FALSE(w->done());
  EXPECT_LT(TimePlainGrpcPublish(*stub, "other"), absl::Milliseconds(500));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::StatsResponse stats;
  const absl::Time start = absl::Now();
  EXPECT_TRUE(stub->Stats(&ctx, v1::StatsRequest(), &stats).ok());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));

  for (const auto& w : waits) {
    ASSERT_TRUE(w->Wait());
    ASSERT_TRUE(w->status().ok()) << w->status().error_message();
    EXPECT_FALSE(w->response().ack().acked());
    EXPECT_GE(w->elapsed(), absl::Milliseconds(2900));
    EXPECT_LT(w->elapsed(), absl::Milliseconds(4500));
  }
}

TEST(AckWaitTest, APublishStreamRequestThatWaitsHoldsBackOnlyItsOwnStream) {
  HeraldProcess herald({"--threads", "1"});
  ASSERT_TRUE(herald.ok());
  auto stub = herald.Stub();
  WsClient alice;
  ASSERT_TRUE(alice.Connect(herald.ws_url()));
  ASSERT_TRUE(alice.Subscribe("customer:alice"));
  TimePlainGrpcPublish(*stub, "warm-up");

  // A batch whose first publication waits for an ack: the second follows once alice acks.
  v1::PublishStreamRequest batch;
  *batch.mutable_batch()->add_requests()->mutable_publish() = PublishReq("customer:alice", 3000);
  *batch.mutable_batch()->add_requests()->mutable_publish() = PublishReq("customer:alice", 0);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::PublishStreamSummary summary;
  auto writer = stub->PublishStream(&ctx, &summary);
  ASSERT_TRUE(writer->Write(batch));
  v1::ServerFrame first = WaitAckRequest(alice, absl::Seconds(1));
  ASSERT_TRUE(first.has_pub());
  EXPECT_LT(TimePlainGrpcPublish(*stub, "other"), absl::Milliseconds(200));
  EXPECT_EQ(alice.publication_count(), 1u) << "the second waits for the first's ack";
  SendAck(alice, first.pub());
  ASSERT_TRUE(WaitFor([&] { return alice.publication_count() == 2; }, absl::Seconds(2)));
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(summary.publications(), 2u);
  EXPECT_EQ(summary.queued(), 2u);
}

}  // namespace
}  // namespace herald::testing
