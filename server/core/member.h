#ifndef HERALD_SERVER_CORE_MEMBER_H_
#define HERALD_SERVER_CORE_MEMBER_H_

#include <cstdint>
#include <string>

#include "herald/v1/broker.pb.h"
#include "herald/v1/client.pb.h"
#include "server/core/session.h"

namespace herald::core {

// How a subscriber is described to others, in one place: its presence entry (v1::ClientInfo,
// what Presence and the registry keep) and the client protocol's v1::Member (the `presence`
// reply and the `memberJoined` / `memberLeft` notices) carry the same fields — connection,
// user, node, when it joined and its token's `info` claim. Free functions: no state.

// The entry of `session` on `node`, joined at `joined_at_ms` (0 when not known, as for a leave).
v1::ClientInfo DescribeMember(const Session& session, const std::string& node,
                              int64_t joined_at_ms);

// The same description as the client protocol's message (moves `info`).
v1::Member ToMember(v1::ClientInfo client);

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_MEMBER_H_
