#include "tests/support/ws_client.h"

#include <random>

#include "absl/time/clock.h"
#include "server/core/protocol.h"

namespace herald::testing {

WsClient::WsClient() {
  client_.clear_access_channels(websocketpp::log::alevel::all);
  client_.clear_error_channels(websocketpp::log::elevel::all);
  websocketpp::lib::error_code ec;
  client_.init_asio(ec);
  client_.set_max_message_size(64 << 20);
  client_.start_perpetual();
  client_.set_open_handler([this](websocketpp::connection_hdl) {
    absl::MutexLock lock(&mu_);
    opened_ = true;
  });
  client_.set_message_handler([this](websocketpp::connection_hdl, Client::message_ptr msg) {
    v1::ServerFrame frame;
    absl::Status st = core::FromJson(msg->get_payload(), &frame, 64);
    EXPECT_TRUE(st.ok()) << "server sent a frame that is not a ServerFrame: " << msg->get_payload()
                         << ": " << st;
    absl::MutexLock lock(&mu_);
    if (frame.has_pub()) ++publication_count_;
    frames_.push_back(std::move(frame));
    texts_.push_back(msg->get_payload());
  });
  auto ended = [this](websocketpp::connection_hdl hdl) {
    websocketpp::lib::error_code ec;
    Client::connection_ptr con = client_.get_con_from_hdl(hdl, ec);
    absl::MutexLock lock(&mu_);
    ended_ = true;
    if (con) {
      close_code_ = con->get_remote_close_code();
      close_reason_ = con->get_remote_close_reason();
      http_status_ = con->get_response().get_status_code();
    }
  };
  client_.set_close_handler(ended);
  client_.set_fail_handler(ended);
  thread_ = std::thread([this] { client_.run(); });
}

WsClient::~WsClient() {
  client_.stop_perpetual();
  if (open()) {
    websocketpp::lib::error_code ec;
    client_.close(hdl_, websocketpp::close::status::going_away, "", ec);
    WaitClosed(absl::Seconds(2));
  }
  client_.stop();
  thread_.join();
}

bool WsClient::Connect(const std::string& url, const Headers& headers, bool expect_welcome) {
  websocketpp::lib::error_code ec;
  Client::connection_ptr con = client_.get_connection(url, ec);
  if (ec) {
    ADD_FAILURE() << "bad url " << url << ": " << ec.message();
    return false;
  }
  for (const auto& [name, value] : headers) con->append_header(name, value);
  hdl_ = con->get_handle();
  client_.connect(con);
  absl::MutexLock lock(&mu_);
  // Conditions run with mu_ held (Await); AssertHeld tells the thread-safety analysis so.
  auto done = [this] {
    mu_.AssertHeld();
    return opened_ || ended_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  if (!opened_) return false;
  if (!expect_welcome) return true;
  auto welcomed = [this] {
    mu_.AssertHeld();
    return !frames_.empty() || ended_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&welcomed), absl::Seconds(10));
  return !frames_.empty() && frames_[0].has_welcome();
}

void WsClient::Send(const std::string& text) {
  websocketpp::lib::error_code ec;
  client_.send(hdl_, text, websocketpp::frame::opcode::text, ec);
  EXPECT_FALSE(ec) << ec.message();
}

void WsClient::SendBinary(const std::string& bytes) {
  websocketpp::lib::error_code ec;
  client_.send(hdl_, bytes, websocketpp::frame::opcode::binary, ec);
  EXPECT_FALSE(ec) << ec.message();
}

void WsClient::SendRawText(const std::string& bytes) {
  namespace frame = websocketpp::frame;
  websocketpp::lib::error_code ec;
  Client::connection_ptr con = client_.get_con_from_hdl(hdl_, ec);
  ASSERT_FALSE(ec);
  auto msg = con->get_message(frame::opcode::text, bytes.size());
  frame::masking_key_type key;
  key.i = std::random_device()();
  msg->set_header(
      frame::prepare_header(frame::basic_header(frame::opcode::text, bytes.size(), true, true),
                            frame::extended_header(bytes.size(), key.i)));
  std::string masked = bytes;
  for (size_t i = 0; i < masked.size(); ++i) masked[i] ^= key.c[i % 4];
  msg->set_payload(masked);
  msg->set_prepared(true);
  ec = con->send(msg);
  EXPECT_FALSE(ec) << ec.message();
}

void WsClient::Close(int code, const std::string& reason) {
  websocketpp::lib::error_code ec;
  client_.close(hdl_, static_cast<websocketpp::close::status::value>(code), reason, ec);
}

v1::ServerFrame WsClient::WaitReply(uint32_t id, absl::Duration timeout) {
  return WaitFrame([id](const v1::ServerFrame& f) { return f.id() == id; },
                   "reply " + std::to_string(id), timeout);
}

bool WsClient::Subscribe(const std::string& channel, uint32_t id) {
  Send(R"({"id":)" + std::to_string(id) + R"(,"subscribe":{"channel":")" + channel + R"("}})");
  v1::ServerFrame reply = WaitReply(id);
  return reply.has_subscribed() && reply.subscribed().channel() == channel;
}

bool WsClient::WaitClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ended = [this] {
    mu_.AssertHeld();
    return ended_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
}

std::vector<v1::ServerFrame> WsClient::Frames() const {
  absl::MutexLock lock(&mu_);
  return frames_;
}

std::vector<std::string> WsClient::Texts() const {
  absl::MutexLock lock(&mu_);
  return texts_;
}

std::vector<v1::ServerFrame> WsClient::Publications() const {
  std::vector<v1::ServerFrame> out;
  for (auto& f : Frames()) {
    if (f.has_pub()) out.push_back(f);
  }
  return out;
}

size_t WsClient::publication_count() const {
  absl::MutexLock lock(&mu_);
  return publication_count_;
}

std::string WsClient::connection_id() const {
  absl::MutexLock lock(&mu_);
  return !frames_.empty() && frames_[0].has_welcome() ? frames_[0].welcome().connection_id() : "";
}

int WsClient::close_code() const {
  absl::MutexLock lock(&mu_);
  return close_code_;
}

std::string WsClient::close_reason() const {
  absl::MutexLock lock(&mu_);
  return close_reason_;
}

int WsClient::http_status() const {
  absl::MutexLock lock(&mu_);
  return http_status_;
}

bool WsClient::open() const {
  absl::MutexLock lock(&mu_);
  return opened_ && !ended_;
}

}  // namespace herald::testing
