#ifndef HERALD_SERVER_HTTP_THREAD_BUFFER_H_
#define HERALD_SERVER_HTTP_THREAD_BUFFER_H_

#include <cstddef>

namespace herald::http {

// Bytes of the calling thread's read buffer.
inline constexpr size_t kThreadBufferBytes = 64 * 1024;

// The calling thread's read buffer (kThreadBufferBytes, made on first use and kept for the
// thread's life). An I/O thread reads every socket that is readable into it with a non-blocking
// read and parses the bytes before its next read, so an idle connection holds no read buffer of
// its own (http::Server's connections, ws::WsConnection). Never hold on to what it returns
// across a read, or pass it to another thread.
char* ThreadBuffer();

}  // namespace herald::http

#endif  // HERALD_SERVER_HTTP_THREAD_BUFFER_H_
