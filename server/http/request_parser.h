#ifndef HERALD_SERVER_HTTP_REQUEST_PARSER_H_
#define HERALD_SERVER_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"

namespace herald::http {

// One HTTP/1.x request as read from the wire. A value: used by one thread at a time.
struct Request {
  std::string method;     // "POST"
  std::string target;     // the request-target as sent: "/api/v1/Publish?x=1"
  int version_minor = 1;  // HTTP/1.<minor>
  std::string body;       // decoded (a chunked body is joined)
  bool chunked = false;   // the body came with Transfer-Encoding: chunked
  // HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
  bool keep_alive = true;
  // The request asks to switch protocols (a non-empty `Upgrade` header, or CONNECT): the bytes
  // after it are not HTTP, and the parser has taken exactly up to its end.
  bool upgrade = false;
  std::string remote_address;  // "ip:port", set by the server

  // The target without its query string.
  absl::string_view Path() const;
  // The query string without '?' ("" when none).
  absl::string_view Query() const;
  // The value of a header, repeated ones joined with ", " (RFC 9110 §5.3); "" when absent.
  // Names are case-insensitive.
  std::string Header(absl::string_view name) const;
  // The same without a copy: a view of the request's one field of that name, or of its repeated
  // fields joined in `*joined`. Valid while the request and `*joined` are unchanged.
  absl::string_view HeaderView(absl::string_view name, std::string* joined) const;

  // The header fields in order, names as sent.
  size_t header_count() const { return fields_.size(); }
  absl::string_view header_name(size_t i) const;
  absl::string_view header_value(size_t i) const;
  void AddHeader(absl::string_view name, absl::string_view value);

 private:
  // Where one field's name and value are in field_bytes_ (a head is far below 4 GB).
  struct Field {
    uint32_t name_at;
    uint32_t name_size;
    uint32_t value_at;
    uint32_t value_size;
  };
  // Every field's name and value back to back: one allocation for a head's fields, where a
  // string each made a dozen for a browser's WebSocket handshake.
  std::string field_bytes_;
  absl::InlinedVector<Field, 16> fields_;
};

// The bounds of one request. The parser never holds more than max_head_bytes of a head, nor a
// body over max_body_bytes: a Content-Length over it is refused before any of the body is read.
struct ParserLimits {
  size_t max_head_bytes = 16 * 1024;
  size_t max_body_bytes = 2 * 1024 * 1024;
};

// An HTTP/1.x request parser over Boost.Beast's basic_parser: feeds bytes as they arrive and
// yields one request at a time (it stops after each, so pipelined requests are taken in order
// and the caller decides when to go on). Refuses, with the status to answer before closing: a
// head over max_head_bytes (431), a body over max_body_bytes (413), a body whose length is
// ambiguous (RFC 9112 §6.3: two Content-Lengths, a Content-Length that is not one decimal
// number, Content-Length with Transfer-Encoding, a Transfer-Encoding other than `chunked`; 400
// "request framing"), a version other than HTTP/1.x (505), and malformed requests (400). Empty
// lines before a request line are skipped (RFC 9112 §2.2). Not thread-safe; one per connection.
class RequestParser {
 public:
  enum class Event {
    kNeedMore,      // every byte given was taken; feed more
    kHeadComplete,  // the head is complete and asks for `Expect: 100-continue`; call Feed again
    kRequest,       // a whole request: TakeRequest()
    kError,         // error_status()/error_message(); the connection must close after answering
  };

  explicit RequestParser(ParserLimits limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses a prefix of `data`; `*consumed` is how many bytes were taken: the rest belongs to the
  // next request, or to the next call after kHeadComplete, or (after kNeedMore) is an incomplete
  // head to give again with what follows it. After a request with `upgrade` the rest belongs to
  // the other protocol: feed no more.
  Event Feed(absl::string_view data, size_t* consumed);
  // The request completed by the last kRequest; the parser then starts the next one.
  Request TakeRequest();
  // True between the first byte of a request and its end.
  bool in_request() const { return started_; }
  // The head has arrived (the body is being read).
  bool head_complete() const { return head_complete_; }
  // The head of the request being read (method, target, headers), after kHeadComplete.
  const Request& current() const { return request_; }
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  class Impl;
  void Reset();
  Event Fail(int status, std::string message);

  const ParserLimits limits_;
  std::unique_ptr<Impl> impl_;
  Request request_;
  bool started_ = false;
  bool head_complete_ = false;
  bool expect_continue_ = false;
  bool continue_reported_ = false;
  int content_lengths_ = 0;    // Content-Length fields in the current head
  size_t head_scanned_ = 0;    // where the search for the current head's end resumes
  size_t method_checked_ = 0;  // bytes of the current method found to be token characters
  size_t request_bytes_ = 0;   // bytes of the current request taken so far
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace herald::http

#endif  // HERALD_SERVER_HTTP_REQUEST_PARSER_H_
