#include "server/engine/redis/redis_options.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace herald::engine {

absl::StatusOr<RedisOptions> ParseRedisUrl(absl::string_view url, RedisOptions base) {
  RedisOptions out = std::move(base);
  absl::string_view rest = url;
  out.cluster = absl::ConsumePrefix(&rest, "rediss+cluster://") ||
                absl::ConsumePrefix(&rest, "redis+cluster://");
  if (out.cluster) {
    out.tls = absl::StartsWith(url, "rediss");
  } else {
    out.tls = absl::ConsumePrefix(&rest, "rediss://");
    if (!out.tls && !absl::ConsumePrefix(&rest, "redis://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL \"", url,
                       "\": expected redis[s]://[[user]:password@]host[:port][/db] or "
                       "redis[s]+cluster://[[user]:password@]host:port[,host:port...]"));
    }
  }
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view auth = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    size_t colon = auth.find(':');
    if (colon == absl::string_view::npos) {
      out.password = std::string(auth);  // redis://secret@host
    } else {
      out.username = std::string(auth.substr(0, colon));
      out.password = std::string(auth.substr(colon + 1));
    }
  }
  absl::string_view hostport = rest;
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    absl::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!absl::SimpleAtoi(db, &out.db) || out.db < 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL \"", url, "\": database \"", db, "\" is not a number"));
    }
  }
  if (out.cluster) {
    if (out.db != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL \"", url, "\": a Redis Cluster has database 0 only"));
    }
    out.cluster_nodes.clear();
    RedisOptions first;
    for (absl::string_view node : absl::StrSplit(hostport, ',')) {
      absl::StatusOr<RedisOptions> one = ParseRedisUrl(absl::StrCat("redis://", node));
      if (!one.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("redis URL \"", url, "\": node \"", node, "\": ", one.status().message()));
      }
      if (out.cluster_nodes.empty()) first = *one;
      out.cluster_nodes.push_back(absl::StrContains(one->host, ':')
                                      ? absl::StrCat("[", one->host, "]:", one->port)
                                      : absl::StrCat(one->host, ":", one->port));
    }
    out.host = first.host;
    out.port = first.port;
    return out;
  }
  absl::string_view host = hostport;
  const size_t colon = hostport.rfind(':');
  const size_t bracket = hostport.rfind(']');  // [::1]:6379
  if (colon != absl::string_view::npos && (bracket == absl::string_view::npos || colon > bracket)) {
    host = hostport.substr(0, colon);
    uint32_t port = 0;
    if (!absl::SimpleAtoi(hostport.substr(colon + 1), &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL \"", url, "\": bad port \"", hostport.substr(colon + 1), "\""));
    }
    out.port = static_cast<uint16_t>(port);
  }
  absl::ConsumePrefix(&host, "[");
  absl::ConsumeSuffix(&host, "]");
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("redis URL \"", url, "\": no host"));
  }
  out.host = std::string(host);
  return out;
}

}  // namespace herald::engine
