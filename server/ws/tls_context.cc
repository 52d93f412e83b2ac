#include "server/ws/tls_context.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace herald::ws {
namespace {

// Mozilla's "intermediate" TLS 1.2 list (ECDHE, AEAD only); TLS 1.3 suites are OpenSSL's
// defaults, all AEAD.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OpenSslError(const asio::error_code& ec) {
  std::string message = ec.message();
  // asio reports only the first error of the queue; the rest would confuse the next call.
  ERR_clear_error();
  return message;
}

// "subject=CN=x, serial=0A1B, expires Jan  1 00:00:00 2027 GMT" of the leaf in `cert_file`.
std::string DescribeCertificate(const std::string& cert_file) {
  BIO* bio = BIO_new_file(cert_file.c_str(), "r");
  if (bio == nullptr) return "";
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return "";
  std::string out;
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
  absl::StrAppend(&out, "subject=", subject);
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      absl::StrAppend(&out, ", serial=", hex);
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  if (BIO* mem = BIO_new(BIO_s_mem())) {
    if (ASN1_TIME_print(mem, X509_get0_notAfter(cert)) == 1) {
      char* data = nullptr;
      const long size = BIO_get_mem_data(mem, &data);
      absl::StrAppend(&out, ", expires ", std::string(data, static_cast<size_t>(size)));
    }
    BIO_free(mem);
  }
  X509_free(cert);
  ERR_clear_error();
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Load(std::string cert_file,
                                                             std::string key_file) {
  std::unique_ptr<TlsContext> tls(new TlsContext(std::move(cert_file), std::move(key_file)));
  absl::StatusOr<Built> built = tls->Build();
  if (!built.ok()) return built.status();
  core::MutexLock lock(&tls->mu_);
  tls->current_ = *std::move(built);
  return tls;
}

absl::StatusOr<TlsContext::Built> TlsContext::Build() const {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  asio::error_code ec;
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                           asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression |
                           asio::ssl::context::single_dh_use,
                       ec);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // OpenSSL otherwise keeps ~34 KB of read/write buffers per connection, idle or not.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    ERR_clear_error();
    return absl::InternalError("TLS: OpenSSL accepts none of the TLS 1.2 ciphers");
  }
  if (context->use_certificate_chain_file(cert_file_, ec); ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert: cannot load '", cert_file_, "': ", OpenSslError(ec)));
  }
  if (context->use_private_key_file(key_file_, asio::ssl::context::pem, ec); ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key: cannot load '", key_file_, "': ", OpenSslError(ec)));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key: '", key_file_, "' is not the key of the certificate in '", cert_file_, "'"));
  }
  return Built{std::move(context), DescribeCertificate(cert_file_)};
}

absl::Status TlsContext::CheckCaFile(const std::string& ca_file) {
  asio::ssl::context context(asio::ssl::context::tls_server);
  asio::error_code ec;
  if (context.load_verify_file(ca_file, ec); ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-client-ca: cannot load '", ca_file, "': ", OpenSslError(ec)));
  }
  return absl::OkStatus();
}

absl::Status TlsContext::Reload() {
  absl::StatusOr<Built> built = Build();
  if (!built.ok()) return built.status();
  Built old;
  {
    core::MutexLock lock(&mu_);
    old = std::exchange(current_, *std::move(built));
  }
  // `old` is released here, outside the lock (connections may still hold its context).
  return absl::OkStatus();
}

std::shared_ptr<asio::ssl::context> TlsContext::Current() const {
  core::MutexLock lock(&mu_);
  return current_.context;
}

std::string TlsContext::Describe() const {
  core::MutexLock lock(&mu_);
  return current_.description;
}

}  // namespace herald::ws
