#include "server/rpc/event_feed.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "herald/v1/broker.pb.h"
#include "server/core/events.h"
#include "server/core/mutex.h"
#include "server/core/protocol.h"
#include "server/http/percent_decode.h"
#include "server/json/json_check.h"
#include "server/rpc/methods.h"

namespace herald::rpc {
namespace {

constexpr absl::string_view kHeartbeat = ": heartbeat\n\n";

struct Entry {
  uint64_t seq;
  v1::Event event;
  std::string frame;  // "id: …\nevent: …\ndata: …\n\n"
  size_t bytes = 0;   // what the entry holds, about (counted against sse_replay_bytes)
};

// One open stream. The filter and the sink never change; `cursor` and `closed` are guarded by
// the feed's mutex.
struct Stream {
  core::EventWatcher::Filter filter;
  std::shared_ptr<EventStreamSink> sink;
  uint64_t cursor = 0;  // the last sequence number this stream has been given (or skipped)
  bool closed = false;
  std::atomic<bool> scheduled{false};  // a Pump is posted and has not started
};

bool Matches(const core::EventWatcher::Filter& filter, const v1::Event& event) {
  if (!filter.types.empty() && !filter.types.contains(event.type())) return false;
  if (!filter.channel.empty() && event.channel() != filter.channel) return false;
  if (!filter.user.empty() && event.user() != filter.user) return false;
  return true;
}

// "connect" for EVENT_TYPE_CONNECT.
std::string TypeName(v1::EventType type) {
  absl::string_view name = v1::EventType_Name(type);
  absl::ConsumePrefix(&name, "EVENT_TYPE_");
  return absl::AsciiStrToLower(name);
}

std::optional<v1::EventType> ParseType(absl::string_view text) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    if (!v1::EventType_IsValid(number)) return std::nullopt;
    return static_cast<v1::EventType>(number);
  }
  std::string name = absl::AsciiStrToUpper(text);
  if (!absl::StartsWith(name, "EVENT_TYPE_")) name = absl::StrCat("EVENT_TYPE_", name);
  v1::EventType type;
  if (!v1::EventType_Parse(name, &type)) return std::nullopt;
  return type;
}

// "connect, disconnect, …": every event type's name as ParseType takes it, from the enum itself.
std::string TypeNames() {
  const google::protobuf::EnumDescriptor* types = v1::EventType_descriptor();
  std::vector<std::string> names;
  for (int i = 0; i < types->value_count(); ++i) {
    if (types->value(i)->number() == v1::EVENT_TYPE_UNSPECIFIED) continue;
    names.push_back(
        absl::AsciiStrToLower(absl::StripPrefix(types->value(i)->name(), "EVENT_TYPE_")));
  }
  return absl::StrJoin(names, ", ");
}

HttpReply Refusal(const absl::Status& status, int http_status = 0) {
  HttpReply reply;
  reply.status = http_status != 0 ? http_status : HttpStatusFromCode(status.code());
  reply.code = status.code();
  reply.headers.emplace_back("Content-Type", "application/json");
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  reply.body = HttpErrorBody(status);
  return reply;
}

}  // namespace

struct EventFeed::State {
  core::ApiExecutor* api = nullptr;
  std::string api_key;
  size_t capacity = 0;        // events the log keeps at most
  size_t capacity_bytes = 0;  // and the memory they may hold
  absl::Duration heartbeat;

  mutable core::Mutex mu;
  std::deque<Entry> log ABSL_GUARDED_BY(mu);
  size_t log_bytes ABSL_GUARDED_BY(mu) = 0;  // the `bytes` of the entries in `log`
  uint64_t next_seq ABSL_GUARDED_BY(mu) = 1;
  // Feeds the log; attached when the first stream opens.
  std::shared_ptr<core::EventWatcher> recorder ABSL_GUARDED_BY(mu);
  std::vector<std::shared_ptr<Stream>> streams ABSL_GUARDED_BY(mu);
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  // Heartbeats go to every stream at once, every `heartbeat` from the feed's start.
  absl::Time last_heartbeat ABSL_GUARDED_BY(mu) = absl::Now();

