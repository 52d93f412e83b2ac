# HERALD_SANITIZE=address,undefined | thread instruments every target of the build.
if(HERALD_SANITIZE)
  add_compile_options(-fsanitize=${HERALD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${HERALD_SANITIZE})
  if(HERALD_SANITIZE MATCHES "thread")
    # protobuf's map fields laid out as Debian's uninstrumented libprotobuf has them (see the file).
    add_compile_options(
      "$<$<COMPILE_LANGUAGE:CXX>:SHELL:-include ${CMAKE_CURRENT_LIST_DIR}/tsan_protobuf_abi.h>")
  endif()
  if(HERALD_SANITIZE MATCHES "undefined" AND CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # Third-party code exempt from one check each, with the reason (see the file). ccache does
    # not hash the list, so its digest goes on the command line: an edit recompiles everything.
    set(ignorelist ${CMAKE_CURRENT_LIST_DIR}/ubsan_ignorelist.txt)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ignorelist})
    file(SHA256 ${ignorelist} ignorelist_sha)
    string(SUBSTRING ${ignorelist_sha} 0 12 ignorelist_sha)
    add_compile_options(-fsanitize-ignorelist=${ignorelist}
                        -DHERALD_UBSAN_IGNORELIST=${ignorelist_sha})
  endif()
endif()

# HERALD_FUZZ (clang only) adds libFuzzer's coverage instrumentation to every target, so that the
# fuzz targets of tests/fuzz see the coverage of the Herald code they drive, and builds them. The
# instrumentation needs no runtime of its own in the other binaries (the sanitizer runtime has
# no-op hooks), so one build serves both the test suite and the fuzzers.
if(HERALD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "HERALD_FUZZ needs clang (-fsanitize=fuzzer); see the clang-asan preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
