#ifndef HERALD_SERVER_WS_LIVENESS_H_
#define HERALD_SERVER_WS_LIVENESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"

namespace herald::ws {

class WsSession;

// Finds the silent connections of one I/O thread, and those whose auth deadline has come. Keeps,
// in one contiguous array, when each connection last received anything from its peer (a frame of
// any kind: data, ping, pong) and when its auth deadline falls (Session::ScheduleAuthDeadline: the
// connect deadline, then the token's expiry), and one timer per thread sweeps that array every
// sweep_period(): a connection silent for `ping_interval` gets one WebSocket ping (which browsers
// answer on their own), one silent for longer than `idle_timeout` is closed with 4010
// (`idle_timeout` zero: never), and one whose deadline has passed goes to
// ClientProtocol::CheckAuthDeadline. So an idle connection costs one array entry and no timer of
// its own, a received frame one clock read, and a sweep one linear pass. The timer runs only while
// there are connections to watch. Owns the array and the timer; holds sessions weakly. Not
// thread-safe: every call, and the timer, on the one thread that runs `io` (the connections' I/O
// thread); nothing blocks.
class Liveness {
 public:
  // `auth_timeout`: the shortest auth deadline the sweep keeps up with (--auth-timeout-ms; zero:
  // no deadlines are set).
  Liveness(asio::io_context* io, absl::Duration ping_interval, absl::Duration idle_timeout,
           absl::Duration auth_timeout);
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;

  // Starts watching `session` (just opened: as if just heard from).
  void Add(const std::shared_ptr<WsSession>& session);
  // Stops watching `session` (its connection closed). Idempotent.
  void Remove(WsSession& session);
  // Something arrived from `session`'s peer.
  void Heard(WsSession& session);
  // `session`'s auth deadline is `due_ms` (NowMs()'s clock), replacing the one before; nothing
  // when the session is not watched (closed).
  void SetDeadline(WsSession& session, int64_t due_ms);
  static int64_t NowMs();  // steady clock

  // A quarter of the shortest of the three intervals, within [10 ms, 1 s] (250 ms when there are
  // auth deadlines: a token's expiry is enforced within a quarter second): a ping goes out at
  // most this long after ping_interval of silence, a close at most this long after idle_timeout,
  // the auth check at most this long after the deadline.
  absl::Duration sweep_period() const { return absl::Milliseconds(sweep_ms_); }
  size_t watched() const { return entries_.size(); }

 private:
  enum class State : uint8_t { kHeard, kPinged, kClosing };
  static constexpr int64_t kNoDeadline = INT64_MAX;
  static constexpr int64_t kMaxAuthSweepMs = 250;
  struct Entry {
    int64_t heard_ms;  // steady clock
    int64_t due_ms;    // the auth deadline (kNoDeadline: none)
    State state;
    std::weak_ptr<WsSession> session;
  };
  // sweep_period() in ms, from the three intervals in ms (0: idle or auth not in use).
  static int64_t SweepMs(int64_t ping_ms, int64_t idle_ms, int64_t auth_ms);
  void Arm();
  void Sweep();
  void RemoveAt(size_t slot);

  asio::steady_timer timer_;
  const int64_t ping_ms_;
  const int64_t idle_ms_;  // 0: never close
  const int64_t sweep_ms_;
  const std::string close_reason_;
  bool armed_ = false;
  std::vector<Entry> entries_;
  // Scratch for one sweep: sessions are pinged and closed after the pass over the array.
  std::vector<std::shared_ptr<WsSession>> to_ping_;
  std::vector<std::shared_ptr<WsSession>> to_close_;
  std::vector<std::shared_ptr<WsSession>> to_check_;
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_LIVENESS_H_
