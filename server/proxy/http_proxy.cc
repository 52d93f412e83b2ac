#include "server/proxy/http_proxy.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace herald::proxy {
namespace {

using core::ProxyEvent;

// Longest wait before a retry of a notification.
constexpr absl::Duration kMaxBackoff = absl::Seconds(30);
// The proxy thread wakes at least this often (a safety net; wakeups and curl's timers do the
// work).
constexpr absl::Duration kMaxPoll = absl::Seconds(1);
// At most one failure is logged per this period; the others are counted into the next line.
constexpr absl::Duration kWarningPeriod = absl::Seconds(1);

// Appends what the backend sends, up to the limit: past it the transfer is aborted
// (CURLE_WRITE_ERROR) and `too_large` set.
struct ReplySink {
  std::string body;
  size_t limit = 0;
  bool too_large = false;
};

size_t WriteReply(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ReplySink*>(user);
  const size_t n = size * count;
  if (sink->body.size() + n > sink->limit) {
    sink->too_large = true;
    return 0;
  }
  sink->body.append(data, n);
  return n;
}

}  // namespace

struct HttpProxy::Transfer {
  Job job;
  ReplySink reply;
  curl_slist* headers = nullptr;
  ~Transfer() { curl_slist_free_all(headers); }
};

std::string Signature(absl::string_view secret, absl::string_view timestamp,
                      absl::string_view body) {
  const std::string signed_text = absl::StrCat(timestamp, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
       &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

namespace {
CURLM* NewMulti(const core::Limits& limits) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURLM* multi = curl_multi_init();
  // Connections to one backend beyond this wait for a free one (keep-alive reuses them).
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(std::max<uint32_t>(limits.webhook_concurrency, 16) * 4));
  return multi;
}
}  // namespace

HttpProxy::HttpProxy(ProxyOptions options, const core::Limits& limits)
    : options_(std::move(options)), limits_(limits), multi_(NewMulti(limits)) {
  for (const Route& r : options_.routes) {
    // A later rule for the same prefix replaces an earlier one.
    auto& list = routes_[static_cast<int>(r.event)];
    auto same =
        std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.first == r.prefix; });
    if (same != list.end()) {
      same->second = r.url;
    } else {
      list.emplace_back(r.prefix, r.url);
    }
  }
  for (auto& list : routes_) {
    std::sort(list.begin(), list.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  thread_ = std::thread([this] { Run(); });
}

HttpProxy::~HttpProxy() {
  Shutdown(absl::ZeroDuration());
  curl_multi_cleanup(multi_);
}

const std::string& HttpProxy::UrlFor(ProxyEvent event, absl::string_view key) const {
  static const std::string kNone;
  for (const auto& [prefix, url] : routes_[static_cast<int>(event)]) {
    if (absl::StartsWith(key, prefix)) return url;  // the longest matching prefix
  }
  return kNone;
}

bool HttpProxy::Routes(ProxyEvent event, absl::string_view key) const {
  return !UrlFor(event, key).empty();
}

std::string HttpProxy::NextRequestId() {
  return absl::StrCat(
      options_.node, "-",
      absl::Hex(next_request_.fetch_add(1, std::memory_order_relaxed) + 1, absl::kZeroPad8));
}

void HttpProxy::Call(ProxyEvent event, absl::string_view key, std::string body,
                     core::Done<std::string> done) {
  Outcomes& outcomes = outcomes_[static_cast<int>(event)];
  const std::string& url = UrlFor(event, key);
  if (url.empty()) {
    done(absl::UnavailableError("no backend for it"));
    return;
  }
  Job job{event, url, std::move(body), NextRequestId(), 1, absl::InfinitePast(), nullptr};
  bool queued = false;
  {
    core::MutexLock lock(&mu_);
    if (!stopping_ && calls_pending_ < limits_.proxy_max_pending) {
      ++calls_pending_;
      job.done = std::move(done);
      inbox_.push_back(std::move(job));
      queued = true;
    }
  }
  if (!queued) {
    outcomes.rejected.fetch_add(1, std::memory_order_relaxed);
    done(absl::UnavailableError("backend busy: too many requests waiting"));
    return;
  }
  curl_multi_wakeup(multi_);
}

void HttpProxy::Notify(ProxyEvent event, absl::string_view key, std::string body) {
  const std::string& url = UrlFor(event, key);
  if (url.empty()) return;
  Job job{event, url, std::move(body), NextRequestId(), 1, absl::InfinitePast(), nullptr};
  bool queued = false;
  bool stopping = false;
  {
    core::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping_ && notifications_queued_ < limits_.webhook_queue_size) {
      ++notifications_queued_;
      inbox_.push_back(std::move(job));
      queued = true;
    }
  }
  if (!queued) {
    outcomes_[static_cast<int>(event)].rejected.fetch_add(1, std::memory_order_relaxed);
    (stopping ? dropped_shutdown_ : dropped_queue_full_).fetch_add(1, std::memory_order_relaxed);
    return;
  }
  curl_multi_wakeup(multi_);
}

