#pragma once
// ToolTls: the contract's TlsSession over an SSL of a test tool's own context (tests/tools: the QUIC
// clients built on src/quic). The tool's context decides ALPN, certificates and verification;
// finish() reports the negotiated ALPN and version and accepts the peer.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include <ugate/tls_provider.h>

namespace ugate::tools {

class ToolTls final : public TlsSession {
 public:
  explicit ToolTls(SSL_CTX* ctx) : ssl_(SSL_new(ctx)) {}
  ~ToolTls() override { SSL_free(ssl_); }
  void* nativeHandle() override { return ssl_; }
  TlsOutcome finish() override {
    TlsOutcome o;
    o.ok = true;
    const uint8_t* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    o.alpn.assign(reinterpret_cast<const char*>(p), n);
    o.version = SSL_get_version(ssl_);
    return o;
  }
  std::string failureDetail() override {
    unsigned long e = ERR_peek_error();
    if (e == 0) return "";
    char b[256];
    ERR_error_string_n(e, b, sizeof(b));
    return b;
  }

 private:
  SSL* ssl_;
};

}  // namespace ugate::tools
