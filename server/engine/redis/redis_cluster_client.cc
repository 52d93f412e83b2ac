#include "server/engine/redis/redis_cluster_client.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/engine/redis/redis_slot.h"

namespace herald::engine {
namespace {

// Tries of one command: MOVED and ASK retry at once, TRYAGAIN (a multi-key command on a slot
// being migrated, some of its keys not there yet) and CLUSTERDOWN after kRetryWait, so a command
// waits up to about 2 s for a migration or a failover to end.
constexpr int kMaxTries = 40;
constexpr auto kRetryWait = std::chrono::milliseconds(50);
constexpr auto kRefreshRetry = std::chrono::milliseconds(200);

std::string Address(const std::string& host, int64_t port) {
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", port)
                                      : absl::StrCat(host, ":", port);
}

}  // namespace

RedisOptions ClusterNodeOptions(const RedisOptions& base, const std::string& address) {
  RedisOptions out = base;
  const size_t colon = address.rfind(':');
  absl::string_view host = absl::string_view(address).substr(0, colon);
  absl::ConsumePrefix(&host, "[");
  absl::ConsumeSuffix(&host, "]");
  out.host = std::string(host);
  uint32_t port = 0;
  if (colon != std::string::npos && absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

RedisClusterClient::RedisClusterClient(asio::io_context* io, RedisOptions options, std::string name,
                                       std::vector<Argv> handshake, Handlers handlers)
    : io_(io),
      options_(std::move(options)),
      name_(std::move(name)),
      handshake_(std::move(handshake)),
      handlers_(std::move(handlers)),
      slots_(kRedisSlots),
      refresh_timer_(*io) {}

RedisClusterClient::~RedisClusterClient() = default;

void RedisClusterClient::Start() {
  for (const std::string& seed : options_.cluster_nodes) Node(seed);
}

void RedisClusterClient::Stop() {
  stopped_ = true;
  refresh_timer_.cancel();
  const bool was_ready = ready_;
  ready_ = false;
  for (auto& [address, node] : nodes_) node->Stop();
  if (was_ready && handlers_.on_down) handlers_.on_down();
}

RedisConnection* RedisClusterClient::Node(const std::string& address) {
  auto it = nodes_.find(address);
  if (it != nodes_.end()) return it->second.get();
  RedisConnection::Handlers handlers;
  handlers.on_ready = [this] {
    if (masters_.empty()) RefreshMap();
    UpdateReady();
  };
  handlers.on_down = [this] {
    UpdateReady();
    RefreshMap();  // a master that is gone for good was replaced by a failover
  };
  auto node = std::make_unique<RedisConnection>(io_, ClusterNodeOptions(options_, address),
                                                absl::StrCat(name_, " ", address), handshake_,
                                                std::move(handlers));
  RedisConnection* raw = node.get();
  nodes_.emplace(address, std::move(node));
  if (!stopped_) raw->Start();
  return raw;
}

std::string RedisClusterClient::OwnerOf(int slot) const {
  return slot >= 0 && slot < kRedisSlots ? slots_[slot] : std::string();
}

void RedisClusterClient::RefreshMap() {
  if (stopped_ || refreshing_) return;
  RedisConnection* via = nullptr;
  std::string from;
  for (const std::string& m : masters_) {
    auto it = nodes_.find(m);
    if (it != nodes_.end() && it->second->ready()) {
      via = it->second.get();
      from = m;
      break;
    }
  }
  for (auto it = nodes_.begin(); via == nullptr && it != nodes_.end(); ++it) {
    if (it->second->ready()) {
      via = it->second.get();
      from = it->first;
    }
  }
  refreshing_ = true;
  auto retry = [this] {
    refresh_timer_.expires_after(kRefreshRetry);
    refresh_timer_.async_wait([this](const asio::error_code& ec) {
      refreshing_ = false;
      if (!ec && !ready_) RefreshMap();
    });
  };
  if (via == nullptr) return retry();
  via->Command({"CLUSTER", "SLOTS"}, [this, from, retry](absl::StatusOr<RedisReply> r) mutable {
    if (stopped_) return;
    if (!r.ok() || !r->is_array() || r->elements.empty()) return retry();
    refreshing_ = false;
    OnSlots(*r, from);
  });
}

void RedisClusterClient::OnSlots(const RedisReply& reply, const std::string& from) {
  std::vector<std::string> slots(kRedisSlots);
  std::set<std::string> masters;
  const std::string from_host = ClusterNodeOptions(options_, from).host;
  for (const RedisReply& range : reply.elements) {
    if (!range.is_array() || range.elements.size() < 3 || !range.at(2).is_array()) continue;
    const int64_t first = range.at(0).number();
    const int64_t last = range.at(1).number();
    std::string host = range.at(2).at(0).text();
    // An empty or "?" host: the node does not know its address; it is the one we asked.
    if (host.empty() || host == "?") host = from_host;
    const std::string address = Address(host, range.at(2).at(1).number());
    if (first < 0 || last >= kRedisSlots || first > last) continue;
    for (int64_t s = first; s <= last; ++s) slots[s] = address;
    masters.insert(address);
  }
  const bool changed = slots != slots_;
  slots_ = std::move(slots);
  masters_ = std::move(masters);
  for (const std::string& m : masters_) Node(m);
  UpdateReady();
  if (changed && on_map_) on_map_();
}

void RedisClusterClient::UpdateReady() {
  if (stopped_) return;
  bool ready = !masters_.empty();
  for (const std::string& m : masters_) {
    auto it = nodes_.find(m);
    ready = ready && it != nodes_.end() && it->second->ready();
  }
  // Every slot must have a master (a cluster still being formed has holes).
  for (int s = 0; ready && s < kRedisSlots; ++s) ready = !slots_[s].empty();
  if (ready == ready_) return;
  ready_ = ready;
  if (ready && handlers_.on_ready) handlers_.on_ready();
  if (!ready && handlers_.on_down) handlers_.on_down();
}

void RedisClusterClient::Command(Argv argv, ReplyFn done) {
  if (argv.empty()) return done(absl::InvalidArgumentError("redis: empty command"));
  std::string verb = absl::AsciiStrToUpper(argv[0]);
  int slot = -1;
  if (verb == "PUBLISH") argv[0] = "SPUBLISH";
  if (argv.size() >= 2 && verb != "PING" && verb != "CLUSTER") slot = KeySlot(argv[1]);
  auto op = std::make_shared<const Op>(
      [argv = std::move(argv)](RedisConnection* c, ReplyFn f) { c->Command(argv, std::move(f)); });
  Route(slot, std::move(op), std::move(done), 0, "", false);
}

void RedisClusterClient::Eval(const RedisScript& script, const Argv& keys, const Argv& args,
                              ReplyFn done) {
  if (keys.empty()) {
    return done(absl::InternalError("redis cluster: a script without keys cannot be routed"));
  }
  const RedisScript* sharded = &Sharded(script);
  auto op = std::make_shared<const Op>([sharded, keys, args](RedisConnection* c, ReplyFn f) {
    c->Eval(*sharded, keys, args, std::move(f));
  });
  Route(KeySlot(keys[0]), std::move(op), std::move(done), 0, "", false);
}

void RedisClusterClient::Route(int slot, std::shared_ptr<const Op> op, ReplyFn done, int attempt,
                               std::string target, bool asking) {
  if (stopped_) return done(absl::UnavailableError("redis cluster client stopped"));
  if (target.empty() && slot >= 0) target = slots_[slot];
  if (target.empty() && slot < 0) {
    for (const std::string& m : masters_) {
      auto it = nodes_.find(m);
      if (it != nodes_.end() && it->second->ready()) {
        target = m;
        break;
      }
    }
  }
  auto it = target.empty() ? nodes_.end() : nodes_.find(target);
  if (it == nodes_.end() || !it->second->ready()) {
    // A redirection to a node we are still connecting to waits for it; a first attempt fails
    // at once (Redis unreachable: fail fast, like RedisConnection).
    if (attempt > 0 && attempt < kMaxTries && !target.empty()) {
      return RouteLater(slot, std::move(op), std::move(done), attempt + 1, std::move(target),
                        asking);
    }
    return done(absl::UnavailableError(
        absl::StrCat("redis cluster: no ready master for slot ", slot,
                     target.empty() ? std::string() : absl::StrCat(" (", target, ")"))));
  }
  RedisConnection* c = it->second.get();
  if (asking) c->Command({"ASKING"}, [](absl::StatusOr<RedisReply>) {});
  (*op)(c, [this, slot, op, attempt, done = std::move(done)](absl::StatusOr<RedisReply> r) mutable {
    if (r.ok() || r.status().code() != absl::StatusCode::kInternal || stopped_) {
      return done(std::move(r));
    }
    const absl::string_view message = r.status().message();
    const bool redirected = absl::StartsWith(message, "redis: MOVED ") ||
                            absl::StartsWith(message, "redis: ASK ") ||
                            absl::StartsWith(message, "redis: TRYAGAIN") ||
                            absl::StartsWith(message, "redis: CLUSTERDOWN");
    if (!redirected) return done(std::move(r));
    if (attempt + 1 >= kMaxTries) {
      return done(absl::UnavailableError(absl::StrCat(
          "redis cluster: slot ", slot, " still moving after ", kMaxTries, " tries: ", message)));
    }
    // "redis: MOVED <slot> <host:port>", "redis: ASK <slot> <host:port>".
    const std::vector<std::string> words = absl::StrSplit(message, ' ');
    const bool moved = absl::StartsWith(message, "redis: MOVED ");
    const bool ask = absl::StartsWith(message, "redis: ASK ");
    if ((moved || ask) && words.size() >= 4) {
      const std::string& address = words[3];
      Node(address);
      if (moved) {
        if (slot >= 0) slots_[slot] = address;
        RefreshMap();
      }
      return Route(slot, op, std::move(done), attempt + 1, address, ask);
    }
    if (absl::StartsWith(message, "redis: TRYAGAIN") ||
        absl::StartsWith(message, "redis: CLUSTERDOWN")) {
      return RouteLater(slot, op, std::move(done), attempt + 1, "", false);
    }
    done(std::move(r));
  });
}

void RedisClusterClient::RouteLater(int slot, std::shared_ptr<const Op> op, ReplyFn done,
                                    int attempt, std::string target, bool asking) {
  auto timer = std::make_shared<asio::steady_timer>(*io_, kRetryWait);
  timer->async_wait([this, timer, slot, op = std::move(op), done = std::move(done), attempt,
                     target = std::move(target), asking](const asio::error_code&) mutable {
    Route(slot, std::move(op), std::move(done), attempt, std::move(target), asking);
  });
}

}  // namespace herald::engine