void HttpProxy::Shutdown(absl::Duration flush) {
  core::MutexLock serial(&shutdown_mu_);
  {
    core::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      flush_until_ = absl::Now() + flush;
    }
  }
  curl_multi_wakeup(multi_);
  if (thread_.joinable()) thread_.join();
}

core::ProxyStats HttpProxy::Stats() const {
  core::ProxyStats s;
  for (int e = 0; e < core::kProxyEventCount; ++e) {
    const Outcomes& o = outcomes_[e];
    s.requests[e] = {o.ok.load(),      o.http_error.load(), o.unreachable.load(),
                     o.timeout.load(), o.too_large.load(),  o.rejected.load()};
  }
  s.notification_retries = retried_.load();
  s.notifications_dropped_queue_full = dropped_queue_full_.load();
  s.notifications_dropped_failed = dropped_failed_.load();
  s.notifications_dropped_shutdown = dropped_shutdown_.load();
  {
    core::MutexLock lock(&mu_);
    s.notifications_queued = notifications_queued_;
  }
  return s;
}

void HttpProxy::Run() {
  for (;;) {
    std::deque<Job> fresh;
    bool stopping = false;
    absl::Time flush_until;
    {
      core::MutexLock lock(&mu_);
      fresh.swap(inbox_);
      stopping = stopping_;
      flush_until = flush_until_;
    }
    for (Job& job : fresh) {
      if (job.done != nullptr) {
        Start(std::move(job));
      } else {
        ready_notifications_.push_back(std::move(job));
      }
    }
    const absl::Time now = absl::Now();
    while (!retries_.empty() && retries_.front().due <= now) {
      std::pop_heap(retries_.begin(), retries_.end(), LaterFirst());
      ready_notifications_.push_back(std::move(retries_.back()));
      retries_.pop_back();
    }
    while (active_notifications_ < limits_.webhook_concurrency && !ready_notifications_.empty()) {
      Job job = std::move(ready_notifications_.front());
      ready_notifications_.pop_front();
      Start(std::move(job));
    }
    if (stopping && (now >= flush_until ||
                     (active_.empty() && ready_notifications_.empty() && retries_.empty()))) {
      break;
    }
    int running = 0;
    curl_multi_perform(multi_, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg == CURLMSG_DONE) Finish(msg->easy_handle, msg->data.result);
    }
    // Sleep until curl has work, a retry is due, a call or notification arrives (wakeup), or
    // the flush ends.
    absl::Duration wait = kMaxPoll;
    long curl_ms = -1;
    curl_multi_timeout(multi_, &curl_ms);
    if (curl_ms >= 0) wait = std::min(wait, absl::Milliseconds(curl_ms));
    if (!retries_.empty()) wait = std::min(wait, retries_.front().due - absl::Now());
    if (!ready_notifications_.empty() && active_notifications_ < limits_.webhook_concurrency) {
      wait = absl::ZeroDuration();
    }
    if (stopping) wait = std::min(wait, flush_until - absl::Now());
    const int wait_ms = static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))), 0,
                            absl::ToInt64Milliseconds(kMaxPoll)));
    curl_multi_poll(multi_, nullptr, 0, wait_ms, nullptr);
  }
  // Stopped: nothing more is sent; what is left fails or is dropped.
  while (!active_.empty()) {
    auto it = active_.begin();
    CURL* easy = it->first;
    std::unique_ptr<Transfer> t = std::move(it->second);
    active_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
    Abandon(std::move(t->job));
  }
  std::deque<Job> fresh;
  {
    core::MutexLock lock(&mu_);
    fresh.swap(inbox_);
  }
  for (Job& job : fresh) Abandon(std::move(job));
  for (Job& job : ready_notifications_) Abandon(std::move(job));
  ready_notifications_.clear();
  for (Job& job : retries_) Abandon(std::move(job));
  retries_.clear();
}

void HttpProxy::Abandon(Job job) {
  if (job.done != nullptr) {
    {
      core::MutexLock lock(&mu_);
      --calls_pending_;
    }
    job.done(absl::UnavailableError("backend unavailable: Herald is shutting down"));
    return;
  }
  {
    core::MutexLock lock(&mu_);
    --notifications_queued_;
  }
  dropped_shutdown_.fetch_add(1, std::memory_order_relaxed);
}

