#include <http_parser.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
extern "C" {
struct phr_header {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
};
int phr_parse_request(const char* buf, size_t len, const char** method, size_t* method_len,
                      const char** path, size_t* path_len, int* minor_version,
                      struct phr_header* headers, size_t* num_headers, size_t last_len);
}
static int cnt;
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
static int on_hc(http_parser*) { return 0; }
int main() {
  std::string req =
      "GET "
      "/ws?token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJleHAiOjE3OTYzMjM2MjAsImlhdCI6MTc5NjMyMDAyMCwic3ViIjoiYmVuY2gtdXNlciIsImNoYW5uZWxzIjpbXX0."
      "tAgTuAM7oz7bBrJp8lSIcR_IwTG1bXXVBuXgiIKePWA HTTP/1.1\r\nHost: 127.0.0.1:19080\r\nUpgrade: "
      "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
      "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  printf("len %zu\n", req.size());
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = on_url;
  s.on_header_field = on_hf;
  s.on_header_value = on_hv;
  s.on_headers_complete = on_hc;
  const int N = 1000000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < N; ++i) {
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    http_parser_execute(&p, &s, req.data(), req.size());
  }
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < N; ++i) {
    const char *m, *pa;
    size_t ml, pl, nh = 32;
    int mv;
    phr_header h[32];
    cnt += phr_parse_request(req.data(), req.size(), &m, &ml, &pa, &pl, &mv, h, &nh, 0);
  }
  auto t2 = std::chrono::steady_clock::now();
  printf("http_parser %.0f ns, phr %.0f ns (%d)\n",
         std::chrono::duration<double, std::nano>(t1 - t0).count() / N,
         std::chrono::duration<double, std::nano>(t2 - t1).count() / N, cnt);
}
