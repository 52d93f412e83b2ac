#include "server/core/member.h"

#include <memory>
#include <utility>

#include "server/auth/jwt.h"

namespace herald::core {

v1::ClientInfo DescribeMember(const Session& session, const std::string& node,
                              int64_t joined_at_ms) {
  v1::ClientInfo client;
  client.set_connection_id(session.id());
  client.set_user(session.user());
  client.set_node(node);
  client.set_joined_at_ms(joined_at_ms);
  std::shared_ptr<const auth::Claims> grant = session.grant();
  if (grant != nullptr && grant->info != nullptr) *client.mutable_info() = *grant->info;
  return client;
}

v1::Member ToMember(v1::ClientInfo client) {
  v1::Member member;
  member.set_connection_id(std::move(*client.mutable_connection_id()));
  member.set_user(std::move(*client.mutable_user()));
  member.set_node(std::move(*client.mutable_node()));
  member.set_joined_at_ms(client.joined_at_ms());
  if (client.has_info()) *member.mutable_info() = std::move(*client.mutable_info());
  return member;
}

}  // namespace herald::core
