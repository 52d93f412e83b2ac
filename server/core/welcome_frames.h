#ifndef HERALD_SERVER_CORE_WELCOME_FRAMES_H_
#define HERALD_SERVER_CORE_WELCOME_FRAMES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "herald/v1/client.pb.h"

namespace herald::core {

// The `welcome` frames of one node's connections: EncodeWelcome's text, of which all but the
// connection id is the node's (its name and limits), encoded once here, so that a handshake only
// splices its id in. Immutable once made: used from any thread.
class WelcomeFrames {
 public:
  // `node_part`: what every welcome of this node says (its connection_id and connect_required
  // are ignored).
  explicit WelcomeFrames(v1::Welcome node_part);

  // The same text as EncodeWelcome of node_part with this id and connect_required.
  std::string Encode(absl::string_view connection_id, bool connect_required) const;

 private:
  const v1::Welcome node_part_;
  // The text after the connection id's closing quote, by connect_required, when EncodeWelcome
  // writes the id first (spliced_).
  bool spliced_ = true;
  std::string after_id_[2];
};

}  // namespace herald::core

#endif  // HERALD_SERVER_CORE_WELCOME_FRAMES_H_
