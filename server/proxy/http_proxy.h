#ifndef HERALD_SERVER_PROXY_HTTP_PROXY_H_
#define HERALD_SERVER_PROXY_HTTP_PROXY_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/limits.h"
#include "server/core/mutex.h"
#include "server/core/proxy.h"
#include "server/proxy/route.h"

namespace herald::proxy {

struct ProxyOptions {
  std::vector<Route> routes;
  // Key of the HMAC-SHA256 signature of every request (required with any route).
  std::string secret;
  // User-Agent of the requests ("herald/0.1.0").
  std::string user_agent = "herald";
  // The node, in request ids.
  std::string node;
};

// The X-Herald-Signature header's value for a request sent at `timestamp` (Unix seconds, as in
// X-Herald-Timestamp) with `body`: "sha256=" + lowercase hex of HMAC-SHA256(secret,
// timestamp + "." + body). Pure function.
std::string Signature(absl::string_view secret, absl::string_view timestamp,
                      absl::string_view body);

// core::Proxy over HTTP: every request is a POST of a JSON body, signed, with a timeout and a
// request id (docs/api.md "Webhooks"). One thread of its own runs libcurl's multi interface
// (keep-alive connections per backend, TLS, timeouts), started by the constructor: Call and
// Notify only queue under a mutex and wake it (curl_multi_wakeup), so no I/O thread ever waits
// for a backend. Completions run on that thread with no lock held. Notifications are retried
// with exponential backoff (Limits::webhook_attempts, webhook_backoff_ms), at most
// Limits::webhook_concurrency in flight, at most Limits::webhook_queue_size queued in all
// (more are dropped and counted). Thread-safe.
class HttpProxy : public core::Proxy {
 public:
  HttpProxy(ProxyOptions options, const core::Limits& limits);
  // Shutdown(0) if not done.
  ~HttpProxy() override;
  HttpProxy(const HttpProxy&) = delete;
  HttpProxy& operator=(const HttpProxy&) = delete;

  bool Routes(core::ProxyEvent event, absl::string_view key) const override;
  void Call(core::ProxyEvent event, absl::string_view key, std::string body,
            core::Done<std::string> done) override;
  void Notify(core::ProxyEvent event, absl::string_view key, std::string body) override;

  // Refuses new calls (UNAVAILABLE) and notifications from now on, lets what was queued go on for
  // at most `flush` (notifications being delivered), then fails what is left: calls with
  // UNAVAILABLE, notifications dropped (counted). Returns once the thread has stopped, so no
  // completion runs after it. Idempotent.
  void Shutdown(absl::Duration flush);

  core::ProxyStats Stats() const;

 private:
  struct Job {
    core::ProxyEvent event;
    std::string url;
    std::string body;
    std::string request_id;
    uint32_t attempt = 1;
    absl::Time due;                // when a retry may start
    core::Done<std::string> done;  // calls; empty for notifications
  };
  struct Transfer;
  struct LaterFirst {
    bool operator()(const Job& a, const Job& b) const { return a.due > b.due; }
  };
  using Counter = std::atomic<uint64_t>;
  struct Outcomes {
    Counter ok{0}, http_error{0}, unreachable{0}, timeout{0}, too_large{0}, rejected{0};
  };

  const std::string& UrlFor(core::ProxyEvent event, absl::string_view key) const;
  std::string NextRequestId();
  // The proxy thread.
  void Run();
  void Start(Job job);
  void Finish(CURL* easy, CURLcode result);
  // Fails or drops everything left (Shutdown).
  void Abandon(Job job);

  const ProxyOptions options_;
  const core::Limits limits_;
  // Per event: (prefix, url), one per prefix, longest prefix first.
  std::array<std::vector<std::pair<std::string, std::string>>, core::kProxyEventCount> routes_;
  CURLM* const multi_;
  std::atomic<uint64_t> next_request_{0};

  mutable core::Mutex mu_;
  std::deque<Job> inbox_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time flush_until_ ABSL_GUARDED_BY(mu_);
  size_t calls_pending_ ABSL_GUARDED_BY(mu_) = 0;
  size_t notifications_queued_ ABSL_GUARDED_BY(mu_) = 0;

  // The proxy thread's own.
  absl::flat_hash_map<CURL*, std::unique_ptr<Transfer>> active_;
  size_t active_notifications_ = 0;
  std::deque<Job> ready_notifications_;
  std::vector<Job> retries_;  // a heap by `due` (LaterFirst)
  absl::Time last_warning_ = absl::InfinitePast();
  uint64_t unlogged_failures_ = 0;

  Outcomes outcomes_[core::kProxyEventCount];
  Counter retried_{0};
  Counter dropped_queue_full_{0};
  Counter dropped_failed_{0};
  Counter dropped_shutdown_{0};

  core::Mutex shutdown_mu_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace herald::proxy

#endif  // HERALD_SERVER_PROXY_HTTP_PROXY_H_
