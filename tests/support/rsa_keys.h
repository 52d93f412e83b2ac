#ifndef HERALD_TESTS_SUPPORT_RSA_KEYS_H_
#define HERALD_TESTS_SUPPORT_RSA_KEYS_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <string>

namespace herald::testing {

// A fresh RSA key pair in PEM (PKCS#8 private key, SubjectPublicKeyInfo public key), for JWT
// tests. Plain value type.
struct RsaKeyPair {
  std::string private_pem;
  std::string public_pem;
};

inline std::string BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

inline RsaKeyPair GenerateRsaKeyPair() {
  RsaKeyPair pair;
  EVP_PKEY* key = EVP_RSA_gen(2048);
  if (key == nullptr) return pair;
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
      PEM_write_bio_PUBKEY(pub, key) == 1) {
    pair.private_pem = BioString(priv);
    pair.public_pem = BioString(pub);
  }
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return pair;
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_SUPPORT_RSA_KEYS_H_
