#ifndef HERALD_SERVER_PROXY_ROUTE_H_
#define HERALD_SERVER_PROXY_ROUTE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/proxy.h"

namespace herald::proxy {

// Where one event goes: the backend URL for keys (channels of subscribe/join/leave, methods of
// rpc) that start with `prefix`; the longest matching prefix wins, "" matches every key. An
// empty URL sends nothing for those keys (an exception under a shorter prefix).
struct Route {
  core::ProxyEvent event;
  std::string prefix;
  std::string url;
};

// Reads a flag value `[PREFIX=]URL` for `event`: a value that starts with http:// or https:// is
// a URL for every key; otherwise PREFIX is what precedes the first '=' and the URL follows
// (empty: not proxied). Prefixes only for subscribe, rpc, join and leave. INVALID_ARGUMENT
// naming the problem.
absl::StatusOr<Route> ParseRoute(core::ProxyEvent event, absl::string_view spec);

}  // namespace herald::proxy

#endif  // HERALD_SERVER_PROXY_ROUTE_H_
