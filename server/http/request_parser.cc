#include "server/http/request_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald::http {

absl::string_view Request::Path() const {
  absl::string_view t = target;
  return t.substr(0, t.find('?'));
}

absl::string_view Request::Query() const {
  const size_t q = target.find('?');
  return q == std::string::npos ? absl::string_view() : absl::string_view(target).substr(q + 1);
}

std::string Request::Header(absl::string_view name) const {
  std::string value;
  bool found = false;
  for (const auto& [n, v] : headers) {
    if (!absl::EqualsIgnoreCase(n, name)) continue;
    if (found) value.append(", ");
    value.append(v);
    found = true;
  }
  return value;
}

// http-parser's state and callbacks. Every callback pauses the parser at the points where the
// caller decides something (end of head, end of message) and records errors in the
// RequestParser, so that nothing is decided inside http_parser_execute.
struct RequestParser::Impl {
  http_parser parser;
  http_parser_settings settings;

  static RequestParser& Of(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

  static int OnMessageBegin(http_parser* p) {
    Of(p).started_ = true;
    return 0;
  }
  static int OnUrl(http_parser* p, const char* at, size_t length) {
    Of(p).request_.target.append(at, length);
    return 0;
  }
  // After the head, header callbacks are a chunked body's trailer fields: past the head's bound
  // (they count against the request's framing bound) and not needed, so they are discarded.
  static int OnHeaderField(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Of(p);
    if (self.head_complete_) return 0;
    if (self.in_value_) {
      self.in_value_ = false;
      self.field_.clear();
    }
    self.field_.append(at, length);
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Of(p);
    if (self.head_complete_) return 0;
    if (!self.in_value_) {
      self.in_value_ = true;
      // A browser's handshake has a dozen headers: one allocation for them, not five.
      if (self.request_.headers.empty()) self.request_.headers.reserve(16);
      self.request_.headers.emplace_back(self.field_, std::string());
    }
    self.request_.headers.back().second.append(at, length);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    RequestParser& self = Of(p);
    self.head_complete_ = true;
    Request& r = self.request_;
    r.method = http_method_str(static_cast<http_method>(p->method));
    r.version_minor = p->http_major == 1 ? p->http_minor : 0;
    r.keep_alive = http_should_keep_alive(p) != 0;
    r.chunked = (p->flags & F_CHUNKED) != 0;
    for (auto& header : r.headers) {
      header.second.resize(absl::StripTrailingAsciiWhitespace(header.second).size());
    }
    // http-parser sets `upgrade` only for `Upgrade` with `Connection: upgrade` (or CONNECT), and
    // then stops at the end of the message; an `Upgrade` alone is announced too, so that no
    // byte after it is taken as HTTP either.
    r.upgrade = p->upgrade != 0 || !r.Header("Upgrade").empty();
    const std::string encoding = r.Header("Transfer-Encoding");
    if (p->http_major != 1) {
      self.Fail(505, absl::StrCat("request: HTTP/", p->http_major, ".", p->http_minor,
                                  " is not supported; send HTTP/1.1"));
    } else if (!encoding.empty() && !absl::EqualsIgnoreCase(encoding, "chunked")) {
      // http-parser takes "gzip, chunked" as chunked; Herald decodes no other coding, and a
      // proxy might frame such a body differently.
      self.Fail(400, "request framing: Transfer-Encoding other than chunked");
    } else if (!r.chunked && p->content_length != ULLONG_MAX &&
               p->content_length > self.limits_.max_body_bytes) {
      self.Fail(413, absl::StrCat("body: Content-Length ", p->content_length,
                                  " is more than the limit of ", self.limits_.max_body_bytes,
                                  " (--max-http-body-bytes)"));
    } else {
      self.expect_continue_ = absl::EqualsIgnoreCase(r.Header("Expect"), "100-continue");
    }
    http_parser_pause(p, 1);
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t length) {
    RequestParser& self = Of(p);
    if (self.request_.body.size() + length > self.limits_.max_body_bytes) {
      self.Fail(413, absl::StrCat("body: more than the limit of ", self.limits_.max_body_bytes,
                                  " bytes (--max-http-body-bytes)"));
      http_parser_pause(p, 1);
      return 0;
    }
    self.request_.body.append(at, length);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    Of(p).message_complete_ = true;
    http_parser_pause(p, 1);
    return 0;
  }
};

RequestParser::RequestParser(ParserLimits limits)
    : limits_(limits), impl_(std::make_unique<Impl>()) {
  http_parser_settings_init(&impl_->settings);
  impl_->settings.on_message_begin = &Impl::OnMessageBegin;
  impl_->settings.on_url = &Impl::OnUrl;
  impl_->settings.on_header_field = &Impl::OnHeaderField;
  impl_->settings.on_header_value = &Impl::OnHeaderValue;
  impl_->settings.on_headers_complete = &Impl::OnHeadersComplete;
  impl_->settings.on_body = &Impl::OnBody;
  impl_->settings.on_message_complete = &Impl::OnMessageComplete;
  http_parser_init(&impl_->parser, HTTP_REQUEST);
  impl_->parser.data = this;
}

RequestParser::~RequestParser() = default;

void RequestParser::Reset() {
  request_ = Request();
  field_.clear();
  in_value_ = false;
  started_ = false;
  head_complete_ = false;
  message_complete_ = false;
  expect_continue_ = false;
  continue_reported_ = false;
  head_bytes_ = 0;
  request_bytes_ = 0;
}

RequestParser::Event RequestParser::Fail(int status, std::string message) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_message_ = std::move(message);
  }
  return Event::kError;
}

