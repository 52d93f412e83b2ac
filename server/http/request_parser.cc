#include "server/http/request_parser.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/beast/http/basic_parser.hpp"
#include "boost/beast/http/error.hpp"

namespace herald::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

absl::string_view View(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string HeadTooLarge(size_t limit) {
  return absl::StrCat("request head: more than ", limit, " bytes (--max-http-head-bytes)");
}

std::string BodyTooLarge(size_t limit) {
  return absl::StrCat("body: more than the limit of ", limit, " bytes (--max-http-body-bytes)");
}

// A Content-Length over the limit; `length` is empty when it is past 64 bits.
std::string LengthTooLarge(absl::string_view length, size_t limit) {
  return absl::StrCat("body: Content-Length ", length, length.empty() ? "" : " ",
                      "is more than the limit of ", limit, " (--max-http-body-bytes)");
}

// One or more decimal digits, as a Content-Length must be.
bool IsDecimal(absl::string_view value) {
  return !value.empty() && absl::c_all_of(value, absl::ascii_isdigit);
}

// A Content-Length of decimal digits past 64 bits, which Beast refuses as malformed: it is a
// size, however absurd, answered 413 like one. `head` is a whole head (Beast reads the fields
// only once all of them are in), so this looks at no more than max_head_bytes.
bool HasLengthPast64Bits(absl::string_view head) {
  for (absl::string_view line : absl::StrSplit(head, '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos ||
        !absl::EqualsIgnoreCase(line.substr(0, colon), "Content-Length")) {
      continue;
    }
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    uint64_t length = 0;
    if (IsDecimal(value) && !absl::SimpleAtoi(value, &length)) {
      return true;
    }
  }
  return false;
}

// The "M.m" of a request line's well-formed HTTP version, once Beast refused it (it reads
// HTTP/1.0 and 1.1 only): a version Herald does not speak, answered 505, where anything else
// there is malformed. The version follows the request line's second space (a method and a
// request-target hold none).
std::optional<absl::string_view> VersionOf(absl::string_view line) {
  const size_t method_end = line.find(' ');
  if (method_end == absl::string_view::npos) return std::nullopt;
  const size_t target_end = line.find(' ', method_end + 1);
  if (target_end == absl::string_view::npos) return std::nullopt;
  const absl::string_view v = line.substr(target_end + 1, 8);
  if (v.size() != 8 || !absl::StartsWith(v, "HTTP/") || !absl::ascii_isdigit(v[5]) || v[6] != '.' ||
      !absl::ascii_isdigit(v[7])) {
    return std::nullopt;
  }
  return v.substr(5);
}

// RFC 9110 §5.6.2: the characters of a token, a method's.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

// The end of a request head in `data` (the offset past its empty line), or npos while it has not
// all arrived: the first line feed followed by an empty line, ended by CRLF or, as RFC 9112 §2.2
// lets a recipient accept, by a bare LF (Beast then refuses the head: one outcome either way).
// The search starts at *scanned, where the last call for this head stopped, and stores it.
size_t HeadEnd(absl::string_view data, size_t* scanned) {
  size_t from = *scanned;
  while (true) {
    const size_t lf = data.find('\n', from);
    if (lf == absl::string_view::npos) {
      *scanned = data.size();
      return absl::string_view::npos;
    }
    const absl::string_view after = data.substr(lf + 1, 2);
    if (absl::StartsWith(after, "\n")) return lf + 2;
    if (after == "\r\n") return lf + 3;
    if (after.empty() || after == "\r") {  // decided by bytes still to come
      *scanned = lf;
      return absl::string_view::npos;
    }
    from = lf + 1;
  }
}

}  // namespace

absl::string_view Request::Path() const {
  absl::string_view t = target;
  return t.substr(0, t.find('?'));
}

absl::string_view Request::Query() const {
  const size_t q = target.find('?');
  return q == std::string::npos ? absl::string_view() : absl::string_view(target).substr(q + 1);
}

absl::string_view Request::header_name(size_t i) const {
  return absl::string_view(field_bytes_).substr(fields_[i].name_at, fields_[i].name_size);
}

absl::string_view Request::header_value(size_t i) const {
  return absl::string_view(field_bytes_).substr(fields_[i].value_at, fields_[i].value_size);
}

void Request::AddHeader(absl::string_view name, absl::string_view value) {
  if (field_bytes_.empty()) field_bytes_.reserve(512);  // a browser's handshake fits
  const auto at = static_cast<uint32_t>(field_bytes_.size());
  field_bytes_.append(name.data(), name.size());
  field_bytes_.append(value.data(), value.size());
  fields_.push_back(Field{at, static_cast<uint32_t>(name.size()),
                          at + static_cast<uint32_t>(name.size()),
                          static_cast<uint32_t>(value.size())});
}

