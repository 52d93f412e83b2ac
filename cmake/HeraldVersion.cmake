# The version both binaries print (`herald --version`, `heraldctl --version`) and /metrics'
# herald_build_info: the CMake project version, plus `git describe --always --dirty` of the
# source tree at configure time when it is a git checkout with git installed. Outside git (a
# release tarball) it is the project version alone.
#
# herald_version_string(<out> <version> <source_dir>) sets <out> to "0.1.0" or
# "0.1.0 (git a609f88-dirty)".
#
# Script mode, for the test of the fallback:
#   cmake -DVERSION=0.1.0 -DSOURCE_DIR=/some/dir -P cmake/HeraldVersion.cmake
# prints the string for that directory.
function(herald_version_string out version source_dir)
  set(result "${version}")
  find_program(HERALD_GIT_EXECUTABLE git)
  if(HERALD_GIT_EXECUTABLE AND EXISTS "${source_dir}/.git")
    execute_process(
      COMMAND "${HERALD_GIT_EXECUTABLE}" describe --always --dirty --tags
      WORKING_DIRECTORY "${source_dir}"
      RESULT_VARIABLE rc
      OUTPUT_VARIABLE described
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0 AND NOT described STREQUAL "")
      # A release tag names the version itself: v0.1.0 -> "0.1.0".
      if(NOT described STREQUAL "v${version}")
        set(result "${version} (git ${described})")
      endif()
    endif()
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND NOT CMAKE_PARENT_LIST_FILE)
  herald_version_string(v "${VERSION}" "${SOURCE_DIR}")
  message("${v}")
endif()
