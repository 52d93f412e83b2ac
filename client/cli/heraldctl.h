#ifndef HERALD_CLIENT_CLI_HERALDCTL_H_
#define HERALD_CLIENT_CLI_HERALDCTL_H_

#include <ostream>

namespace herald::cli {

// Exit codes of heraldctl.
inline constexpr int kExitOk = 0;
inline constexpr int kExitServerError = 1;  // the server answered with an error
inline constexpr int kExitUsage = 2;        // bad flags or input
inline constexpr int kExitUnreachable = 3;  // no answer from the server

// Runs one heraldctl command line, writing results to `out` and diagnostics to `err`; returns
// the exit code. Stateless; safe to call from several threads.
int Run(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace herald::cli

#endif  // HERALD_CLIENT_CLI_HERALDCTL_H_
