#ifndef HERALD_SERVER_WS_RELEASABLE_MESSAGE_H_
#define HERALD_SERVER_WS_RELEASABLE_MESSAGE_H_

#include <istream>
#include <memory>
#include <string>
#include <utility>

#include <websocketpp/http/request.hpp>
#include <websocketpp/http/response.hpp>

namespace herald::ws {

// A websocketpp HTTP message (websocketpp::http::parser::request or ::response) that can give
// its memory back once the handshake is over: the config's request_type and response_type
// (ws_config.h), websocketpp's public way to choose the message types of a connection. Every
// connection keeps its handshake request and response for its whole life, though nothing reads
// them after open; Release() frees the parsed message (header map, strings, body), about 1 KB of
// an idle connection. It is called on the `const&` that connection::get_request() and
// get_response() give, hence const, like dropping a cache: after it the message reads as newly
// made (no headers, empty strings), and a later use makes a new empty one. Everything else
// forwards to the websocketpp message. Not thread-safe, like the message it wraps: used on the
// connection's I/O thread only.
template <typename Message>
class ReleasableMessage {
 public:
  typedef std::shared_ptr<ReleasableMessage> ptr;

  ReleasableMessage() = default;
  ReleasableMessage(const ReleasableMessage& other)
      : message_(other.message_ ? std::make_unique<Message>(*other.message_) : nullptr) {}
  ReleasableMessage& operator=(const ReleasableMessage& other) {
    message_ = other.message_ ? std::make_unique<Message>(*other.message_) : nullptr;
    return *this;
  }

  // Frees the message; it reads as empty from now on.
  void Release() const { message_.reset(); }
  bool released() const { return message_ == nullptr; }

  // websocketpp's message interface (http/parser.hpp, request.hpp, response.hpp), as used by
  // its connection and processors.
  size_t consume(const char* buf, size_t len) { return Get().consume(buf, len); }
  size_t consume(std::istream& s) { return Get().consume(s); }
  bool ready() const { return Get().ready(); }
  bool headers_ready() const { return Get().headers_ready(); }
  std::string raw() const { return Get().raw(); }
  const std::string& get_version() const { return Get().get_version(); }
  void set_version(const std::string& version) { Get().set_version(version); }
  const std::string& get_header(const std::string& key) const { return Get().get_header(key); }
  bool get_header_as_plist(const std::string& key, websocketpp::http::parameter_list& out) const {
    return Get().get_header_as_plist(key, out);
  }
  void append_header(const std::string& key, const std::string& val) {
    Get().append_header(key, val);
  }
  void replace_header(const std::string& key, const std::string& val) {
    Get().replace_header(key, val);
  }
  void remove_header(const std::string& key) { Get().remove_header(key); }
  const std::string& get_body() const { return Get().get_body(); }
  void set_body(const std::string& value) { Get().set_body(value); }
  size_t get_max_body_size() const { return Get().get_max_body_size(); }
  void set_max_body_size(size_t value) { Get().set_max_body_size(value); }
  // Request only.
  const std::string& get_method() const { return Get().get_method(); }
  void set_method(const std::string& method) { Get().set_method(method); }
  const std::string& get_uri() const { return Get().get_uri(); }
  void set_uri(const std::string& uri) { Get().set_uri(uri); }
  // Response only.
  void set_status(websocketpp::http::status_code::value code) { Get().set_status(code); }
  void set_status(websocketpp::http::status_code::value code, const std::string& msg) {
    Get().set_status(code, msg);
  }
  websocketpp::http::status_code::value get_status_code() const { return Get().get_status_code(); }
  const std::string& get_status_msg() const { return Get().get_status_msg(); }

 private:
  Message& Get() const {
    if (message_ == nullptr) message_ = std::make_unique<Message>();
    return *message_;
  }

  mutable std::unique_ptr<Message> message_ = std::make_unique<Message>();
};

using ReleasableRequest = ReleasableMessage<websocketpp::http::parser::request>;
using ReleasableResponse = ReleasableMessage<websocketpp::http::parser::response>;

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_RELEASABLE_MESSAGE_H_
