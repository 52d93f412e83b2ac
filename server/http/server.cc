#include "server/http/server.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "asio/dispatch.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/write.hpp"
#include "server/http/thread_buffer.h"

namespace herald::http {

using Clock = std::chrono::steady_clock;

// The reply slot of one request, in the connection's queue in request order. Touched only on
// the connection's thread.
struct Slot {
  std::string interim;  // "100 Continue", sent once the slot is first in line
  std::string bytes;    // reply bytes not yet handed to the write queue
  bool done = false;    // the whole reply is in `bytes` (or was sent)
  bool streaming = false;
  bool chunked = false;  // the stream is framed in chunks (HTTP/1.1)
  bool ended = false;    // the stream ended (EndStream)
  bool close_after = false;
  bool head_only = false;  // a HEAD request: no body
  int version_minor = 1;
  // The request asked to switch protocols: it is the last one read on its connection.
  bool upgrade = false;
  // Set by Exchange::Upgrade: once `bytes` are written the connection is handed to it.
  UpgradeHandler take;
  std::function<void()> on_closed;
};

struct Server::Shared {
  asio::io_context* io;
  ServerOptions options;
  Handler handler;
  // Every open connection of this server; touched only on the io_context's thread.
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
  std::atomic<size_t> count{0};
  bool draining = false;  // io thread only
};

namespace {

constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Lingering close: after a reply that closes the connection, what the client still sends is
// read and dropped for at most this long (or this many bytes), so the kernel does not answer it
// with a reset that could destroy the reply before the client read it.
constexpr auto kLinger = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1 << 20;
constexpr size_t kWriteBatch = 64;
// Bytes read past an upgrade request and kept for the new owner while the handler decides; past
// it the connection reads no more (TCP holds the rest).
constexpr size_t kLeftoverBytes = 64 * 1024;

absl::string_view Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 412:
      return "Precondition Failed";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x80) {
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// The head of a reply; `body_length` < 0 for a stream.
std::string Head(const Slot& slot, int status, const Headers& headers, int64_t body_length) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", Reason(status), "\r\n");
  for (const auto& [name, value] : headers) {
    // A reply to HEAD states the length of the body it does not carry.
    if (body_length == 0 && absl::EqualsIgnoreCase(name, "Content-Length")) {
      if (!absl::SimpleAtoi(value, &body_length)) body_length = 0;
      continue;
    }
    if (absl::EqualsIgnoreCase(name, "Content-Length") ||
        absl::EqualsIgnoreCase(name, "Connection") ||
        absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      continue;
    }
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (body_length >= 0) {
    if (status != 204 && status != 304)
      absl::StrAppend(&out, "Content-Length: ", body_length, "\r\n");
  } else if (slot.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (slot.close_after) {
    out.append("Connection: close\r\n");
  } else if (slot.version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace

// One HTTP connection. Lives on its server's I/O thread: every member is touched only there
// (the Exchange posts to it). Owned by the handlers of its pending operations and by the
// exchanges of requests it is still answering.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Server::Shared> shared, asio::ip::tcp::socket socket,
             std::string remote_address)
      : shared_(std::move(shared)),
        socket_(std::move(socket)),
        timer_(*shared_->io),
        remote_address_(std::move(remote_address)),
        parser_(shared_->options.parser) {}

  // A stream's on_closed holds its consumer, which holds the exchange, which holds the slot:
  // a connection torn down with its io_context (shutdown) breaks that cycle here.
  ~Connection() {
    for (const std::shared_ptr<Slot>& slot : slots_) {
      slot->on_closed = nullptr;
      slot->take = nullptr;
    }
  }

  void Start() {
    shared_->connections[this] = weak_from_this();
    shared_->count.fetch_add(1, std::memory_order_relaxed);
    // TCP options (TCP_NODELAY, keepalive) are the adopter's: ws::Endpoint sets them once on
    // its listener. Reads are non-blocking (OnReadable); a socket made so already costs nothing.
    asio::error_code ec;
    if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
    Touch();
    started_ = Clock::now();
    // A client sends its request right behind the TCP handshake, and the listener accepts a
    // connection once its first bytes are in (TCP_DEFER_ACCEPT): one read now, no waiting for
    // the socket (an epoll_ctl and a loop turn).
    reading_ = true;
    OnReadable(asio::error_code());
    // The timer only for a connection still here: a WebSocket upgrade read whole above has
    // already been handed over, and arming and cancelling a timer for it cost more than its
    // request's parse. A linger begun above has its own.
    if (!closed_ && !lingering_) {
      ArmTimer(absl::ToChronoNanoseconds(
          std::min(shared_->options.first_request_timeout, shared_->options.idle_timeout)));
    }
  }

  // From the exchange, on this thread.
  void Finish(const std::shared_ptr<Slot>& slot, Response response) {
    if (closed_ || slot->done || slot->streaming) return;
    slot->bytes.append(
        Head(*slot, response.status, response.headers, static_cast<int64_t>(response.body.size())));
    if (!slot->head_only) slot->bytes.append(response.body);
    slot->done = true;
    Flush();
  }

  void Upgrade(const std::shared_ptr<Slot>& slot, std::string response, UpgradeHandler take) {
    if (closed_ || slot->done || slot->streaming) return;
    if (!slot->upgrade) {
      // Requests after this one may already be parsed and their bytes gone: nothing to hand.
      slot->close_after = true;
      stop_parsing_ = true;
      Response refusal;
      refusal.status = 500;
      refusal.headers.emplace_back("Content-Type", "application/json");
      refusal.body = R"({"code":"INTERNAL","message":"upgrade: the request did not ask for one"})"
                     "\n";
      return Finish(slot, std::move(refusal));
    }
    slot->bytes.append(response);
    slot->take = std::move(take);
    slot->done = true;
    Flush();
  }

  void StartStream(const std::shared_ptr<Slot>& slot, int status, const Headers& headers,
                   std::function<void()> on_closed) {
    if (closed_ || slot->done || slot->streaming) {
      if (closed_ && on_closed) on_closed();
      return;
    }
    slot->streaming = true;
    slot->chunked = slot->version_minor >= 1;
    // A stream ends with its connection: there is no later request to answer.
    slot->close_after = true;
    slot->on_closed = std::move(on_closed);
    slot->bytes.append(Head(*slot, status, headers, -1));
    Flush();
  }

  bool Write(const std::shared_ptr<Slot>& slot, absl::string_view data) {
    if (closed_ || closing_ || !slot->streaming || slot->ended) return false;
    if (data.empty()) return true;
    if (slot->chunked) {
      absl::StrAppend(&slot->bytes, absl::Hex(data.size()), "\r\n", data, "\r\n");
    } else {
      slot->bytes.append(data.data(), data.size());
    }
    Flush();
    if (closed_) return false;
    if (out_bytes_ + slot->bytes.size() > shared_->options.max_buffered_bytes) {
      Abort(Close::kReset);  // a reader this far behind is not reading
      return false;
    }
    return true;
  }

  void EndStream(const std::shared_ptr<Slot>& slot) {
    if (closed_ || !slot->streaming || slot->ended) return;
    if (slot->chunked) slot->bytes.append("0\r\n\r\n");
    slot->ended = true;
    slot->on_closed = nullptr;
    Flush();
  }

  void Drain() {
    if (closed_ || handing_over()) return;
    if (slots_.empty() && !parser_.in_request() && !writing_) {
      Abort();
    } else if (parser_.in_request()) {
      // A request under way is read to its end (bounded by the head and idle timeouts) and
      // answered, as the last one (`draining` marks its slot): a publish then gets its 503
      // "draining" rather than a connection cut off mid-request.
      return;
    } else {
      stop_parsing_ = true;  // the reply being written or awaited is the last
      if (!slots_.empty()) slots_.back()->close_after = true;
      if (slots_.empty() && !writing_) closing_ = true;
      StartWrite();
    }
  }

  enum class Close {
    kFin,    // what the kernel holds still goes out, then FIN
    kReset,  // RST: what the kernel holds for a peer that does not read is dropped at once
  };

  // Closes the socket now; the pending operations end with errors and drop their references.
  void Abort(Close how = Close::kFin) {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    // A peer that stopped reading would otherwise keep the socket in FIN-WAIT-1, holding our
    // unsent bytes in the kernel for minutes, and never learn it was dropped.
    if (how == Close::kReset) socket_.set_option(asio::socket_base::linger(true, 0), ec);
    socket_.shutdown(asio::socket_base::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
    shared_->connections.erase(this);
    shared_->count.fetch_sub(1, std::memory_order_relaxed);
    Slots slots = std::move(slots_);
    slots_.clear();
    out_.clear();
    take_ = nullptr;
    for (const std::shared_ptr<Slot>& slot : slots) {
      slot->take = nullptr;
      if (slot->on_closed) std::exchange(slot->on_closed, nullptr)();
    }
  }

  asio::io_context* io() const { return shared_->io; }
  // The upgrade is next: the connection is handed to take_ once out_ is written.
  bool handing_over() const { return take_ != nullptr; }

 private:
  void Touch() { last_activity_ = Clock::now(); }

  void ArmTimer(Clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->OnTimer();
    });
  }

  void OnTimer() {
    if (closed_) return;
    // The reply was written and FIN sent; a peer that has not taken it by now is not reading.
    if (lingering_) return Abort(UnsentInKernel() ? Close::kReset : Close::kFin);
    const Clock::time_point now = Clock::now();
    // Until its first request head is complete, a connection gets first_request_timeout as a
    // whole; before its first byte, nothing else.
    Clock::duration first_left = Clock::duration::max();
    if (!first_head_done_) {
      first_left =
          absl::ToChronoNanoseconds(shared_->options.first_request_timeout) - (now - started_);
      if (first_left <= Clock::duration::zero()) return Abort();
    }
    const Clock::duration idle = absl::ToChronoNanoseconds(shared_->options.idle_timeout);
    // Looked at again within idle_timeout, so a head that begins meanwhile gets its bound.
    if (!first_head_done_ && !parser_.in_request()) return ArmTimer(std::min(first_left, idle));
    // Waiting for our own reply (an ack wait, a slow engine) is not the client's idleness.
    const bool waiting_on_us =
        absl::c_any_of(slots_, [](const auto& s) { return !s->done && !s->streaming; }) ||
        (!slots_.empty() && slots_.front()->streaming && !writing_);
    Clock::duration elapsed = now - last_activity_;
    // A head gets the timeout as a whole, not per byte: one that trickles in (slowloris) does
    // not keep its connection for ever.
    if (parser_.in_request() && !parser_.head_complete()) {
      elapsed = std::max(elapsed, now - head_started_);
    }
    // A write still pending, or bytes the kernel could not deliver, mean the peer stopped
    // reading our replies.
    if (!waiting_on_us && elapsed >= idle) {
      return Abort(writing_ || UnsentInKernel() ? Close::kReset : Close::kFin);
    }
    ArmTimer(std::min(first_left, waiting_on_us ? idle : idle - elapsed));
  }

  void StartRead() {
    if (reading_ || closed_ || peer_done_) return;
    if (upgrade_read_ && !lingering_ && in_.size() - in_pos_ >= kLeftoverBytes) return;
    reading_ = true;
    socket_.async_wait(
        asio::socket_base::wait_read,
        [self = shared_from_this()](const asio::error_code& ec) { self->OnReadable(ec); });
  }

  // The socket is readable (or the wait ended): one non-blocking read into the thread's buffer,
  // so a connection waiting for its next request holds no read buffer.
  void OnReadable(const asio::error_code& ec) {
    if (ec || closed_) return OnRead(ec, nullptr, 0);
    char* buffer = ThreadBuffer();
    asio::error_code read_ec;
    const size_t n = socket_.read_some(asio::buffer(buffer, kThreadBufferBytes), read_ec);
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) {
      reading_ = false;
      return StartRead();
    }
    OnRead(read_ec, buffer, n);
  }

  void OnRead(const asio::error_code& ec, const char* data, size_t n) {
    reading_ = false;
    if (closed_) return;
    if (upgrade_read_ && !lingering_) {
      // Past an upgrade request the bytes are the new protocol's: kept for the new owner. A peer
      // that leaves (EOF included) cannot take part in it: no hand-over.
      if (ec && !(ec == asio::error::operation_aborted && handing_over())) return Abort();
      if (!ec) {
        Touch();
        in_.append(data, n);
      }
      if (handing_over()) return HandOver();
      return StartRead();
    }
    if (ec) {
      // The peer is done sending (EOF) or gone. Replies still owed go out first, unless the
      // connection is broken or lingering.
      if (ec != asio::error::eof || lingering_ || slots_.empty()) return Abort();
      peer_done_ = true;
      if (!slots_.empty() && slots_.front()->streaming) return Abort();
      return;
    }
    Touch();
    if (lingering_) {
      lingered_ += n;
      if (lingered_ > kLingerBytes) return Abort();
      return StartRead();
    }
    if (stop_parsing_ || (!slots_.empty() && slots_.front()->streaming)) {
      // After the last request (Connection: close, a refused request, a stream) what arrives is
      // read to see the peer leave, and dropped.
      return StartRead();
    }
    in_.append(data, n);
    Parse();
  }

  void Parse() {
    if (in_parse_) return;
    in_parse_ = true;
    ParseLoop();
    in_parse_ = false;
  }

  void ParseLoop() {
    while (!closed_ && !stop_parsing_) {
      // Replies wait in memory while the peer does not read them: past max_pipelined owed, or
      // max_buffered_bytes unsent, no more requests are read until replies have gone out.
      if (slots_.size() >= shared_->options.max_pipelined ||
          out_bytes_ >= shared_->options.max_buffered_bytes) {
        parse_paused_ = true;  // Flush() or OnWrite() resumes
        return;
      }
      if (!parser_.in_request()) head_started_ = Clock::now();
      size_t used = 0;
      const RequestParser::Event event =
          parser_.Feed(absl::string_view(in_).substr(in_pos_), &used);
      in_pos_ += used;
      switch (event) {
        case RequestParser::Event::kNeedMore:
          // A body still arriving is bounded by idle_timeout, not by first_request_timeout.
          if (parser_.head_complete()) first_head_done_ = true;
          in_.erase(0, in_pos_);
          in_pos_ = 0;
          StartRead();
          return;
        case RequestParser::Event::kHeadComplete: {
          first_head_done_ = true;
          next_slot_ = NewSlot(parser_.current().version_minor, parser_.current().method);
          next_slot_->interim = std::string(kContinue);
          slots_.push_back(next_slot_);
          Flush();
          break;
        }
        case RequestParser::Event::kRequest: {
          first_head_done_ = true;
          Request request = parser_.TakeRequest();
          request.remote_address = remote_address_;
          std::shared_ptr<Slot> slot = std::exchange(next_slot_, nullptr);
          if (slot == nullptr) {
            slot = NewSlot(request.version_minor, request.method);
            slots_.push_back(slot);
          }
          // What follows an upgrade request is not HTTP, whatever the handler decides: it is the
          // last request, and a refusal closes the connection.
          slot->upgrade = request.upgrade;
          slot->close_after = !request.keep_alive || shared_->draining || request.upgrade;
          if (slot->close_after) stop_parsing_ = true;
          upgrade_read_ = request.upgrade;
          auto exchange = std::make_shared<Exchange>(weak_from_this(), slot, shared_->io);
          shared_->handler(request, std::move(exchange));
          // Reading on sees the peer leave before the handler decides, and keeps the bytes
          // behind the request.
          if (upgrade_read_) StartRead();
          break;
        }
        case RequestParser::Event::kError: {
          std::shared_ptr<Slot> slot = std::exchange(next_slot_, nullptr);
          if (slot == nullptr) {
            slot = NewSlot(1, "");
            slots_.push_back(slot);
          }
          slot->close_after = true;
          stop_parsing_ = true;
          const int status = parser_.error_status();
          Response response;
          response.status = status;
          response.headers.emplace_back("Content-Type", "application/json");
          response.body = absl::StrCat(
              R"({"code":")",
              status == 413 || status == 431 ? "RESOURCE_EXHAUSTED" : "INVALID_ARGUMENT",
              R"(","message":")", JsonEscape(parser_.error_message()), "\"}\n");
          Finish(slot, std::move(response));
          return;
        }
      }
    }
  }

