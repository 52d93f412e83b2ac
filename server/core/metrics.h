#ifndef HERALD_SERVER_CORE_METRICS_H_
#define HERALD_SERVER_CORE_METRICS_H_

#include <string>

#include "herald/v1/broker.pb.h"

namespace herald::core {

// Renders Stats in the Prometheus text exposition format (served at /metrics). Pure function.
std::string RenderMetrics(const herald::v1::StatsResponse& stats);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_METRICS_H_