  // The recorder's on_ready (any thread, no lock held): numbers the queued events into the log
  // and wakes every stream.
  void Record() {
    std::vector<std::shared_ptr<Stream>> wake;
    {
      core::MutexLock lock(&mu);
      if (recorder == nullptr) return;
      while (std::optional<v1::Event> event = recorder->Pop()) {
        Entry entry;
        entry.seq = next_seq++;
        std::string json;
        // A well-formed generated message always serialises.
        core::ToJson(*event, &json, /*print_defaults=*/true).IgnoreError();
        entry.frame = absl::StrCat("id: ", entry.seq, "\nevent: ", TypeName(event->type()),
                                   "\ndata: ", json, "\n\n");
        entry.event = *std::move(event);
        entry.bytes = sizeof(Entry) + entry.frame.size() + entry.event.ByteSizeLong();
        log_bytes += entry.bytes;
        log.push_back(std::move(entry));
        // The newest event stays, whatever its size: a live stream still gets it.
        while (log.size() > 1 && (log.size() > capacity || log_bytes > capacity_bytes)) {
          log_bytes -= log.front().bytes;
          log.pop_front();
        }
      }
      wake = streams;
    }
    for (const auto& stream : wake) Schedule(stream);
  }

  void Schedule(const std::shared_ptr<Stream>& stream) {
    if (stream->scheduled.exchange(true)) return;
    std::weak_ptr<State> weak = self;
    stream->sink->Post([weak, stream] {
      if (std::shared_ptr<State> state = weak.lock()) state->Pump(stream);
    });
  }

  // On the stream's thread: writes the stream's events since its cursor.
  void Pump(const std::shared_ptr<Stream>& stream) {
    stream->scheduled.store(false);
    std::string out;
    {
      core::MutexLock lock(&mu);
      if (stream->closed) return;
      if (!log.empty()) {
        const uint64_t first = log.front().seq;
        // Only a stream whose thread fell a whole log behind gets here: it lost events.
        if (stream->cursor + 1 < first) {
          out.append(ResetFrame(stream->cursor, first, first - 1));
          stream->cursor = first - 1;
        }
        for (size_t i = stream->cursor + 1 - first; i < log.size(); ++i) {
          if (Matches(stream->filter, log[i].event)) out.append(log[i].frame);
        }
      }
      stream->cursor = next_seq - 1;
    }
    if (!out.empty() && !stream->sink->Write(out)) Detach(stream);
  }

  void Detach(const std::shared_ptr<Stream>& stream) {
    core::MutexLock lock(&mu);
    stream->closed = true;
    streams.erase(std::remove(streams.begin(), streams.end(), stream), streams.end());
  }

  // `event: reset`: the events after `asked` are no longer (or were never) in the log; the
  // stream goes on from `resume`.
  static std::string ResetFrame(uint64_t asked, uint64_t oldest, uint64_t resume) {
    return absl::StrCat("id: ", resume, "\nevent: reset\ndata: {\"lastEventId\":\"", asked,
                        "\",\"oldestEventId\":\"", oldest, "\"}\n\n");
  }

  std::weak_ptr<State> self;
};

EventFeed::EventFeed(core::ApiExecutor* api, std::string api_key)
    : state_(std::make_shared<State>()) {
  state_->api = api;
  state_->api_key = std::move(api_key);
  state_->capacity = std::max<size_t>(1, api->limits().sse_replay_events);
  state_->capacity_bytes = api->limits().sse_replay_bytes;
  state_->heartbeat = absl::Milliseconds(api->limits().sse_heartbeat_ms);
  state_->self = state_;
}

EventFeed::~EventFeed() {
  std::shared_ptr<core::EventWatcher> recorder;
  {
    core::MutexLock lock(&state_->mu);
    recorder = std::move(state_->recorder);
    state_->streams.clear();
    state_->shut_down = true;
  }
  if (recorder != nullptr) state_->api->Unwatch(recorder.get());
}

