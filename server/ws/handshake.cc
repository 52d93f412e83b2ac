#include "server/ws/handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace herald::ws {
namespace {

// RFC 6455 §1.3.
constexpr absl::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// Whether a comma-separated header value lists `token` (case-insensitive).
bool HasToken(absl::string_view value, absl::string_view token) {
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(part), token)) return true;
  }
  return false;
}

}  // namespace

bool WantsWebSocket(const http::Request& request) {
  std::string joined;
  return HasToken(request.HeaderView("Upgrade", &joined), "websocket");
}

std::optional<HandshakeRefusal> CheckHandshake(const http::Request& request) {
  if (request.method != "GET") {
    return HandshakeRefusal{405, "Allow", "GET", "a WebSocket handshake is a GET\n"};
  }
  if (request.version_minor < 1) {
    return HandshakeRefusal{400, "", "", "a WebSocket handshake needs HTTP/1.1\n"};
  }
  std::string joined;
  if (!WantsWebSocket(request) || !HasToken(request.HeaderView("Connection", &joined), "upgrade")) {
    return HandshakeRefusal{
        400, "", "", "not a WebSocket handshake (Upgrade: websocket, Connection: Upgrade)\n"};
  }
  if (absl::StripAsciiWhitespace(request.HeaderView("Sec-WebSocket-Version", &joined)) != "13") {
    return HandshakeRefusal{426, "Sec-WebSocket-Version", "13",
                            "unsupported Sec-WebSocket-Version: this server speaks 13\n"};
  }
  std::string key_bytes;
  const absl::string_view key = request.HeaderView("Sec-WebSocket-Key", &joined);
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(key), &key_bytes) ||
      key_bytes.size() != 16) {
    return HandshakeRefusal{400, "", "", "Sec-WebSocket-Key is not 16 bytes in base64\n"};
  }
  return std::nullopt;
}

std::string SwitchingProtocols(absl::string_view key) {
  key = absl::StripAsciiWhitespace(key);
  // SHA-1 fetched once (OpenSSL 3's one-shot SHA1() looks the algorithm up on every call), and one
  // digest context per thread, restarted per handshake: EVP_Digest makes and frees a context (two
  // allocations, and the shared algorithm's reference count taken and dropped) every time.
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned char digest[SHA_DIGEST_LENGTH];
  unsigned int length = 0;
  if (sha1 == nullptr || context.ctx == nullptr ||
      EVP_DigestInit_ex2(context.ctx, sha1, nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, key.data(), key.size()) != 1 ||
      EVP_DigestUpdate(context.ctx, kAcceptGuid.data(), kAcceptGuid.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, digest, &length) != 1) {
    const std::string input = absl::StrCat(key, kAcceptGuid);
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  }
  constexpr absl::string_view kHead =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  unsigned char accept[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];  // base64 and its NUL
  const int accept_length = EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
  std::string response;
  response.reserve(kHead.size() + sizeof accept + 4);
  response.append(kHead.data(), kHead.size());
  response.append(reinterpret_cast<const char*>(accept), static_cast<size_t>(accept_length));
  response.append("\r\n\r\n");
  return response;
}

}  // namespace herald::ws
