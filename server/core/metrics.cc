#include "server/core/metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace herald::core {
namespace {
void Metric(std::string* out, const char* name, const char* type, const char* help,
            uint64_t value) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                  value, "\n");
}
// A label value escaped for the text format: backslash, double quote and newline.
std::string LabelValue(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// One family with a sample per queue: herald_task_queue_waiting{queue="emails"} 3.
template <typename Value>
void PerQueue(std::string* out, const char* name, const char* type, const char* help,
              const herald::v1::ListQueuesResponse& queues, Value value) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  for (const herald::v1::QueueInfo& q : queues.queues()) {
    absl::StrAppend(out, name, "{queue=\"", LabelValue(q.queue()), "\"} ", value(q), "\n");
  }
}

void RenderQueues(std::string* out, const herald::v1::ListQueuesResponse& queues) {
  using Q = herald::v1::QueueInfo;
  PerQueue(out, "herald_task_queue_workers", "gauge", "Workers attached to the task queue.", queues,
           [](const Q& q) { return q.workers(); });
  PerQueue(out, "herald_task_queue_waiting", "gauge", "Tasks waiting for a worker.", queues,
           [](const Q& q) { return q.waiting(); });
  PerQueue(out, "herald_task_queue_in_flight", "gauge",
           "Tasks assigned to a worker and not acked yet.", queues,
           [](const Q& q) { return q.in_flight_size(); });
  PerQueue(out, "herald_tasks_dispatched_total", "counter", "Tasks dispatched to the queue.",
           queues, [](const Q& q) { return q.dispatched(); });
  PerQueue(out, "herald_tasks_acked_total", "counter", "Tasks acked by a worker.", queues,
           [](const Q& q) { return q.acked(); });
  PerQueue(out, "herald_tasks_redelivered_total", "counter",
           "Task deliveries repeated after a missed ack deadline or a lost worker.", queues,
           [](const Q& q) { return q.redelivered(); });
  PerQueue(out, "herald_tasks_expired_total", "counter",
           "Tasks dropped unacked when their time to live ran out.", queues,
           [](const Q& q) { return q.expired(); });
}

}  // namespace

std::string RenderMetrics(const herald::v1::StatsResponse& s,
                          const herald::v1::ListQueuesResponse& queues) {
  std::string out;
  Metric(&out, "herald_connections", "gauge", "Open WebSocket connections.", s.connections());
  Metric(&out, "herald_users", "gauge", "Distinct authenticated users connected.", s.users());
  Metric(&out, "herald_channels", "gauge", "Channels with at least one subscriber.", s.channels());
  Metric(&out, "herald_subscriptions", "gauge", "Channel subscriptions.", s.subscriptions());
  // Not herald_connections_total: OpenMetrics names a counter's family without `_total`, which
  // would clash with the herald_connections gauge.
  Metric(&out, "herald_connections_opened_total", "counter", "Connections accepted.",
         s.connections_total());
  Metric(&out, "herald_publications_total", "counter", "Channel publications.", s.publications());
  Metric(&out, "herald_deliveries_total", "counter", "Frames queued to subscribers.",
         s.deliveries());
  Metric(&out, "herald_frames_in_total", "counter", "Frames received from clients.", s.frames_in());
  Metric(&out, "herald_frames_out_total", "counter", "Frames queued to clients.", s.frames_out());
  Metric(&out, "herald_bytes_in_total", "counter", "Bytes received from clients.", s.bytes_in());
  Metric(&out, "herald_bytes_out_total", "counter", "Bytes queued to clients.", s.bytes_out());
  Metric(&out, "herald_orders_tracked", "gauge", "Orders whose latest version is kept.",
         s.orders_tracked());
  Metric(&out, "herald_stale_orders_total", "counter", "Order versions ignored as stale.",
         s.stale_orders());
  Metric(&out, "herald_client_errors_total", "counter", "Error replies sent to clients.",
         s.client_errors());
  Metric(&out, "herald_slow_consumer_closes_total", "counter",
         "Connections closed for exceeding the send buffer.", s.slow_consumer_closes());
  Metric(&out, "herald_client_messages_total", "counter", "message frames from clients.",
         s.messages_from_clients());
  Metric(&out, "herald_conflated_updates_total", "counter",
         "Order updates replaced by a newer version for a connection that was behind.",
         s.conflated_updates());
  Metric(&out, "herald_watchers", "gauge", "WatchEvents streams attached.", s.watchers());
  absl::StrAppend(&out,
                  "# HELP herald_limit_refusals_total Work refused by a limit, by reason.\n"
                  "# TYPE herald_limit_refusals_total counter\n");
  const std::pair<const char*, uint64_t> refusals[] = {
      {"frame_rate", s.rate_limited_frames()},
      {"frame_rate_close", s.rate_limit_closes()},
      {"connections_per_ip", s.refused_connections_per_ip()},
      {"connections_per_user", s.refused_connections_per_user()},
      {"max_connections", s.refused_connections_max()},
      {"api_rate", s.rate_limited_api_requests()},
  };
  for (const auto& [reason, value] : refusals) {
    absl::StrAppend(&out, "herald_limit_refusals_total{reason=\"", reason, "\"} ", value, "\n");
  }
  Metric(&out, "herald_uptime_seconds", "gauge", "Seconds since start.", s.uptime_ms() / 1000);
  RenderQueues(&out, queues);
  return out;
}

