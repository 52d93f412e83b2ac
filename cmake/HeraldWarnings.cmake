# herald_warnings(<target>): the project's warning set, applied to every target we own.
function(herald_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# clang's thread-safety analysis checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED
# annotations (server/core/mutex.h). With clang it is on for every target of the build — tests,
# tools and benchmarks too — and a finding is an error. gcc has no such analysis.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_compile_options(-Wthread-safety -Werror=thread-safety)
endif()
