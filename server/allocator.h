#ifndef HERALD_SERVER_ALLOCATOR_H_
#define HERALD_SERVER_ALLOCATOR_H_

#include <string>

namespace herald {

// The allocator that serves this process's malloc: "mimalloc 2.0.9" when the executable was
// linked with it (HERALD_MIMALLOC, the default outside sanitizer builds) and it does serve
// malloc, else "glibc". Checked, not assumed: a block from malloc must lie in mimalloc's heap.
// For herald_build_info; any thread.
std::string AllocatorInUse();

}  // namespace herald

#endif  // HERALD_SERVER_ALLOCATOR_H_
