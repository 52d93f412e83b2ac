#include "server/http/thread_buffer.h"

#include <memory>

namespace herald::http {

char* ThreadBuffer() {
  static thread_local std::unique_ptr<char[]> buffer(new char[kThreadBufferBytes]);
  return buffer.get();
}

}  // namespace herald::http