absl::string_view Request::HeaderView(absl::string_view name, std::string* joined) const {
  constexpr size_t kNone = ~size_t{0};
  size_t first = kNone;
  bool repeated = false;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name_size != name.size() || !absl::EqualsIgnoreCase(header_name(i), name)) {
      continue;
    }
    if (first == kNone) {
      first = i;
      continue;
    }
    if (!repeated) joined->assign(header_value(first).data(), header_value(first).size());
    repeated = true;
    absl::StrAppend(joined, ", ", header_value(i));
  }
  if (repeated) return *joined;
  return first == kNone ? absl::string_view() : header_value(first);
}

std::string Request::Header(absl::string_view name) const {
  std::string joined;
  return std::string(HeaderView(name, &joined));
}

// Beast's parser, made anew for each request (a basic_parser reads one message). Its callbacks
// fill the RequestParser's request, and each refusal of ours sets `ec` so that Beast stops at
// once; Feed tells ours (error_status_ set) from Beast's own.
class RequestParser::Impl {
 public:
  class Parser final : public bhttp::basic_parser<true> {
   public:
    explicit Parser(RequestParser* owner) : owner_(*owner) {}

   private:
    // Beast passes HTTP/1.0 and 1.1 only (10, 11); other versions are its bad_version.
    void on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                         int version, beast::error_code&) override {
      Request& r = owner_.request_;
      r.method.assign(method.data(), method.size());
      r.target.assign(target.data(), target.size());
      r.version_minor = version % 10;
    }
    void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
    // After the head, fields are a chunked body's trailer: not needed, and discarded.
    void on_field_impl(bhttp::field field, beast::string_view name, beast::string_view value,
                       beast::error_code& ec) override {
      if (owner_.head_complete_) return;
      if (field == bhttp::field::content_length) {
        // Beast takes equal repeated lengths ("1, 1" or two fields) as one; RFC 9112 §6.3 lets
        // a server refuse them, and Herald does, as every other ambiguity.
        if (++owner_.content_lengths_ > 1) {
          owner_.Fail(400, "request framing: two Content-Length fields");
          ec = bhttp::error::bad_content_length;
          return;
        }
        if (!IsDecimal(View(value))) {
          owner_.Fail(400, "request framing: Content-Length is not one decimal number");
          ec = bhttp::error::bad_content_length;
          return;
        }
      }
      owner_.request_.AddHeader(View(name), View(value));
    }
    void on_header_impl(beast::error_code& ec) override {
      RequestParser& self = owner_;
      self.head_complete_ = true;
      Request& r = self.request_;
      r.keep_alive = keep_alive();
      r.chunked = chunked();
      // CONNECT, or any `Upgrade` (with `Connection: upgrade` or not): no byte after the
      // request is taken as HTTP.
      std::string joined;
      r.upgrade = r.method == "CONNECT" || !r.HeaderView("Upgrade", &joined).empty();
      const absl::string_view encoding = r.HeaderView("Transfer-Encoding", &joined);
      const boost::optional<uint64_t> length = content_length();
      if (!encoding.empty() && !absl::EqualsIgnoreCase(encoding, "chunked")) {
        // Beast takes "gzip, chunked" as chunked; Herald decodes no other coding, and a proxy
        // might frame such a body differently.
        self.Fail(400, "request framing: Transfer-Encoding other than chunked");
        ec = bhttp::error::bad_transfer_encoding;
      } else if (length.has_value() && *length > self.limits_.max_body_bytes) {
        self.Fail(413, LengthTooLarge(absl::StrCat(*length), self.limits_.max_body_bytes));
        ec = bhttp::error::body_limit;
      } else {
        self.expect_continue_ =
            absl::EqualsIgnoreCase(r.HeaderView("Expect", &joined), "100-continue");
      }
    }
    void on_body_init_impl(const boost::optional<uint64_t>&, beast::error_code&) override {}
    size_t on_body_impl(beast::string_view body, beast::error_code& ec) override {
      return Append(body, ec);
    }
    // A chunk over the bound is refused from its size, before any of it is read.
    void on_chunk_header_impl(uint64_t size, beast::string_view, beast::error_code& ec) override {
      if (size > owner_.limits_.max_body_bytes - owner_.request_.body.size()) {
        owner_.Fail(413, BodyTooLarge(owner_.limits_.max_body_bytes));
        ec = bhttp::error::body_limit;
      }
    }
    size_t on_chunk_body_impl(uint64_t, beast::string_view body, beast::error_code& ec) override {
      return Append(body, ec);
    }
    void on_finish_impl(beast::error_code&) override {}

    size_t Append(beast::string_view body, beast::error_code& ec) {
      std::string& out = owner_.request_.body;
      if (body.size() > owner_.limits_.max_body_bytes - out.size()) {
        owner_.Fail(413, BodyTooLarge(owner_.limits_.max_body_bytes));
        ec = bhttp::error::body_limit;
        return 0;
      }
      out.append(body.data(), body.size());
      return body.size();
    }

    RequestParser& owner_;
  };

  std::optional<Parser> parser;
};

RequestParser::RequestParser(ParserLimits limits)
    : limits_(limits), impl_(std::make_unique<Impl>()) {}