void EventFeed::Open(const EventFeedRequest& request, std::shared_ptr<EventStreamSink> sink) {
  if (request.method != "GET") {
    HttpReply reply =
        Refusal(absl::UnimplementedError(absl::StrCat("http method: ", request.method,
                                                      " is not allowed; call GET ", kPath)),
                405);
    reply.headers.emplace_back("Allow", "GET");
    return sink->Refuse(std::move(reply));
  }
  if (absl::Status st = CheckApiKey(request.authorization, state_->api_key); !st.ok()) {
    return sink->Refuse(Refusal(st));
  }
  if (state_->api->draining()) return sink->Refuse(Refusal(state_->api->RefuseDraining()));
  v1::WatchEventsRequest watch;
  std::string last_event_id(request.last_event_id);
  if (!request.query.empty()) {
    for (absl::string_view pair : absl::StrSplit(request.query, '&', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(pair, absl::MaxSplits('=', 1));
      const std::string name = http::PercentDecode(kv.first);
      const std::string value = http::PercentDecode(kv.second);
      if (name == "type" || name == "types") {
        for (absl::string_view one : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          std::optional<v1::EventType> type = ParseType(one);
          if (!type.has_value() || *type == v1::EVENT_TYPE_UNSPECIFIED) {
            return sink->Refuse(Refusal(absl::InvalidArgumentError(absl::StrCat(
                "type: unknown event type '", json::ValidUtf8(one), "'; one of ", TypeNames()))));
          }
          watch.add_types(*type);
        }
      } else if (name == "channel") {
        watch.set_channel(value);
      } else if (name == "user") {
        watch.set_user(value);
      } else if (name == "lastEventId" || name == "last_event_id") {
        if (last_event_id.empty()) last_event_id = value;
      } else {
        return sink->Refuse(Refusal(absl::InvalidArgumentError(
            absl::StrCat("query: unknown parameter '", json::ValidUtf8(name),
                         "'; the filters are type, channel and user (and lastEventId)"))));
      }
    }
  }
  absl::StatusOr<core::EventWatcher::Filter> filter = state_->api->WatchFilter(watch);
  if (!filter.ok()) return sink->Refuse(Refusal(filter.status()));

  auto stream = std::make_shared<Stream>();
  stream->filter = *std::move(filter);
  stream->sink = sink;
  std::string first = "retry: 1000\n\n";
  {
    core::MutexLock lock(&state_->mu);
    if (state_->shut_down) {
      return sink->Refuse(Refusal(absl::UnavailableError("draining: the node is shutting down")));
    }
    if (state_->recorder == nullptr) {
      v1::WatchEventsRequest all;
      all.set_buffer(1000000);  // drained as it fills: Record() runs on every event
      std::weak_ptr<State> weak = state_;
      absl::StatusOr<std::shared_ptr<core::EventWatcher>> recorder =
          state_->api->Watch(all, [weak] {
            if (std::shared_ptr<State> state = weak.lock()) state->Record();
          });
      if (!recorder.ok()) return sink->Refuse(Refusal(recorder.status()));
      state_->recorder = *std::move(recorder);
    }
    const uint64_t last = state_->next_seq - 1;
    stream->cursor = last;
    if (!last_event_id.empty()) {
      uint64_t asked = 0;
      const uint64_t oldest = state_->log.empty() ? state_->next_seq : state_->log.front().seq;
      if (absl::SimpleAtoi(last_event_id, &asked) && asked <= last && asked + 1 >= oldest) {
        stream->cursor = asked;
      } else {
        first = absl::StrCat(first, "id: ", last, "\nevent: reset\ndata: {\"lastEventId\":\"",
                             json::ValidUtf8(last_event_id).substr(0, 64),
                             "\",\"oldestEventId\":\"", oldest, "\"}\n\n");
      }
    }
    // The first pump is the one posted below, after the stream's first bytes: until it runs,
    // events only move the log on (a Pump posted earlier would write them before a reset).
    stream->scheduled.store(true);
    state_->streams.push_back(stream);
  }
  std::weak_ptr<State> weak = state_;
  sink->Start({{"Content-Type", "text/event-stream"},
               {"Cache-Control", "no-cache"},
               {"X-Accel-Buffering", "no"}},
              [weak, stream] {
                if (std::shared_ptr<State> state = weak.lock()) state->Detach(stream);
              });
  sink->Post([weak, stream, first = std::move(first)] {
    std::shared_ptr<State> state = weak.lock();
    if (state == nullptr) return;
    if (!stream->sink->Write(first)) return state->Detach(stream);
    state->Pump(stream);
  });
}

void EventFeed::Tick(absl::Time now) {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    core::MutexLock lock(&state_->mu);
    if (now - state_->last_heartbeat < state_->heartbeat) return;
    state_->last_heartbeat = now;
    streams = state_->streams;
  }
  std::weak_ptr<State> weak = state_;
  for (const auto& stream : streams) {
    stream->sink->Post([weak, stream] {
      std::shared_ptr<State> state = weak.lock();
      if (state != nullptr && !stream->sink->Write(kHeartbeat)) state->Detach(stream);
    });
  }
}

void EventFeed::Shutdown() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    core::MutexLock lock(&state_->mu);
    state_->shut_down = true;
    streams = std::move(state_->streams);
    state_->streams.clear();
    for (const auto& stream : streams) stream->closed = true;
  }
  for (const auto& stream : streams) {
    stream->sink->Post([stream] { stream->sink->Close(); });
  }
}

size_t EventFeed::stream_count() const {
  core::MutexLock lock(&state_->mu);
  return state_->streams.size();
}

}  // namespace herald::rpc