  std::shared_ptr<Slot> NewSlot(int version_minor, absl::string_view method) {
    auto slot = std::make_shared<Slot>();
    slot->version_minor = version_minor;
    slot->head_only = method == "HEAD";
    return slot;
  }

  // Moves what is ready, in request order, to the write queue.
  void Flush() {
    if (closed_) return;
    bool popped = false;
    while (!slots_.empty()) {
      Slot& head = *slots_.front();
      if (!head.interim.empty()) Queue(std::exchange(head.interim, std::string()));
      if (!head.bytes.empty()) Queue(std::exchange(head.bytes, std::string()));
      if (!(head.done || head.ended)) break;
      const bool close = head.close_after;
      UpgradeHandler take = std::move(head.take);
      slots_.erase(slots_.begin());
      popped = true;
      if (take) {
        take_ = std::move(take);
        slots_.clear();
        break;
      }
      if (close) {
        closing_ = true;
        slots_.clear();
        break;
      }
    }
    StartWrite();
    if (closed_) return;
    if (popped) ResumeParse();
    if (peer_done_ && slots_.empty() && out_.empty() && !writing_) Abort();
  }

  // Parsing paused by the read-ahead bounds goes on once both allow it.
  void ResumeParse() {
    if (!parse_paused_ || in_parse_ || slots_.size() >= shared_->options.max_pipelined ||
        out_bytes_ >= shared_->options.max_buffered_bytes) {
      return;
    }
    parse_paused_ = false;
    // Not from inside a reply: the handler that answered may be running in Parse.
    asio::post(*shared_->io, [self = shared_from_this()] { self->Parse(); });
  }