RequestParser::~RequestParser() = default;

void RequestParser::Reset() {
  impl_->parser.reset();
  request_ = Request();
  started_ = false;
  head_complete_ = false;
  expect_continue_ = false;
  continue_reported_ = false;
  content_lengths_ = 0;
  head_scanned_ = 0;
  method_checked_ = 0;
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
  // A request's framing (its head, chunk sizes, extensions and trailers included) is bounded.
  const size_t framing_bound = limits_.max_head_bytes * 2 + limits_.max_body_bytes * 2;
  for (;;) {
    absl::string_view rest = data.substr(taken);
    // Empty lines before a request line are skipped (RFC 9112 §2.2), as a client may send one
    // after a body.
    while (!started_ && !rest.empty() && (rest[0] == '\r' || rest[0] == '\n')) {
      rest.remove_prefix(1);
      ++taken;
    }
    if (rest.empty()) return done(Event::kNeedMore);
    started_ = true;
    if (!impl_->parser.has_value()) {
      Impl::Parser& parser = impl_->parser.emplace(this);
      // The head's bound is kept here (below); Beast's then only ever meets a trailer's.
      parser.header_limit(static_cast<uint32_t>(
          std::min<size_t>(framing_bound, std::numeric_limits<uint32_t>::max())));
      // The callbacks bound the body, with Herald's messages. Not boost::none: Beast 1.74
      // compares a length with the optional limit, and every length is more than none.
      parser.body_limit(std::numeric_limits<uint64_t>::max());
    }
    Impl::Parser& parser = *impl_->parser;
    // Beast reads a request line as soon as it comes but the fields only once all of them are
    // in, so a malformed head would be refused at once or only when whole depending on how the
    // bytes were cut into reads. It is given a head once it is whole, within max_head_bytes:
    // a longer head costs no more than the limit, and the search for its end resumes where the
    // last call stopped, so a head trickling in costs linear time.
    size_t slice = rest.size();
    const bool head_before = head_complete_;
    if (!head_before) {
      // The method is checked as its bytes come, so that what is not HTTP at all (a TLS hello on
      // the plain port, binary noise) is refused at once, not when a head would have ended.
      for (const size_t n = std::min(rest.size(), limits_.max_head_bytes);
           method_checked_ < n && rest[method_checked_] != ' '; ++method_checked_) {
        if (!IsTokenChar(rest[method_checked_])) {
          return done(Fail(
              400,
              absl::StrCat("request: ", beast::error_code(bhttp::error::bad_method).message())));
        }
      }
      const size_t end = HeadEnd(rest.substr(0, limits_.max_head_bytes), &head_scanned_);
      if (end == absl::string_view::npos) {
        if (rest.size() >= limits_.max_head_bytes) {
          return done(Fail(431, HeadTooLarge(limits_.max_head_bytes)));
        }
        return done(Event::kNeedMore);
      }
      slice = end;
    }
    beast::error_code ec;
    const size_t n = parser.put(boost::asio::const_buffer(rest.data(), slice), ec);
    taken += n;
    request_bytes_ += n;
    if (error_status_ != 0) return done(Event::kError);
    if (head_complete_ && request_bytes_ > framing_bound) {
      return done(Fail(413, BodyTooLarge(limits_.max_body_bytes)));
    }
    if (ec == bhttp::error::need_more) {
      // A whole head was given: only a body, a chunk line or a trailer may wait for more.
      if (!head_complete_) return done(Fail(400, "request: malformed head"));
      return done(Event::kNeedMore);
    }
    // Only a trailer meets Beast's header limit (the request's framing bound): a head it is
    // given is shorter than max_head_bytes.
    if (ec == bhttp::error::header_limit) {
      return done(Fail(413, BodyTooLarge(limits_.max_body_bytes)));
    }
    // `slice` is a whole head here (the request line and fields are refused only with one).
    if (!head_before && ec == bhttp::error::bad_version) {
      if (std::optional<absl::string_view> version = VersionOf(rest.substr(0, slice))) {
        return done(Fail(
            505, absl::StrCat("request: HTTP/", *version, " is not supported; send HTTP/1.1")));
      }
    }
    if (!head_before && ec == bhttp::error::bad_content_length &&
        HasLengthPast64Bits(rest.substr(0, slice))) {
      return done(Fail(413, LengthTooLarge("", limits_.max_body_bytes)));
    }
    if (ec) {
      const bool framing = ec == bhttp::error::bad_content_length ||
                           ec == bhttp::error::bad_transfer_encoding ||
                           ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension;
      return done(
          Fail(400, absl::StrCat(framing ? "request framing: " : "request: ", ec.message())));
    }
    if (parser.is_done()) return done(Event::kRequest);
    if (head_complete_ && !head_before) {
      parser.eager(true);  // the body as it comes
      if (expect_continue_ && !continue_reported_) {
        continue_reported_ = true;
        return done(Event::kHeadComplete);
      }
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
