#ifndef HERALD_SERVER_WS_TLS_CONTEXT_H_
#define HERALD_SERVER_WS_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/ssl/context.hpp"
#include "server/core/mutex.h"

namespace herald::ws {

// The TLS server identity of the WebSocket/HTTP port: an asio::ssl::context (OpenSSL) built from
// a PEM certificate chain and key, with modern settings (TLS 1.2 and 1.3 only, forward-secret
// AEAD ciphers, no renegotiation or compression). Reload() builds a whole new context from the
// files and swaps it in; a handshake takes the context current when it starts and its connection
// keeps it, so a reload never touches an open connection, and a file that does not load leaves
// the old context serving. Owns the current context. Thread-safe: Current() from any I/O thread
// (a shared_ptr copy under the mutex); Reload() from the control thread, which reads the files
// and builds the context before it takes the mutex (no I/O under the lock).
class TlsContext {
 public:
  // Loads `cert_file` (PEM chain, leaf first) and `key_file` (PEM); the error names the file and
  // what OpenSSL said.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Load(std::string cert_file,
                                                          std::string key_file);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Checks that `ca_file` holds PEM CA certificates (--tls-client-ca, which gRPC reads itself);
  // the error names the flag and the file.
  static absl::Status CheckCaFile(const std::string& ca_file);
  // Reads the files again; on success new handshakes use the new certificate.
  absl::Status Reload();
  std::shared_ptr<asio::ssl::context> Current() const;
  // "subject=..., serial=..., expires ..." of the certificate in use, for the log.
  std::string Describe() const;

 private:
  TlsContext(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}
  struct Built {
    std::shared_ptr<asio::ssl::context> context;
    std::string description;
  };
  absl::StatusOr<Built> Build() const;

  const std::string cert_file_;
  const std::string key_file_;
  mutable core::Mutex mu_;
  Built current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::ws

#endif  // HERALD_SERVER_WS_TLS_CONTEXT_H_
