# herald_proto_library(<target> PROTOS <files...> [GRPC_TARGET <t> GRPC_PROTOS <files...>])
# Generates C++ messages for PROTOS (paths relative to proto/) into the build tree as library
# <target>; with GRPC_TARGET, also generates gRPC service code for GRPC_PROTOS as a library that
# links <target> and gRPC::grpc++.
function(herald_proto_library target)
  cmake_parse_arguments(ARG "" "GRPC_TARGET" "PROTOS;GRPC_PROTOS" ${ARGN})
  set(proto_root ${PROJECT_SOURCE_DIR}/proto)
  set(out_dir ${PROJECT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${out_dir})
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${out_dir}/${proto})
    add_custom_command(
      OUTPUT ${base}.pb.cc ${base}.pb.h
      COMMAND protobuf::protoc ARGS -I ${proto_root} --cpp_out=${out_dir} ${proto_root}/${proto}
      DEPENDS ${proto_root}/${proto} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs ${base}.pb.cc)
  endforeach()
  add_library(${target} ${srcs})
  target_include_directories(${target} PUBLIC ${out_dir})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)

  if(ARG_GRPC_TARGET)
    set(grpc_srcs)
    foreach(proto ${ARG_GRPC_PROTOS})
      string(REGEX REPLACE "\\.proto$" "" base ${out_dir}/${proto})
      add_custom_command(
        OUTPUT ${base}.grpc.pb.cc ${base}.grpc.pb.h
        COMMAND protobuf::protoc ARGS -I ${proto_root} --grpc_out=${out_dir}
                --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin> ${proto_root}/${proto}
        DEPENDS ${proto_root}/${proto} protobuf::protoc
        COMMENT "protoc (grpc) ${proto}"
        VERBATIM)
      list(APPEND grpc_srcs ${base}.grpc.pb.cc)
    endforeach()
    add_library(${ARG_GRPC_TARGET} ${grpc_srcs})
    target_link_libraries(${ARG_GRPC_TARGET} PUBLIC ${target} gRPC::grpc++)
  endif()
endfunction()
