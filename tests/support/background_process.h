#ifndef HERALD_TESTS_SUPPORT_BACKGROUND_PROCESS_H_
#define HERALD_TESTS_SUPPORT_BACKGROUND_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace herald::testing {

// A helper process a test runs beside herald (an HTTP backend: tests/support/webhook_backend.py,
// `php -S`), killed on destruction. Its stdout and stderr go to one file (Output()). Not
// thread-safe.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  bool running() const;
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  std::string output_path_;
};

// A TCP port of 127.0.0.1 that nothing listens on now (bound to port 0 and released): another
// process may take it before the caller binds it, so prefer a helper that binds port 0 itself
// and prints its port (WaitForPrintedPort), or retry (RedisServer).
int FreePort();
// Waits until something accepts TCP connections on 127.0.0.1:`port`.
bool WaitForPort(int port, absl::Duration timeout = absl::Seconds(20));
// Waits until `process` printed a line with "<prefix><port>" in it and returns the port (-1 if it
// did not, or exited first): for helpers started on port 0, which no other process can take in
// between (`php -S 127.0.0.1:0` prints "… Development Server (http://127.0.0.1:<port>) started").
int WaitForPrintedPort(const BackgroundProcess& process, absl::string_view prefix,
                       absl::Duration timeout = absl::Seconds(20));

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_BACKGROUND_PROCESS_H_
