# HERALD_SANITIZE=address,undefined | thread instruments every target of the build.
if(HERALD_SANITIZE)
  add_compile_options(-fsanitize=${HERALD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${HERALD_SANITIZE})
endif()
