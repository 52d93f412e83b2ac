#include "server/engine/redis/redis_control_bus.h"

#include <chrono>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "server/engine/redis/redis_codec.h"
#include "server/engine/redis/redis_scripts.h"

namespace herald::engine {
namespace {

// The survey that tells every node this one has watchers now (never a Broker method name).
constexpr char kWatchMethod[] = "~watch";

std::chrono::steady_clock::duration Chrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::max(d, absl::ZeroDuration()));
}

}  // namespace

RedisControlBus::RedisControlBus(RedisOptions options, absl::Duration watch_timeout,
                                 asio::io_context* io, RedisClient* commands, RedisClient* pubsub)
    : options_(std::move(options)),
      watch_timeout_(watch_timeout),
      io_(io),
      commands_(commands),
      pubsub_(pubsub),
      instance_(absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(absl::BitGen()), absl::kZeroPad16))),
      heartbeat_timer_(*io),
      // Random, so that answers meant for an earlier process with this name are not taken for
      // answers to this one's surveys.
      next_survey_id_(absl::Uniform<uint64_t>(absl::BitGen()) >> 1) {}

RedisControlBus::~RedisControlBus() = default;

std::string RedisControlBus::NodesKey() const {
  return absl::StrCat("{", options_.prefix, "}", ":nodes");
}
std::string RedisControlBus::InstancesKey() const {
  return absl::StrCat("{", options_.prefix, "}", ":nodes:instance");
}
std::string RedisControlBus::WatchingKey() const {
  return absl::StrCat("{", options_.prefix, "}", ":nodes:watching");
}
std::string RedisControlBus::GoneKey() const {
  return absl::StrCat("{", options_.prefix, "}", ":nodes:gone");
}
std::string RedisControlBus::PresenceSetKey() const {
  return absl::StrCat("{", options_.prefix, "}", ":presence:", instance_);
}
std::string RedisControlBus::ControlChannel() const {
  return absl::StrCat("{", options_.prefix, "}", ":control");
}
std::string RedisControlBus::NodeChannel(const std::string& node) const {
  return absl::StrCat("{", options_.prefix, "}", ":node:", node);
}
std::string RedisControlBus::EventsChannel() const {
  return absl::StrCat("{", options_.prefix, "}", ":events");
}
std::string RedisControlBus::AcksChannel(const std::string& node) const {
  return absl::StrCat("{", options_.prefix, "}", ":acks:", node);
}
std::string RedisControlBus::ConnectChannel() const {
  return absl::StrCat("{", options_.prefix, "}", ":events:connect");
}

absl::Status RedisControlBus::joined() const {
  switch (join_state_.load()) {
    case JoinState::kJoined:
      return absl::OkStatus();
    case JoinState::kNameTaken:
      return absl::AlreadyExistsError(absl::StrCat("node name '", options_.node,
                                                   "' is used by another live node on this Redis "
                                                   "(give each node its own --node)"));
    case JoinState::kJoining:
      break;
  }
  return absl::UnavailableError("not a live node yet (no heartbeat through Redis)");
}

// --- Heartbeats --------------------------------------------------------------------------------

void RedisControlBus::Start() { Tick(); }

void RedisControlBus::Tick() {
  if (stopped_) return;
  RequestHeartbeat(nullptr);
  heartbeat_timer_.expires_after(Chrono(options_.heartbeat_interval));
  heartbeat_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) Tick();
  });
}

void RedisControlBus::OnCommandsReady() {
  // Redis may have lost what this node wrote (a restart without persistence).
  restore_pending_ = true;
  RequestHeartbeat(nullptr);
}

void RedisControlBus::RequestHeartbeat(absl::AnyInvocable<void()> then) {
  if (stopped_ || !listening_ || !commands_->ready()) {
    // Not reachable through Redis: nothing to wait for.
    if (then) then();
    return;
  }
  if (heartbeat_in_flight_) {
    heartbeat_again_ = true;
    if (then) after_next_heartbeat_.push_back(std::move(then));
    return;
  }
  if (then) after_this_heartbeat_.push_back(std::move(then));
  SendHeartbeat();
}

