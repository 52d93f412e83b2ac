# herald_warnings(<target>): the project's warning set, applied to every target we own.
function(herald_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
