#ifndef HERALD_TESTS_SUPPORT_WS_CLIENT_H_
#define HERALD_TESTS_SUPPORT_WS_CLIENT_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "herald/v1/client.pb.h"

namespace herald::testing {

// A real WebSocket client (websocketpp, own io thread) for integration tests. Collects every
// text frame it receives, parsed as herald.v1.ServerFrame, and how the connection ended.
// Thread-safe; every wait has a deadline.
class WsClient {
 public:
  using Headers = std::map<std::string, std::string>;

  WsClient();
  ~WsClient();

  // Connects and waits for the handshake (and, when `expect_welcome`, the welcome frame).
  // False on failure; then http_status() says what the server answered.
  bool Connect(const std::string& url, const Headers& headers = {}, bool expect_welcome = true);

  void Send(const std::string& text);
  void SendBinary(const std::string& bytes);
  // Sends a text frame whose payload is not checked for UTF-8 (websocketpp's own send refuses
  // invalid UTF-8), to test the server's validation.
  void SendRawText(const std::string& bytes);
  void Close(int code = 1000, const std::string& reason = "");

  // Waits until a received frame satisfies `pred`; returns it (or an empty frame on timeout,
  // recording a test failure with `what`).
  template <typename Pred>
  v1::ServerFrame WaitFrame(Pred pred, const std::string& what,
                            absl::Duration timeout = absl::Seconds(10));
  // Waits for the reply with request id `id`.
  v1::ServerFrame WaitReply(uint32_t id, absl::Duration timeout = absl::Seconds(10));
  // Sends subscribe with `id` and waits for its `subscribed` reply.
  bool Subscribe(const std::string& channel, uint32_t id = 1);
  // Waits until the connection is closed; true when it closed within the timeout.
  bool WaitClosed(absl::Duration timeout = absl::Seconds(10));

  std::vector<v1::ServerFrame> Frames() const;
  // Every text frame as it came, byte for byte (Frames() holds them parsed).
  std::vector<std::string> Texts() const;
  std::vector<v1::ServerFrame> Publications() const;
  size_t publication_count() const;  // cheap: no copy
  std::string connection_id() const;
  int close_code() const;  // the code the server sent, 0 while open
  std::string close_reason() const;
  int http_status() const;  // handshake response status
  bool open() const;

 private:
  using Client = websocketpp::client<websocketpp::config::asio_client>;

  Client client_;
  std::thread thread_;
  websocketpp::connection_hdl hdl_;

  mutable absl::Mutex mu_;
  std::vector<v1::ServerFrame> frames_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> texts_ ABSL_GUARDED_BY(mu_);
  size_t publication_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool opened_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  int close_code_ ABSL_GUARDED_BY(mu_) = 0;
  std::string close_reason_ ABSL_GUARDED_BY(mu_);
  int http_status_ ABSL_GUARDED_BY(mu_) = 0;
};

template <typename Pred>
v1::ServerFrame WsClient::WaitFrame(Pred pred, const std::string& what, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  size_t checked = 0;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    for (; checked < frames_.size(); ++checked) {
      if (pred(frames_[checked])) return frames_[checked];
    }
    auto more = [&] {
      mu_.AssertHeld();  // Await runs the condition with mu_ held
      return frames_.size() > checked || ended_;
    };
    if (!(ended_ && checked == frames_.size()) &&
        mu_.AwaitWithDeadline(absl::Condition(&more), deadline)) {
      continue;
    }
    ADD_FAILURE() << "timed out waiting for " << what;
    return v1::ServerFrame();
  }
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_WS_CLIENT_H_
