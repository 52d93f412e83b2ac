// Force-included into every file of a -fsanitize=thread build (HeraldSanitizers.cmake).
//
// protobuf 3.21's map_field.h gives MapFieldBase two more members (seq1_, seq2_, a race detector)
// when __SANITIZE_THREAD__ is defined, so a TSan-built file and Debian's uninstrumented
// libprotobuf disagree on the layout of every map field: google.protobuf.Struct's constructor
// (in the library) lays out `fields` one way, the inline accessors compiled here read it the
// other way, and the first Map::operator[] on a Struct crashes. map_field.h is read here once,
// with the macro hidden, so every file sees the library's layout; its include guard keeps it so.
#ifndef HERALD_CMAKE_TSAN_PROTOBUF_ABI_H_
#define HERALD_CMAKE_TSAN_PROTOBUF_ABI_H_
#ifdef __cplusplus
#pragma push_macro("__SANITIZE_THREAD__")
#undef __SANITIZE_THREAD__
#include <google/protobuf/map_field.h>
#pragma pop_macro("__SANITIZE_THREAD__")
#endif
#endif  // HERALD_CMAKE_TSAN_PROTOBUF_ABI_H_
