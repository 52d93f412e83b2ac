#include "server/proxy/route.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald::proxy {
namespace {

using core::ProxyEvent;

bool TakesPrefix(ProxyEvent event) {
  return event == ProxyEvent::kSubscribe || event == ProxyEvent::kRpc ||
         event == ProxyEvent::kJoin || event == ProxyEvent::kLeave;
}

bool IsHttpUrl(absl::string_view url) {
  return absl::StartsWithIgnoreCase(url, "http://") || absl::StartsWithIgnoreCase(url, "https://");
}

}  // namespace

absl::StatusOr<Route> ParseRoute(ProxyEvent event, absl::string_view spec) {
  Route route{event, "", ""};
  if (IsHttpUrl(spec)) {
    route.url = std::string(spec);
  } else {
    const size_t eq = spec.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("expected an http:// or https:// URL",
                                                     TakesPrefix(event) ? " or PREFIX=URL" : "",
                                                     ", got '", spec, "'"));
    }
    route.prefix = std::string(spec.substr(0, eq));
    route.url = std::string(spec.substr(eq + 1));
    if (!TakesPrefix(event)) {
      return absl::InvalidArgumentError(absl::StrCat("expected an http:// or https:// URL (",
                                                     core::ProxyEventName(event),
                                                     " has no prefixes), got '", spec, "'"));
    }
    if (route.prefix.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty prefix in '", spec, "'"));
    }
    if (!route.url.empty() && !IsHttpUrl(route.url)) {
      return absl::InvalidArgumentError(absl::StrCat("expected an http:// or https:// URL after '",
                                                     route.prefix, "=', got '", route.url, "'"));
    }
  }
  return route;
}

}  // namespace herald::proxy