  // The kernel still holds bytes of ours the peer has not acknowledged.
  bool UnsentInKernel() {
    int unsent = 0;
    return ioctl(socket_.native_handle(), SIOCOUTQ, &unsent) == 0 && unsent > 0;
  }

  void Queue(std::string bytes) {
    out_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
  }

  void StartWrite() {
    if (writing_ || closed_) return;
    if (out_.empty()) {
      if (handing_over()) {
        HandOver();
      } else if (closing_) {
        CloseGracefully();
      }
      return;
    }
    std::vector<asio::const_buffer> buffers;
    const size_t count = std::min(out_.size(), kWriteBatch);
    buffers.reserve(count);
    for (size_t i = 0; i < count; ++i) buffers.push_back(asio::buffer(out_[i]));
    writing_ = true;
    asio::async_write(socket_, buffers,
                      [self = shared_from_this(), count](const asio::error_code& ec, size_t) {
                        self->OnWrite(ec, count);
                      });
  }

  void OnWrite(const asio::error_code& ec, size_t count) {
    writing_ = false;
    if (closed_) return;
    if (ec) return Abort();
    Touch();
    for (size_t i = 0; i < count; ++i) out_bytes_ -= out_[i].size();
    out_.erase(out_.begin(), out_.begin() + count);
    StartWrite();
    if (!closed_) ResumeParse();
    if (!closed_ && peer_done_ && slots_.empty() && out_.empty() && !writing_) Abort();
  }

