// ReleasableMessage: websocketpp's HTTP message behind a pointer, freed after the handshake.
#include "server/ws/releasable_message.h"

#include <string>

#include "gtest/gtest.h"
#include "server/ws/ws_config.h"

namespace herald::ws {
namespace {

constexpr char kUpgrade[] =
    "GET /ws?token=abc HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nOrigin: https://app.example\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// The config knobs ws_config.h sets are the ones websocketpp reads.
static_assert(WssConfig::connection_read_buffer_size == 256);
static_assert(!WssConfig::transport_config::enable_multithreading);
static_assert(WssConfig::transport_config::timeout_socket_post_init > 0);  // the TLS handshake
static_assert(std::is_same_v<WssServer::connection_type::request_type, ReleasableRequest>);

TEST(ReleasableMessageTest, ParsesLikeWebsocketppsRequestUntilReleased) {
  ReleasableRequest request;
  const std::string bytes = kUpgrade;
  // In two pieces, as a small read buffer hands it over.
  const size_t half = bytes.size() / 2;
  EXPECT_EQ(request.consume(bytes.data(), half), half);
  EXPECT_FALSE(request.ready());
  request.consume(bytes.data() + half, bytes.size() - half);
  ASSERT_TRUE(request.ready());
  EXPECT_EQ(request.get_method(), "GET");
  EXPECT_EQ(request.get_uri(), "/ws?token=abc");
  EXPECT_EQ(request.get_version(), "HTTP/1.1");
  EXPECT_EQ(request.get_header("origin"), "https://app.example");
  EXPECT_FALSE(request.released());

  const ReleasableRequest& as_connection_gives_it = request;
  as_connection_gives_it.Release();
  EXPECT_TRUE(request.released());
  // Read afterwards, it is a new, empty request.
  EXPECT_EQ(request.get_header("Origin"), "");
  EXPECT_EQ(request.get_uri(), "");
  EXPECT_FALSE(request.ready());
}

TEST(ReleasableMessageTest, ResponseKeepsStatusHeadersAndBodyUntilReleased) {
  ReleasableResponse response;
  response.set_status(websocketpp::http::status_code::switching_protocols);
  response.replace_header("Upgrade", "websocket");
  response.set_body("");
  EXPECT_EQ(response.get_status_code(), websocketpp::http::status_code::switching_protocols);
  EXPECT_EQ(response.get_header("upgrade"), "websocket");
  response.remove_header("Upgrade");
  EXPECT_EQ(response.get_header("Upgrade"), "");
  response.replace_header("X-A", "1");
  ReleasableResponse copy = response;
  response.Release();
  EXPECT_EQ(response.get_header("X-A"), "");
  EXPECT_EQ(copy.get_header("X-A"), "1");  // a copy is its own
}

}  // namespace
}  // namespace herald::ws