RequestParser::Event RequestParser::Feed(absl::string_view data, size_t* consumed) {
  size_t taken = 0;
  auto done = [&](Event event) {
    *consumed = taken;
    return event;
  };
  if (error_status_ != 0) return done(Event::kError);
  for (;;) {
    const absl::string_view rest = data.substr(taken);
    size_t slice = rest.size();
    if (!head_complete_) {
      // The head is bounded before http-parser sees it: it is given at most what is left of
      // max_head_bytes, so a long head costs no more than the limit.
      if (head_bytes_ >= limits_.max_head_bytes) {
        return done(Fail(431, absl::StrCat("request head: more than ", limits_.max_head_bytes,
                                           " bytes (--max-http-head-bytes)")));
      }
      slice = std::min(slice, limits_.max_head_bytes - head_bytes_);
    }
    if (slice == 0) return done(Event::kNeedMore);
    const bool head_before = head_complete_;
    const size_t n = http_parser_execute(&impl_->parser, &impl_->settings, rest.data(), slice);
    taken += n;
    if (!head_before) head_bytes_ += n;
    request_bytes_ += n;
    // A chunked body's framing (sizes, extensions, trailers) is not body: bounded here.
    if (head_complete_ &&
        request_bytes_ > limits_.max_head_bytes * 2 + limits_.max_body_bytes * 2) {
      return done(Fail(413, absl::StrCat("body: more than the limit of ", limits_.max_body_bytes,
                                         " bytes (--max-http-body-bytes)")));
    }
    const http_errno err = HTTP_PARSER_ERRNO(&impl_->parser);
    if (err == HPE_PAUSED) {
      http_parser_pause(&impl_->parser, 0);
      if (error_status_ != 0) return done(Event::kError);
      if (message_complete_) {
        message_complete_ = false;
        return done(Event::kRequest);
      }
      if (head_complete_ && !head_before && expect_continue_ && !continue_reported_) {
        continue_reported_ = true;
        return done(Event::kHeadComplete);
      }
      continue;
    }
    if (err == HPE_HEADER_OVERFLOW) {
      return done(Fail(431, "request head: too large"));
    }
    if (err == HPE_INVALID_CONTENT_LENGTH && n < slice && absl::ascii_isdigit(rest[n])) {
      // http-parser stops on the digit that overflows 64 bits: a length like that is a size,
      // however absurd, not a malformed header.
      return done(Fail(413, absl::StrCat("body: Content-Length is more than the limit of ",
                                         limits_.max_body_bytes, " (--max-http-body-bytes)")));
    }
    if (err != HPE_OK) {
      const bool framing = err == HPE_UNEXPECTED_CONTENT_LENGTH ||
                           err == HPE_INVALID_CONTENT_LENGTH || err == HPE_INVALID_CHUNK_SIZE;
      return done(Fail(400, absl::StrCat(framing ? "request framing: " : "request: ",
                                         http_errno_description(err))));
    }
    if (taken == data.size()) return done(Event::kNeedMore);
  }
}

Request RequestParser::TakeRequest() {
  Request request = std::move(request_);
  Reset();
  return request;
}

}  // namespace herald::http
