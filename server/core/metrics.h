#ifndef HERALD_SERVER_CORE_METRICS_H_
#define HERALD_SERVER_CORE_METRICS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "herald/v1/broker.pb.h"
#include "server/core/proxy.h"

namespace herald::core {

// Renders Stats and the task queues (what ListQueues answers) in the Prometheus text exposition
// format (served at /metrics): each family once, with HELP and TYPE, and no gauge whose name is
// a counter's without `_total` (OpenMetrics parsers would fold the two). Pure function.
std::string RenderMetrics(const herald::v1::StatsResponse& stats,
                          const herald::v1::ListQueuesResponse& queues =
                              herald::v1::ListQueuesResponse::default_instance());

// The webhooks' counters (proxy::HttpProxy): herald_proxy_requests_total{event,result},
// herald_webhook_retries_total, herald_webhooks_dropped_total{reason}, herald_webhook_queue.
// Pure function.
std::string RenderProxyMetrics(const ProxyStats& stats);

// herald_build_info{version="0.1.0",revision="a609f88",allocator="mimalloc 2.0.9"} 1: which
// build answers, and the allocator serving its malloc. Pure function.
std::string RenderBuildInfo(absl::string_view version, absl::string_view revision,
                            absl::string_view allocator);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_METRICS_H_
