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
}  // namespace

std::string RenderMetrics(const herald::v1::StatsResponse& s) {
  std::string out;
  Metric(&out, "herald_connections", "gauge", "Open WebSocket connections.", s.connections());
  Metric(&out, "herald_users", "gauge", "Distinct authenticated users connected.", s.users());
  Metric(&out, "herald_channels", "gauge", "Channels with at least one subscriber.", s.channels());
  Metric(&out, "herald_subscriptions", "gauge", "Channel subscriptions.", s.subscriptions());
  Metric(&out, "herald_connections_total", "counter", "Connections accepted.",
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
  return out;
}

}  // namespace herald::core