std::string RenderProxyMetrics(const ProxyStats& s) {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP herald_proxy_requests_total Requests to HTTP backends (proxies and "
                  "webhooks), by event and outcome.\n"
                  "# TYPE herald_proxy_requests_total counter\n");
  for (int e = 0; e < kProxyEventCount; ++e) {
    const ProxyStats::Outcomes& o = s.requests[e];
    const std::pair<const char*, uint64_t> outcomes[] = {
        {"ok", o.ok},           {"http_error", o.http_error}, {"unreachable", o.unreachable},
        {"timeout", o.timeout}, {"too_large", o.too_large},   {"rejected", o.rejected},
    };
    const absl::string_view event = ProxyEventName(static_cast<ProxyEvent>(e));
    for (const auto& [result, value] : outcomes) {
      absl::StrAppend(&out, "herald_proxy_requests_total{event=\"", event, "\",result=\"", result,
                      "\"} ", value, "\n");
    }
  }
  Metric(&out, "herald_webhook_retries_total", "counter",
         "Webhook notification attempts repeated after a failure.", s.notification_retries);
  absl::StrAppend(&out,
                  "# HELP herald_webhooks_dropped_total Webhook notifications given up, by "
                  "reason.\n"
                  "# TYPE herald_webhooks_dropped_total counter\n");
  const std::pair<const char*, uint64_t> dropped[] = {
      {"queue_full", s.notifications_dropped_queue_full},
      {"failed", s.notifications_dropped_failed},
      {"shutdown", s.notifications_dropped_shutdown},
  };
  for (const auto& [reason, value] : dropped) {
    absl::StrAppend(&out, "herald_webhooks_dropped_total{reason=\"", reason, "\"} ", value, "\n");
  }
  Metric(&out, "herald_webhook_queue", "gauge",
         "Webhook notifications queued: waiting, in flight or waiting for a retry.",
         s.notifications_queued);
  return out;
}

std::string RenderBuildInfo(absl::string_view version, absl::string_view revision,
                            absl::string_view allocator) {
  return absl::StrCat(
      "# HELP herald_build_info The build answering: its version, git revision and the allocator "
      "serving malloc. Always 1.\n"
      "# TYPE herald_build_info gauge\n"
      "herald_build_info{version=\"",
      LabelValue(version), "\",revision=\"", LabelValue(revision), "\",allocator=\"",
      LabelValue(allocator), "\"} 1\n");
}

}  // namespace herald::core
