#ifndef HERALD_SERVER_RPC_EVENT_FEED_H_
#define HERALD_SERVER_RPC_EVENT_FEED_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/api_executor.h"
#include "server/rpc/http_api.h"

namespace herald::rpc {

// The transport of one event stream (main.cc adapts the HTTP/1.1 server's http::Exchange).
class EventStreamSink {
 public:
  virtual ~EventStreamSink() = default;
  // Answers the request with `reply` instead of a stream. Any thread.
  virtual void Refuse(HttpReply reply) = 0;
  // Starts the stream (status 200 with `headers`); `on_closed` runs on the stream's thread when
  // the stream ends for a reason other than Close(). Any thread.
  virtual void Start(std::vector<std::pair<std::string, std::string>> headers,
                     std::function<void()> on_closed) = 0;
  // Runs `work` on the stream's thread. Any thread.
  virtual void Post(std::function<void()> work) = 0;
  // Sends bytes; false when the stream is gone (the peer left, or is more than the transport's
  // byte bound behind and was disconnected). The stream's thread only.
  virtual bool Write(absl::string_view bytes) = 0;
  // Ends the stream. The stream's thread only.
  virtual void Close() = 0;
};

// An event stream request, transport-free. The views must stay valid during EventFeed::Open.
struct EventFeedRequest {
  absl::string_view method;  // "GET"
  absl::string_view query;   // the raw query string, without '?'
  absl::string_view authorization;
  absl::string_view last_event_id;  // the Last-Event-ID header ("" when absent)
};

// Server-Sent Events for the control API: `GET /api/v1/events` streams the node's events (what
// gRPC WatchEvents streams, with the same filters as query parameters: `type` (repeatable or
// comma-separated: `connect`, `EVENT_TYPE_CONNECT` or 1), `channel`, `user`) as
// `id: <seq>\nevent: <type>\ndata: <JSON of the Event>\n\n`, with a comment heartbeat every
// --sse-heartbeat-ms. Every event gets a sequence number in one log of the newest
// --sse-replay-events events (attached to the node's EventBus when the first stream opens, and
// kept from then on), so a client that comes back with `Last-Event-ID: <seq>` (or
// `?lastEventId=`) gets exactly the events after it that match its filter. An id the log no
// longer holds (or never held: a restarted node) gets `event: reset` first, then live events.
// Each stream is pumped on its transport's thread from the log, so a slow reader costs only its
// transport's bounded buffer (then it is disconnected). Thread-safe.
class EventFeed {
 public:
  static constexpr absl::string_view kPath = "/api/v1/events";

  // `api` must outlive the feed. An empty `api_key` accepts every stream.
  EventFeed(core::ApiExecutor* api, std::string api_key);
  ~EventFeed();
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  // Checks the request (GET, API key, filters) and either refuses it through the sink or
  // starts the stream on it.
  void Open(const EventFeedRequest& request, std::shared_ptr<EventStreamSink> sink);
  // Sends the heartbeat when it is due; call periodically (main.cc: the ticker), any thread.
  void Tick(absl::Time now);
  // Ends every stream; later ones are refused with UNAVAILABLE (the drain).
  void Shutdown();
  size_t stream_count() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_EVENT_FEED_H_
