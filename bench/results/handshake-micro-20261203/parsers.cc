#include <http_parser.h>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <cstdio>
#include <string>
namespace http = boost::beast::http;
static size_t cnt;
struct P : http::basic_parser<true> {
  void on_request_impl(http::verb, boost::beast::string_view m, boost::beast::string_view t, int,
                       boost::beast::error_code&) override {
    cnt += t.size() + m.size();
  }
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(http::field, boost::beast::string_view n, boost::beast::string_view v,
                     boost::beast::error_code&) override {
    cnt += n.size() + v.size();
  }
  void on_header_impl(boost::beast::error_code&) override {}
  void on_body_init_impl(boost::optional<std::uint64_t> const&,
                         boost::beast::error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view b, boost::beast::error_code&) override {
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view,
                            boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view b,
                                 boost::beast::error_code&) override {
    return b.size();
  }
  void on_finish_impl(boost::beast::error_code&) override {}
};
static int on_url(http_parser*, const char*, size_t n) {
  cnt += n;
  return 0;
}
static int on_hf(http_parser*, const char*, size_t n) {
  cnt += n;
  return 0;
}
static int on_hv(http_parser*, const char*, size_t n) {
  cnt += n;
  return 0;
}
int main(int argc, char**) {
  std::string tok = argc > 1
                        ? ""
                        : "?token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                          "eyJzdWIiOiJiZW5jaC11c2VyIiwiaWF0IjoxNzk2MzIwMTQzLCJleHAiOjE3OTYzMjM3NDMs"
                          "ImNoYW5uZWxzIjpbXX0.hOED78gDx8CBm-r0fSKR6PVrUfclWraxWCpKzsA998U";
  std::string req =
      "GET /ws" + tok +
      " HTTP/1.1\r\nHost: 127.0.0.1:19080\r\nUpgrade: websocket\r\nConnection: "
      "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  printf("len %zu\n", req.size());
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_header_field = on_hf;
  s.on_header_value = on_hv;
  const int N = 1000000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < N; ++i) {
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    http_parser_execute(&p, &s, req.data(), req.size());
  }
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < N; ++i) {
    P p;
    p.eager(true);
    boost::beast::error_code ec;
    cnt += p.put(boost::asio::const_buffer(req.data(), req.size()), ec);
    if (ec) {
      printf("%s\n", ec.message().c_str());
      return 1;
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  printf("http_parser %.0f ns, beast %.0f ns (%zu)\n",
         std::chrono::duration<double, std::nano>(t1 - t0).count() / N,
         std::chrono::duration<double, std::nano>(t2 - t1).count() / N, cnt);
}