void RedisControlBus::SendHeartbeat() {
  heartbeat_in_flight_ = true;
  const uint64_t seq = ++heartbeats_sent_;
  commands_->Eval(HeartbeatScript(), {NodesKey(), InstancesKey(), WatchingKey(), GoneKey()},
                  {options_.node, instance_, Millis(DeadNodeBound()),
                   local_watchers_ > 0 ? "1" : "0", absl::StrCat("{", options_.prefix, "}")},
                  [this, seq](absl::StatusOr<RedisReply> r) { OnHeartbeat(seq, std::move(r)); });
}

void RedisControlBus::OnHeartbeat(uint64_t seq, absl::StatusOr<RedisReply> r) {
  heartbeat_in_flight_ = false;
  if (r.ok() && r->is_array() && r->elements.size() == 2) {
    if (r->at(0).number() < 0) {
      join_state_ = JoinState::kNameTaken;
    } else {
      join_state_ = JoinState::kJoined;
      // A heartbeat sent before another node announced its first watcher may not count it.
      others_watch_ = r->at(1).number() > 0 || seq <= watch_notice_seq_;
      if ((r->at(0).number() == 1 || restore_pending_) && on_rejoin_) {
        restore_pending_ = false;
        on_rejoin_();
      }
    }
  }
  std::vector<absl::AnyInvocable<void()>> done;
  done.swap(after_this_heartbeat_);
  if (heartbeat_again_) {
    heartbeat_again_ = false;
    // The ones waiting for the next heartbeat wait for this one (or for nothing, stopped).
    after_this_heartbeat_.swap(after_next_heartbeat_);
    if (stopped_ || !listening_ || !commands_->ready()) {
      for (auto& fn : after_this_heartbeat_) done.push_back(std::move(fn));
      after_this_heartbeat_.clear();
    } else {
      SendHeartbeat();
    }
  }
  for (auto& fn : done) fn();
}

// --- Surveys -----------------------------------------------------------------------------------

void RedisControlBus::Survey(const std::string& method, std::string request, absl::Duration timeout,
                             core::Done<Answers> done) {
  asio::post(*io_, [this, method, request = std::move(request), timeout,
                    done = std::move(done)]() mutable {
    StartSurvey(method, std::move(request), timeout, std::move(done));
  });
}

void RedisControlBus::StartSurvey(const std::string& method, std::string request,
                                  absl::Duration timeout, core::Done<Answers> done) {
  if (stopped_) return done(absl::UnavailableError("redis engine is shutting down"));
  if (join_state_ == JoinState::kNameTaken) return done(joined());
  if (!commands_->ready() || !listening_) {
    return done(absl::UnavailableError("redis connection is not ready"));
  }
  const uint64_t id = next_survey_id_++;
  PendingSurvey& survey = surveys_[id];
  survey.done = std::move(done);
  survey.timer = std::make_unique<asio::steady_timer>(*io_, Chrono(timeout));
  survey.timer->async_wait([this, id](const asio::error_code& ec) {
    if (!ec) CompleteSurvey(id);
  });
  commands_->Eval(SurveyScript(), {NodesKey()},
                  {ControlChannel(), EncodeSurvey({id, options_.node, method, std::move(request)})},
                  [this, id](absl::StatusOr<RedisReply> r) {
                    auto it = surveys_.find(id);
                    if (it == surveys_.end()) return;
                    if (!r.ok() || !r->is_array()) {
                      core::Done<Answers> failed = std::move(it->second.done);
                      surveys_.erase(it);
                      return failed(r.ok() ? Malformed("survey") : r.status());
                    }
                    std::vector<std::string> live;
                    for (const RedisReply& node : r->elements) live.push_back(node.str);
                    it->second.expected = std::move(live);
                    CheckSurvey(id);
                  });
}

void RedisControlBus::CheckSurvey(uint64_t id) {
  auto it = surveys_.find(id);
  if (it == surveys_.end() || !it->second.expected.has_value()) return;
  for (const std::string& node : *it->second.expected) {
    if (!it->second.answers.contains(node)) return;
  }
  CompleteSurvey(id);
}

void RedisControlBus::CompleteSurvey(uint64_t id) {
  auto it = surveys_.find(id);
  if (it == surveys_.end()) return;
  PendingSurvey survey = std::move(it->second);
  surveys_.erase(it);
  if (!survey.expected.has_value()) {
    return survey.done(absl::UnavailableError("redis did not publish the survey in time"));
  }
  Answers answers;
  for (const std::string& node : *survey.expected) {
    if (!survey.answers.contains(node)) ++answers.missing;
  }
  // Nodes that joined after the survey was published but answered in time count too.
  for (auto& [node, reply] : survey.answers) answers.replies.push_back(std::move(reply));
  survey.done(std::move(answers));
}