void HttpProxy::Start(Job job) {
  auto t = std::make_unique<Transfer>();
  t->job = std::move(job);
  t->reply.limit = limits_.proxy_max_reply_bytes;
  const Job& j = t->job;
  const std::string timestamp = absl::StrCat(absl::ToUnixSeconds(absl::Now()));
  const std::string headers[] = {
      "Content-Type: application/json",
      "Accept: application/json",
      absl::StrCat("X-Herald-Event: ", core::ProxyEventName(j.event)),
      absl::StrCat("X-Herald-Request-Id: ", j.request_id),
      absl::StrCat("X-Herald-Attempt: ", j.attempt),
      absl::StrCat("X-Herald-Timestamp: ", timestamp),
      absl::StrCat("X-Herald-Signature: ", Signature(options_.secret, timestamp, j.body)),
      // Bodies go at once: no 100-continue round trip (curl asks for one above 1 KB).
      "Expect:",
  };
  for (const std::string& h : headers) t->headers = curl_slist_append(t->headers, h.c_str());

  CURL* easy = curl_easy_init();
  curl_easy_setopt(easy, CURLOPT_URL, j.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, j.body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(j.body.size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &WriteReply);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t->reply);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(limits_.proxy_timeout_ms));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
  if (t->job.done == nullptr) ++active_notifications_;
  active_.emplace(easy, std::move(t));
  curl_multi_add_handle(multi_, easy);
}

void HttpProxy::Finish(CURL* easy, CURLcode result) {
  auto it = active_.find(easy);
  if (it == active_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  active_.erase(it);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(multi_, easy);
  curl_easy_cleanup(easy);

  Job& job = t->job;
  Outcomes& outcomes = outcomes_[static_cast<int>(job.event)];
  absl::Status failure;
  if (result == CURLE_OK && status >= 200 && status < 300) {
    outcomes.ok.fetch_add(1, std::memory_order_relaxed);
  } else if (result == CURLE_OK) {
    outcomes.http_error.fetch_add(1, std::memory_order_relaxed);
    failure = absl::UnavailableError(absl::StrCat("backend answered HTTP ", status));
  } else if (result == CURLE_WRITE_ERROR && t->reply.too_large) {
    outcomes.too_large.fetch_add(1, std::memory_order_relaxed);
    failure = absl::InternalError(
        absl::StrCat("backend reply larger than ", limits_.proxy_max_reply_bytes, " bytes"));
  } else if (result == CURLE_OPERATION_TIMEDOUT) {
    outcomes.timeout.fetch_add(1, std::memory_order_relaxed);
    failure = absl::DeadlineExceededError(
        absl::StrCat("backend did not answer within ", limits_.proxy_timeout_ms, " ms"));
  } else {
    outcomes.unreachable.fetch_add(1, std::memory_order_relaxed);
    // The client is not told where the backend is; the log says.
    failure = absl::UnavailableError("backend unreachable");
  }
  if (!failure.ok()) {
    const absl::Time now = absl::Now();
    if (now - last_warning_ >= kWarningPeriod) {
      spdlog::warn("{} {} (request {}, attempt {}): {}{}{}{}",
                   std::string(core::ProxyEventName(job.event)), job.url, job.request_id,
                   job.attempt, std::string(failure.message()),
                   result == CURLE_OK ? "" : absl::StrCat(": ", curl_easy_strerror(result)),
                   unlogged_failures_ > 0 ? "; not logged since the last line: " : "",
                   unlogged_failures_ > 0 ? absl::StrCat(unlogged_failures_, " failures") : "");
      last_warning_ = now;
      unlogged_failures_ = 0;
    } else {
      ++unlogged_failures_;
    }
  }

  if (job.done != nullptr) {
    {
      core::MutexLock lock(&mu_);
      --calls_pending_;
    }
    core::Done<std::string> done = std::move(job.done);
    if (failure.ok()) {
      done(std::move(t->reply.body));
    } else {
      done(failure);
    }
    return;
  }
  --active_notifications_;
  if (failure.ok() || job.attempt >= limits_.webhook_attempts) {
    if (!failure.ok()) dropped_failed_.fetch_add(1, std::memory_order_relaxed);
    core::MutexLock lock(&mu_);
    --notifications_queued_;
    return;
  }
  // Retried after 1, 2, 4, ... times the backoff, at most kMaxBackoff.
  absl::Duration backoff = absl::Milliseconds(limits_.webhook_backoff_ms);
  for (uint32_t i = 1; i < job.attempt && backoff < kMaxBackoff; ++i) backoff *= 2;
  job.due = absl::Now() + std::min(backoff, kMaxBackoff);
  ++job.attempt;
  retried_.fetch_add(1, std::memory_order_relaxed);
  retries_.push_back(std::move(job));
  std::push_heap(retries_.begin(), retries_.end(), LaterFirst());
}

}  // namespace herald::proxy