  // Everything before the upgrade is written: the socket goes to its new owner, untouched, with
  // the bytes read past the request. A read in flight is cancelled first, and what it read is
  // kept.
  void HandOver() {
    if (closed_) return;
    if (reading_) {
      asio::error_code ec;
      socket_.cancel(ec);
      return;  // OnRead comes back here
    }
    if (peer_done_) return Abort();
    closed_ = true;
    timer_.cancel();
    shared_->connections.erase(this);
    shared_->count.fetch_sub(1, std::memory_order_relaxed);
    UpgradeHandler take = std::exchange(take_, nullptr);
    std::string leftover = in_.substr(in_pos_);
    in_.clear();
    in_pos_ = 0;
    take(std::move(socket_), std::move(leftover));
  }

  // After the last reply: FIN, then read and drop until the peer closes (bounded).
  void CloseGracefully() {
    if (lingering_ || closed_) return;
    lingering_ = true;
    asio::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    if (ec || peer_done_) return Abort();
    timer_.cancel();
    ArmTimer(kLinger);
    StartRead();
  }

  const std::shared_ptr<Server::Shared> shared_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  const std::string remote_address_;
  RequestParser parser_;
  std::string in_;  // bytes read and not yet parsed, from in_pos_
  size_t in_pos_ = 0;
  // Queues of at most max_pipelined (16 by default) entries, and most often one: vectors with
  // room for one inline, where a deque allocates its map and a 512-byte block when made.
  using Slots = absl::InlinedVector<std::shared_ptr<Slot>, 1>;
  Slots slots_;                              // replies owed, in request order
  std::shared_ptr<Slot> next_slot_;          // the slot of a request whose head was answered 100
  absl::InlinedVector<std::string, 1> out_;  // bytes to write, in order
  UpgradeHandler take_;                      // the new owner once the upgrade is next
  size_t out_bytes_ = 0;
  Clock::time_point last_activity_;
  Clock::time_point head_started_;  // when the bytes of the request being read began
  bool reading_ = false;
  bool writing_ = false;
  bool in_parse_ = false;
  bool parse_paused_ = false;
  bool stop_parsing_ = false;  // no more requests on this connection
  bool closing_ = false;       // the last reply is queued
  bool lingering_ = false;
  size_t lingered_ = 0;
  bool peer_done_ = false;        // EOF read
  Clock::time_point started_;     // adopted
  bool first_head_done_ = false;  // the first request's head arrived whole
  bool upgrade_read_ = false;     // an upgrade request was read: the bytes after it are kept
  bool closed_ = false;
};

