#include "server/ws/liveness.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"
#include "server/ws/ws_session.h"

namespace herald::ws {

Liveness::Liveness(asio::io_context* io, absl::Duration ping_interval, absl::Duration idle_timeout,
                   absl::Duration auth_timeout)
    : timer_(*io),
      ping_ms_(absl::ToInt64Milliseconds(ping_interval)),
      idle_ms_(absl::ToInt64Milliseconds(idle_timeout)),
      sweep_ms_(SweepMs(ping_ms_, idle_ms_, absl::ToInt64Milliseconds(auth_timeout))),
      close_reason_(absl::StrCat("idle timeout: nothing received for ", idle_ms_, " ms")) {}

int64_t Liveness::SweepMs(int64_t ping_ms, int64_t idle_ms, int64_t auth_ms) {
  int64_t shortest = ping_ms;
  if (idle_ms > 0) shortest = std::min(shortest, idle_ms);
  if (auth_ms > 0) shortest = std::min(shortest, auth_ms);
  return std::clamp<int64_t>(shortest / 4, 10, auth_ms > 0 ? kMaxAuthSweepMs : 1000);
}

int64_t Liveness::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Liveness::Add(const std::shared_ptr<WsSession>& session) {
  if (session->liveness_slot_ != WsSession::kNotWatched) return;
  session->liveness_slot_ = static_cast<uint32_t>(entries_.size());
  entries_.push_back(Entry{NowMs(), kNoDeadline, State::kHeard, session});
  Arm();
}

void Liveness::Remove(WsSession& session) {
  const uint32_t slot = session.liveness_slot_;
  if (slot == WsSession::kNotWatched) return;
  session.liveness_slot_ = WsSession::kNotWatched;
  RemoveAt(slot);
}

void Liveness::RemoveAt(size_t slot) {
  if (slot + 1 != entries_.size()) {
    entries_[slot] = std::move(entries_.back());
    // The moved entry's session learns its new slot (gone already: nobody needs to).
    if (std::shared_ptr<WsSession> moved = entries_[slot].session.lock()) {
      moved->liveness_slot_ = static_cast<uint32_t>(slot);
    }
  }
  entries_.pop_back();
  if (entries_.empty()) std::vector<Entry>().swap(entries_);
}

void Liveness::Heard(WsSession& session) {
  const uint32_t slot = session.liveness_slot_;
  if (slot == WsSession::kNotWatched) return;
  Entry& e = entries_[slot];
  e.heard_ms = NowMs();
  if (e.state == State::kPinged) e.state = State::kHeard;
}

void Liveness::SetDeadline(WsSession& session, int64_t due_ms) {
  const uint32_t slot = session.liveness_slot_;
  if (slot != WsSession::kNotWatched) entries_[slot].due_ms = due_ms;
}

void Liveness::Arm() {
  if (armed_) return;
  armed_ = true;
  timer_.expires_after(std::chrono::milliseconds(sweep_ms_));
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;  // cancelled: the endpoint is going away
    armed_ = false;
    Sweep();
    if (!entries_.empty()) Arm();
  });
}

void Liveness::Sweep() {
  const int64_t now = NowMs();
  for (size_t i = 0; i < entries_.size();) {
    Entry& e = entries_[i];
    const int64_t silent = now - e.heard_ms;
    const bool close = e.state != State::kClosing && idle_ms_ > 0 && silent > idle_ms_;
    const bool ping = !close && e.state == State::kHeard && silent >= ping_ms_;
    const bool due = e.due_ms <= now;
    if (!close && !ping && !due) {
      ++i;
      continue;
    }
    std::shared_ptr<WsSession> s = e.session.lock();
    if (s == nullptr) {  // freed without a close handler (cannot happen today): forget it
      RemoveAt(i);
      continue;
    }
    if (due) {
      e.due_ms = kNoDeadline;  // CheckAuthDeadline sets the next one
      to_check_.push_back(s);
    }
    if (close || ping) {
      e.state = close ? State::kClosing : State::kPinged;
      (close ? to_close_ : to_ping_).push_back(std::move(s));
    }
    ++i;
  }
  // After the pass: nothing below may change the array under it.
  for (const std::shared_ptr<WsSession>& s : to_check_) s->AuthDeadlinePassed();
  for (const std::shared_ptr<WsSession>& s : to_ping_) s->Ping();
  for (const std::shared_ptr<WsSession>& s : to_close_) {
    s->Close(core::kCloseIdleTimeout, close_reason_);
  }
  to_check_.clear();
  to_ping_.clear();
  to_close_.clear();
}

}  // namespace herald::ws
