#pragma once
// The QUIC fuzzers' server TLS context: BoringSSL with the crypto glue's QUIC setup
// (configureServerContext), a fresh self-signed P-256 certificate, and ALPN that accepts whatever
// the client offers first (so fuzzed handshakes get past ALPN). Made once per process.
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <string>

#include "auth/crypto.h"
#include "quic/quic_crypto.h"

namespace ugate::quic::fuzz {

inline SSL_CTX* serverContext() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_method());
    if (!ugate::quic::configureServerContext(c)) __builtin_trap();
    auto key = ugate::auth::PrivateKey::generate();
    ugate::auth::CertSpec spec;
    spec.name = "fuzz.test";
    auto pem = ugate::auth::createSelfSignedCert(*key, spec);
    std::string keyPem = key->toPem();
    BIO* cb = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
    X509* x = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO* kb = BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    if (SSL_CTX_use_certificate(c, x) != 1 || SSL_CTX_use_PrivateKey(c, k) != 1) __builtin_trap();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    SSL_CTX_set_alpn_select_cb(
        c,
        [](SSL*, const uint8_t** out, uint8_t* outlen, const uint8_t* in, unsigned inlen, void*) {
          // Accept whatever the client offers first: the fuzzer should get past ALPN.
          if (inlen < 2 || in[0] == 0 || in[0] + 1u > inlen) return SSL_TLSEXT_ERR_ALERT_FATAL;
          *out = in + 1;
          *outlen = in[0];
          return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
    return c;
  }();
  return ctx;
}

}  // namespace ugate::quic::fuzz