void RedisControlBus::FailSurveys(const absl::Status& status) {
  absl::flat_hash_map<uint64_t, PendingSurvey> failed;
  failed.swap(surveys_);
  for (auto& [id, survey] : failed) survey.done(status);
}

void RedisControlBus::OnSurveyMessage(absl::string_view payload) {
  std::optional<SurveyMessage> survey = DecodeSurvey(payload);
  if (!survey.has_value() || stopped_ || join_state_ == JoinState::kNameTaken) return;
  if (survey->method == kWatchMethod) {
    if (survey->asker != options_.node) {
      others_watch_ = true;
      watch_notice_seq_ = heartbeats_sent_;
    }
    return Answer(survey->id, survey->asker, std::string());
  }
  core::ControlHandler* handler = handler_.load();
  if (handler == nullptr) {
    return Answer(survey->id, survey->asker, absl::UnavailableError("control: no handler"));
  }
  handler->HandleSurvey(
      survey->method, survey->request,
      [this, id = survey->id, asker = survey->asker](absl::StatusOr<std::string> reply) mutable {
        // At once when the handler answers on the engine thread.
        asio::dispatch(*io_, [this, id, asker = std::move(asker), reply = std::move(reply)] {
          Answer(id, asker, reply);
        });
      });
}

void RedisControlBus::Answer(uint64_t id, const std::string& asker,
                             const absl::StatusOr<std::string>& reply) {
  // Not reachable: the asker counts this node as missing.
  if (stopped_ || !commands_->ready()) return;
  commands_->Command({"PUBLISH", NodeChannel(asker), EncodeAnswer(id, options_.node, reply)},
                     [](absl::StatusOr<RedisReply>) {});
}

void RedisControlBus::OnAnswerMessage(absl::string_view payload) {
  std::optional<AnswerMessage> answer = DecodeAnswer(payload);
  if (!answer.has_value()) return;
  auto it = surveys_.find(answer->id);
  if (it == surveys_.end()) return;  // late, or meant for an earlier process with this name
  it->second.answers.try_emplace(answer->node, std::move(answer->reply));
  CheckSurvey(answer->id);
}

// --- Pub/sub -----------------------------------------------------------------------------------

void RedisControlBus::OnPubSubReady() {
  const uint64_t generation = ++pubsub_generation_;
  listening_ = false;
  auto left = std::make_shared<int>(4);
  for (const std::string& channel : {ControlChannel(), NodeChannel(options_.node),
                                     AcksChannel(options_.node), ConnectChannel()}) {
    pubsub_->Command({"SUBSCRIBE", channel},
                     [this, generation, left](absl::StatusOr<RedisReply> r) {
                       if (generation != pubsub_generation_ || !r.ok()) return;
                       if (--*left > 0) return;
                       // Reachable now: join (or stay) among the live nodes.
                       listening_ = true;
                       RequestHeartbeat(nullptr);
                     });
  }
  if (local_watchers_ > 0) SubscribeEvents(nullptr);
}

void RedisControlBus::OnPubSubDown() {
  ++pubsub_generation_;
  listening_ = false;
  // Their answers can no longer arrive.
  FailSurveys(absl::UnavailableError("redis pub/sub connection lost"));
}

bool RedisControlBus::OnMessage(const RedisReply& message) {
  const std::string& channel = message.at(1).str;
  const std::string& payload = message.at(2).str;
  if (channel == ControlChannel()) {
    OnSurveyMessage(payload);
  } else if (channel == NodeChannel(options_.node)) {
    OnAnswerMessage(payload);
  } else if (channel == AcksChannel(options_.node)) {
    core::ControlHandler* handler = handler_.load();
    if (handler != nullptr) handler->HandleAck(payload);
  } else if (channel == EventsChannel() || channel == ConnectChannel()) {
    std::optional<EventMessage> event = DecodeEvent(payload);
    // This node's own events reached its watchers when they happened.
    core::ControlHandler* handler = handler_.load();
    if (!event.has_value() || event->origin == options_.node || handler == nullptr) return true;
    // "events" is for watchers; "events:connect" also ends held-back DISCONNECTs on every node.
    if (channel == EventsChannel() && local_watchers_ == 0) return true;
    handler->HandleEvent(event->event);
  } else {
    return false;
  }
  return true;
}