Exchange::Exchange(std::weak_ptr<Connection> connection, std::shared_ptr<Slot> slot,
                   asio::io_context* io)
    : connection_(std::move(connection)), slot_(std::move(slot)), io_(io) {}

void Exchange::Respond(Response response) {
  asio::dispatch(
      *io_, [connection = connection_, slot = slot_, response = std::move(response)]() mutable {
        if (std::shared_ptr<Connection> c = connection.lock()) c->Finish(slot, std::move(response));
      });
}

void Exchange::StartStream(int status, Headers headers, std::function<void()> on_closed) {
  asio::dispatch(*io_, [connection = connection_, slot = slot_, status,
                        headers = std::move(headers), on_closed = std::move(on_closed)]() mutable {
    if (std::shared_ptr<Connection> c = connection.lock()) {
      c->StartStream(slot, status, headers, std::move(on_closed));
    } else if (on_closed) {
      on_closed();
    }
  });
}

void Exchange::Upgrade(std::string response, UpgradeHandler take) {
  asio::dispatch(*io_, [connection = connection_, slot = slot_, response = std::move(response),
                        take = std::move(take)]() mutable {
    if (std::shared_ptr<Connection> c = connection.lock()) {
      c->Upgrade(slot, std::move(response), std::move(take));
    }
  });
}

