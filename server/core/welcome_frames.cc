#include "server/core/welcome_frames.h"

#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"

namespace herald::core {
namespace {

// EncodeWelcome writes the connection id first; an id RapidJSON's writer prints as it is (no
// byte it escapes) makes this prefix and a quote.
constexpr absl::string_view kBeforeId = R"({"welcome":{"connectionId":")";

bool NeedsEscaping(absl::string_view s) {
  return absl::c_any_of(
      s, [](char c) { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; });
}

}  // namespace

WelcomeFrames::WelcomeFrames(v1::Welcome node_part) : node_part_(std::move(node_part)) {
  for (const bool connect_required : {false, true}) {
    v1::Welcome w = node_part_;
    w.set_connection_id("x");
    w.set_connect_required(connect_required);
    const std::string text = EncodeWelcome(w);
    const std::string before = absl::StrCat(kBeforeId, "x\"");
    // Were EncodeWelcome to write another field first, every frame would be encoded whole.
    spliced_ = spliced_ && absl::StartsWith(text, before);
    after_id_[connect_required] = text.substr(std::min(before.size(), text.size()));
  }
}

std::string WelcomeFrames::Encode(absl::string_view connection_id, bool connect_required) const {
  if (!spliced_ || connection_id.empty() || NeedsEscaping(connection_id)) {
    v1::Welcome w = node_part_;
    w.set_connection_id(std::string(connection_id));
    w.set_connect_required(connect_required);
    return EncodeWelcome(w);
  }
  return absl::StrCat(kBeforeId, connection_id, "\"", after_id_[connect_required]);
}

}  // namespace herald::core
