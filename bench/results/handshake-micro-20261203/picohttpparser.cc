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
int main() {
  std::string req =
      "GET "
      "/ws?token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJleHAiOjE3OTYzMjM2MjAsImlhdCI6MTc5NjMyMDAyMCwic3ViIjoiYmVuY2gtdXNlciIsImNoYW5uZWxzIjpbXX0."
      "tAgTuAM7oz7bBrJp8lSIcR_IwTG1bXXVBuXgiIKePWA HTTP/1.1\r\nHost: 127.0.0.1:19080\r\nUpgrade: "
      "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
      "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  printf("len %zu\n", req.size());
  const int N = 1000000;
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < N; ++i) {
    const char *m, *pa;
    size_t ml, pl, nh = 32;
    int mv;
    phr_header h[32];
    cnt += phr_parse_request(req.data(), req.size(), &m, &ml, &pa, &pl, &mv, h, &nh, 0);
  }
  auto t2 = std::chrono::steady_clock::now();
  printf("phr_parse_request %.0f ns (%d)\n",
         std::chrono::duration<double, std::nano>(t2 - t1).count() / N, cnt);
}