// --- Events ------------------------------------------------------------------------------------

void RedisControlBus::ShareEvent(std::string event, EventAudience audience) {
  asio::post(*io_, [this, event = std::move(event), audience] {
    if (stopped_ || !commands_->ready()) return;
    commands_->Command(
        {"PUBLISH", audience == EventAudience::kEveryNode ? ConnectChannel() : EventsChannel(),
         EncodeEvent(options_.node, event)},
        [](absl::StatusOr<RedisReply>) {});
  });
}

void RedisControlBus::ForwardAck(const std::string& node, std::string ack) {
  asio::post(*io_, [this, node, ack = std::move(ack)] {
    // Unreachable: the asker's wait ends at its deadline.
    if (stopped_ || !commands_->ready()) return;
    commands_->Command({"PUBLISH", AcksChannel(node), ack}, [](absl::StatusOr<RedisReply>) {});
  });
}

void RedisControlBus::AttachWatcher(absl::AnyInvocable<void()> attached) {
  asio::post(*io_, [this, attached = std::move(attached)]() mutable {
    ++local_watchers_;
    if (attach_state_ == AttachState::kAttached || stopped_) return attached();
    attach_waiters_.push_back(std::move(attached));
    if (attach_state_ == AttachState::kDetached) StartAttach();
  });
}

void RedisControlBus::DetachWatcher() {
  asio::post(*io_, [this] {
    if (local_watchers_ > 0) --local_watchers_;
    if (local_watchers_ > 0 || attach_state_ != AttachState::kAttached) return;
    attach_state_ = AttachState::kDetached;
    // Other nodes stop sharing at their next heartbeat, which no longer counts this node.
    if (pubsub_->ready()) {
      pubsub_->Command({"UNSUBSCRIBE", EventsChannel()}, [](absl::StatusOr<RedisReply>) {});
    }
  });
}

void RedisControlBus::StartAttach() {
  attach_state_ = AttachState::kAttaching;
  // Listen first, then be counted by a heartbeat, then tell every node and wait for each to
  // answer: a node that answered shares every event it has after that.
  SubscribeEvents([this] {
    RequestHeartbeat([this] {
      StartSurvey(kWatchMethod, std::string(), watch_timeout_,
                  [this](absl::StatusOr<Answers>) { FinishAttach(); });
    });
  });
}

void RedisControlBus::FinishAttach() {
  if (local_watchers_ > 0) {
    attach_state_ = AttachState::kAttached;
  } else {
    attach_state_ = AttachState::kDetached;
    if (pubsub_->ready()) {
      pubsub_->Command({"UNSUBSCRIBE", EventsChannel()}, [](absl::StatusOr<RedisReply>) {});
    }
  }
  std::vector<absl::AnyInvocable<void()>> waiters;
  waiters.swap(attach_waiters_);
  for (auto& fn : waiters) fn();
}

void RedisControlBus::SubscribeEvents(absl::AnyInvocable<void()> then) {
  if (!pubsub_->ready()) {
    if (then) then();
    return;
  }
  pubsub_->Command({"SUBSCRIBE", EventsChannel()},
                   [then = std::move(then)](absl::StatusOr<RedisReply>) mutable {
                     if (then) then();
                   });
}

// --- Shutdown ----------------------------------------------------------------------------------

void RedisControlBus::Stop(bool leave, absl::AnyInvocable<void()> then) {
  stopped_ = true;
  heartbeat_timer_.cancel();
  FailSurveys(absl::UnavailableError("redis engine is shutting down"));
  std::vector<absl::AnyInvocable<void()>> waiters;
  waiters.swap(attach_waiters_);
  for (auto& fn : waiters) fn();
  if (!leave || !commands_->ready() || join_state_ != JoinState::kJoined) return then();
  commands_->Eval(LeaveScript(), {NodesKey(), InstancesKey(), WatchingKey(), GoneKey()},
                  {options_.node, instance_},
                  [then = std::move(then)](absl::StatusOr<RedisReply>) mutable { then(); });
}

}  // namespace herald::engine
