#ifndef HERALD_SERVER_VERSION_H_
#define HERALD_SERVER_VERSION_H_

namespace herald {

// The version of this build, fixed when CMake configured it (cmake/HeraldVersion.cmake):
// "0.1.0", or "0.1.0 (git a609f88-dirty)" when built from a git checkout. Both binaries print
// it for --version. Constant; safe from any thread.
const char* Version();

// The CMake project version alone: "0.1.0".
const char* ProjectVersion();

// What `git describe --always --dirty --tags` said at configure time, or "" outside git.
const char* GitDescribe();

}  // namespace herald

#endif  // HERALD_SERVER_VERSION_H_
