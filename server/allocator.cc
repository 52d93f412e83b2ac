#include "server/allocator.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

#ifdef HERALD_MIMALLOC
#include <mimalloc.h>
#endif

namespace herald {

std::string AllocatorInUse() {
#ifdef HERALD_MIMALLOC
  void* block = std::malloc(64);
  const bool served = mi_is_in_heap_region(block);
  std::free(block);
  if (served) {
    const int v = mi_version();  // 209 for 2.0.9
    return absl::StrCat("mimalloc ", v / 100, ".", (v / 10) % 10, ".", v % 10);
  }
#endif
  return "glibc";
}

}  // namespace herald