void Exchange::Post(std::function<void()> work) { asio::post(*io_, std::move(work)); }

bool Exchange::Write(absl::string_view data) {
  std::shared_ptr<Connection> c = connection_.lock();
  return c != nullptr && c->Write(slot_, data);
}

void Exchange::EndStream() {
  if (std::shared_ptr<Connection> c = connection_.lock()) c->EndStream(slot_);
}

Server::Server(asio::io_context* io, ServerOptions options, Handler handler)
    : shared_(std::make_shared<Shared>()) {
  shared_->io = io;
  shared_->options = options;
  shared_->handler = std::move(handler);
}

Server::~Server() = default;

void Server::Adopt(asio::ip::tcp::socket socket, std::string remote_address) {
  auto connection =
      std::make_shared<Connection>(shared_, std::move(socket), std::move(remote_address));
  connection->Start();
}

void Server::BeginDrain() {
  asio::post(*shared_->io, [shared = shared_] {
    shared->draining = true;
    std::vector<std::shared_ptr<Connection>> open;
    for (auto& [raw, weak] : shared->connections) {
      if (std::shared_ptr<Connection> c = weak.lock()) open.push_back(std::move(c));
    }
    for (const auto& c : open) c->Drain();
  });
}

size_t Server::connection_count() const { return shared_->count.load(std::memory_order_relaxed); }

}  // namespace herald::http
