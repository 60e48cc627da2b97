// The TLS backend on BoringSSL: TlsContext (SSL_CTX, verification, ALPN, client session cache) and
// TlsStream (an SSL driven over an inner ugate::Stream through a custom BIO). The only file of
// src/auth besides crypto_boringssl.cc that calls BoringSSL.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#include "auth/tls_stream.h"

namespace ugate::auth {

struct TlsContext::Impl {
  TlsContextConfig cfg;
  bssl::UniquePtr<SSL_CTX> ctx;
  mutable std::mutex mu;  // mu: guards sessions (touched only at handshakes)
  std::map<std::string, bssl::UniquePtr<SSL_SESSION>> sessions;

  // storeSession takes the reference s; without a key or a cache it is freed at once.
  void storeSession(const std::string& key, SSL_SESSION* s) {
    if (key.empty() || cfg.sessionCacheSize == 0) {
      SSL_SESSION_free(s);
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    if (sessions.size() >= cfg.sessionCacheSize && sessions.count(key) == 0) {
      sessions.erase(sessions.begin());
    }
    sessions[key].reset(s);
  }
  // takeSession: TLS 1.3 tickets are single-use, so a session leaves the cache when offered.
  bssl::UniquePtr<SSL_SESSION> takeSession(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = sessions.find(key);
    if (it == sessions.end()) return nullptr;
    bssl::UniquePtr<SSL_SESSION> s = std::move(it->second);
    sessions.erase(it);
    return s;
  }
  SystemTime now() const { return cfg.clock ? cfg.clock() : std::chrono::system_clock::now(); }
};

namespace {

constexpr size_t kReadChunk = 16 * 1024 + 512;  // kReadChunk: one full TLS record plus header
constexpr size_t kKeepOut = 1024;  // kKeepOut: a written-out ciphertext buffer larger than this is freed
constexpr size_t kMaxWrite = 64 * 1024;         // kMaxWrite: plaintext taken per write() call
constexpr size_t kOutReserve = kMaxWrite + 8 * 512;  // kOutReserve: ciphertext of one write() call

std::string sslErrorString(uint32_t e) {
  if (e == 0) return "unknown TLS error";
  const char* r = ERR_reason_error_string(e);
  return r ? r : "TLS error " + std::to_string(e);
}

uint8_t alertFor(AuthFailure f) {
  switch (f) {
    case AuthFailure::UnknownCa: return SSL_AD_UNKNOWN_CA;
    case AuthFailure::CertExpired:
    case AuthFailure::CertNotYetValid: return SSL_AD_CERTIFICATE_EXPIRED;
    case AuthFailure::NoPeerCert: return SSL_AD_CERTIFICATE_REQUIRED;
    case AuthFailure::PinnedIdMismatch:
    case AuthFailure::TrustDomainMismatch:
    case AuthFailure::NoTrustConfigured: return SSL_AD_ACCESS_DENIED;
    default: return SSL_AD_BAD_CERTIFICATE;
  }
}

std::vector<std::string_view> peerChain(const SSL* ssl) {
  std::vector<std::string_view> ders;
  const STACK_OF(CRYPTO_BUFFER)* chain = SSL_get0_peer_certificates(ssl);
  for (size_t i = 0; chain && i < sk_CRYPTO_BUFFER_num(chain); ++i) {
    const CRYPTO_BUFFER* b = sk_CRYPTO_BUFFER_value(chain, i);
    ders.emplace_back(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(b)), CRYPTO_BUFFER_len(b));
  }
  return ders;
}

/**
 * SslOwner: what the context's callbacks reach through an SSL (its own ex_data slot, so the SSL's
 * app data stays free for a transport such as QUIC): a TlsStream, or a TlsSsl driven by QUIC.
 */
class SslOwner {
 public:
  virtual ~SslOwner() = default;
  /** verifyPeer: the custom verification callback's work. */
  virtual enum ssl_verify_result_t verifyPeer(uint8_t* alert) = 0;
  /** onNewSession: a client got a session ticket; the reference is ours. */
  virtual void onNewSession(SSL_SESSION* s) = 0;
};

int ownerIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

SslOwner* ownerOf(const SSL* ssl) { return static_cast<SslOwner*>(SSL_get_ex_data(ssl, ownerIndex())); }

/** PeerCheck: the verification of one SSL's peer, by the callback or after a resumption. */
struct PeerCheck {
  VerifyResult result;
  bool done{false};

  enum ssl_verify_result_t verify(const SSL* ssl, const TlsContext& ctx, uint8_t* alert) {
    result = ctx.config().verifier->verify(peerChain(ssl), ctx.impl().now());
    done = true;
    if (result.ok()) return ssl_verify_ok;
    *alert = alertFor(result.failure);
    return ssl_verify_invalid;
  }

  /**
   * collect fills info from a completed handshake (ALPN, SNI, version, cipher, the verified peer).
   * A resumed session skipped the callback: its stored chain is judged with today's config. False
   * (info.failure/detail set by the caller from result) when the peer fails the rules.
   */
  bool collect(const SSL* s, const TlsContext& ctx, TlsHandshakeInfo& info) {
    info.resumed = SSL_session_reused(s) == 1;
    const uint8_t* alpn = nullptr;
    unsigned alpnLen = 0;
    SSL_get0_alpn_selected(s, &alpn, &alpnLen);
    info.alpn.assign(reinterpret_cast<const char*>(alpn), alpnLen);
    const char* sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    info.sni = sni ? sni : "";
    info.version = SSL_get_version(s);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) info.cipher = SSL_CIPHER_get_name(c);
    const PeerVerifierPtr& v = ctx.config().verifier;
    if (v == nullptr) return true;
    auto chain = peerChain(s);
    if (chain.empty()) return true;
    if (!done) {
      result = v->verify(chain, ctx.impl().now());
      done = true;
    }
    if (!result.ok()) return false;
    info.peerAuthenticated = true;
    info.peer = result.peer;
    return true;
  }
};

BIO_METHOD* streamBioMethod();

class TlsStreamImpl final : public TlsStream, private StreamCallbacks, public SslOwner {
 public:
  TlsStreamImpl(StreamPtr inner, TlsContextPtr ctx, TlsStreamOptions opts)
      : inner_(std::move(inner)), ctx_(std::move(ctx)), opts_(std::move(opts)) {
    server_ = ctx_->config().server;
    ssl_.reset(SSL_new(ctx_->impl().ctx.get()));
    SSL_set_ex_data(ssl_.get(), ownerIndex(), static_cast<SslOwner*>(this));
    BIO* bio = BIO_new(streamBioMethod());
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_.get(), bio, bio);  // set_bio: the SSL owns one reference used for both ways
    if (server_) {
      SSL_set_accept_state(ssl_.get());
    } else {
      SSL_set_connect_state(ssl_.get());
      if (!opts_.sni.empty()) SSL_set_tlsext_host_name(ssl_.get(), opts_.sni.c_str());
      sessionKey_ = opts_.sessionKey.empty() ? opts_.sni : opts_.sessionKey;
      if (!sessionKey_.empty() && ctx_->config().sessionCacheSize > 0) {
        if (auto s = ctx_->impl().takeSession(sessionKey_)) SSL_set_session(ssl_.get(), s.get());
      }
    }
    inner_->setCallbacks(this);
  }

  ~TlsStreamImpl() override { close(false); }

  // ugate::auth::TlsStream
  void start() override {
    if (state_ != State::Idle) return;
    state_ = State::Handshaking;
    if (opts_.reactor != nullptr && opts_.handshakeTimeout.count() > 0) {
      timer_ = opts_.reactor->createTimer([this] {
        failHandshake(AuthFailure::Timeout,
                      "no TLS handshake within " + std::to_string(opts_.handshakeTimeout.count()) +
                          " ms");
      });
      timer_->enable(opts_.handshakeTimeout);
    }
    doHandshake();
  }
  bool handshakeDone() const override { return state_ == State::Open; }
  const TlsHandshakeInfo& handshakeInfo() const override { return info_; }
  const std::string& lastError() const override { return lastError_; }
  Stream& inner() override { return *inner_; }

  // ugate::Stream
  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }

  IoResult read(uint8_t* buf, size_t len) override {
    if (state_ == State::Handshaking || state_ == State::Idle) {
      readReady_ = false;
      return IoResult{0, EAGAIN};
    }
    if (state_ != State::Open) return IoResult{0, state_ == State::Failed ? ECONNABORTED : EBADF};
    if (readEof_) return IoResult{0, 0};
    int n = SSL_read(ssl_.get(), buf, static_cast<int>(std::min<size_t>(len, INT_MAX)));
    int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), n);
    flushOut();  // post-handshake messages (tickets, key updates) may have queued records
    if (n > 0) return IoResult{n, 0};
    switch (err) {
      case SSL_ERROR_ZERO_RETURN:
        readEof_ = true;
        return IoResult{0, 0};
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        readReady_ = false;
        return IoResult{0, EAGAIN};
      default:
        return ioFailure(err, "read");
    }
  }

  IoResult write(const uint8_t* buf, size_t len) override {
    if (state_ == State::Handshaking || state_ == State::Idle) {
      writeReady_ = false;
      return IoResult{0, EAGAIN};
    }
    if (state_ != State::Open || writeShutdown_) return IoResult{0, EPIPE};
    if (innerErr_ != 0) return IoResult{0, innerErr_};
    if (!flushOut()) return IoResult{0, innerErr_};
    if (outPending() > 0) {
      writeReady_ = false;
      return IoResult{0, EAGAIN};
    }
    if (len == 0) return IoResult{0, 0};
    int n = SSL_write(ssl_.get(), buf, static_cast<int>(std::min(len, kMaxWrite)));
    if (n <= 0) return ioFailure(SSL_get_error(ssl_.get(), n), "write");
    flushOut();
    if (outPending() > 0) writeReady_ = false;
    return IoResult{n, 0};
  }

  void shutdownWrite() override {
    if (state_ != State::Open || writeShutdown_) return;
    writeShutdown_ = true;
    SSL_shutdown(ssl_.get());  // SSL_shutdown: queues close_notify; reading continues (half-close)
    ERR_clear_error();
    shutdownPending_ = true;
    flushOut();
  }

  void close(bool abort) override {
    if (state_ == State::Closed) return;
    if (!abort && state_ == State::Open && !writeShutdown_) {
      writeShutdown_ = true;
      SSL_shutdown(ssl_.get());
      ERR_clear_error();
      flushOut();  // best effort: whatever does not fit now is dropped with the connection
    }
    state_ = State::Closed;
    timer_.reset();
    cb_ = nullptr;
    inner_->close(abort);
    readReady_ = writeReady_ = false;
  }

  // BIO glue
  int bioRead(char* out, int len) {
    if (inOff_ == inLen_) {
      if (innerEof_) return 0;
      if (innerErr_ != 0) return -1;
      // Allocated without zero-filling: a busy stream gets a fresh one per readiness event.
      if (!in_) in_.reset(new uint8_t[kReadChunk]);
      IoResult r = inner_->read(in_.get(), kReadChunk);
      if (r.wouldBlock()) {
        // Everything read is consumed: an idle connection holds no read buffer (16 KiB each).
        in_.reset();
        return -2;  // -2: retry
      }
      if (!r.ok()) {
        innerErr_ = r.err;
        return -1;
      }
      if (r.value == 0) {
        innerEof_ = true;
        return 0;
      }
      inOff_ = 0;
      inLen_ = static_cast<size_t>(r.value);
      if (!sawFirstByte_) {
        sawFirstByte_ = true;
        // A TLS peer starts with a handshake record (22), or an alert (21) when it refuses us.
        uint8_t t = in_[0];
        if (t != 22 && t != 21) {
          notTls_ = true;
          firstBytes_ = describeBytes(in_.get(), std::min<size_t>(inLen_, 16));
        }
      }
    }
    size_t n = std::min(static_cast<size_t>(len), inLen_ - inOff_);
    memcpy(out, in_.get() + inOff_, n);
    inOff_ += n;
    return static_cast<int>(n);
  }

  int bioWrite(const char* data, int len) {
    // A big record means a bulk write(): one allocation for all of it (kMaxWrite of plaintext in
    // records with their overhead), not a doubling series of copies; released once written out.
    if (len >= 8192 && out_.capacity() < kOutReserve) out_.reserve(kOutReserve);
    out_.append(data, static_cast<size_t>(len));
    return len;
  }

  // SslOwner
  enum ssl_verify_result_t verifyPeer(uint8_t* alert) override { return check_.verify(ssl_.get(), *ctx_, alert); }

  void onNewSession(SSL_SESSION* s) override { ctx_->impl().storeSession(sessionKey_, s); }

 private:
  enum class State { Idle, Handshaking, Open, Failed, Closed };

  // ugate::StreamCallbacks (the inner stream)
  void onStreamReadable(Stream&) override {
    if (state_ == State::Handshaking) {
      doHandshake();
      return;
    }
    if (state_ != State::Open) return;
    readReady_ = true;
    if (cb_) cb_->onStreamReadable(*this);
  }

  void onStreamWritable(Stream&) override {
    if (state_ == State::Closed) return;
    if (!flushOut() && state_ == State::Open) {
      writeReady_ = true;  // writeReady_: so the owner sees the error on its next write
      if (cb_) cb_->onStreamWritable(*this);
      return;
    }
    if (state_ == State::Open && outPending() == 0 && !writeShutdown_) {
      writeReady_ = true;
      if (cb_) cb_->onStreamWritable(*this);
    }
  }

  size_t outPending() const { return out_.size() - outOff_; }

  // flushOut writes queued ciphertext to the inner stream; false on a transport error.
  bool flushOut() {
    while (outPending() > 0) {
      IoResult r = inner_->write(reinterpret_cast<const uint8_t*>(out_.data()) + outOff_,
                                 outPending());
      if (r.wouldBlock()) return true;
      if (!r.ok()) {
        innerErr_ = r.err;
        out_.clear();
        outOff_ = 0;
        return false;
      }
      outOff_ += static_cast<size_t>(r.value);
    }
    // Everything is written: a large buffer (the handshake's flight, a big write) is not kept
    // by an idle connection.
    if (out_.capacity() > kKeepOut) {
      std::string().swap(out_);
    } else {
      out_.clear();
    }
    outOff_ = 0;
    if (shutdownPending_) {
      shutdownPending_ = false;
      inner_->shutdownWrite();
    }
    return true;
  }

  void doHandshake() {
    int rc = SSL_do_handshake(ssl_.get());
    int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), rc);
    bool flushed = flushOut();
    if (rc == 1) {
      handshakeDone(flushed);
      return;
    }
    if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && flushed && !innerEof_) {
      return;  // wait for the inner stream
    }
    classifyAndFail(err);
  }

  void classifyAndFail(int err) {
    uint32_t e = ERR_peek_error();
    std::string sslReason = e ? sslErrorString(e) : "";
    ERR_clear_error();
    if (notTls_) {
      failHandshake(AuthFailure::NotTls, std::string(server_ ? "client" : "server") +
                                             " does not speak TLS (first bytes: " + firstBytes_ +
                                             ")");
    } else if (check_.done && !check_.result.ok()) {
      failHandshake(check_.result.failure, check_.result.detail);
    } else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      failHandshake(AuthFailure::NoPeerCert, "the client sent no certificate");
    } else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET) {
      int alert = ERR_GET_REASON(e) - SSL_AD_REASON_OFFSET;
      failHandshake(AuthFailure::PeerRejected,
                    std::string("peer sent alert '") + SSL_alert_desc_string_long(alert) + "'");
    } else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_UNSUPPORTED_PROTOCOL) {
      failHandshake(AuthFailure::HandshakeFailed,
                    std::string("no TLS version in common (this endpoint accepts ") +
                        (ctx_->config().tls13Only ? "TLS 1.3 only" : "TLS 1.2 and 1.3") +
                        "): " + sslReason);
    } else if (e != 0) {
      failHandshake(AuthFailure::HandshakeFailed, sslReason);
    } else if (innerEof_) {
      failHandshake(AuthFailure::Closed, "peer closed the connection during the handshake");
    } else if (innerErr_ != 0) {
      failHandshake(AuthFailure::Closed, std::string("transport error: ") + strerror(innerErr_));
    } else {
      failHandshake(AuthFailure::HandshakeFailed, "SSL error " + std::to_string(err));
    }
  }

  void handshakeDone(bool flushed) {
    if (!check_.collect(ssl_.get(), *ctx_, info_)) {
      failHandshake(check_.result.failure, check_.result.detail);
      return;
    }
    if (!flushed) {
      failHandshake(AuthFailure::Closed, std::string("transport error: ") + strerror(innerErr_));
      return;
    }
    state_ = State::Open;
    timer_.reset();
    readReady_ = true;  // readReady_: records may already sit in our buffer
    writeReady_ = outPending() == 0;
    if (opts_.onHandshake) opts_.onHandshake(info_);
    // Records that came with the last handshake flight may already be buffered here or in the
    // socket (whose edge is spent): tell the reader once; a spurious wake-up only costs an EAGAIN.
    if (state_ == State::Open && cb_ != nullptr) cb_->onStreamReadable(*this);
  }

  void failHandshake(AuthFailure f, std::string detail) {
    if (state_ != State::Handshaking) return;
    state_ = State::Failed;
    timer_.reset();
    info_.failure = f;
    info_.detail = std::move(detail);
    countAuthFailure(f);
    spdlog::debug("tls: {} handshake failed: {}: {}", server_ ? "server" : "client",
                 authFailureReason(f), info_.detail);
    flushOut();  // flushOut: deliver our alert, if any
    if (opts_.onHandshake) opts_.onHandshake(info_);
  }

  IoResult ioFailure(int sslErr, const char* op) {
    uint32_t e = ERR_peek_error();
    ERR_clear_error();
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET) {
      int alert = ERR_GET_REASON(e) - SSL_AD_REASON_OFFSET;
      lastError_ = std::string("peer sent alert '") + SSL_alert_desc_string_long(alert) + "'";
      return IoResult{0, EPROTO};
    }
    if (e != 0) {
      lastError_ = sslErrorString(e);
      return IoResult{0, EPROTO};
    }
    if (innerErr_ != 0) {
      lastError_ = strerror(innerErr_);
      return IoResult{0, innerErr_};
    }
    if (innerEof_) {
      lastError_ = "connection closed without close_notify (truncated)";
      return IoResult{0, ECONNRESET};
    }
    lastError_ = std::string("TLS ") + op + " failed: SSL error " + std::to_string(sslErr);
    return IoResult{0, EPROTO};
  }

  static std::string describeBytes(const uint8_t* p, size_t n) {
    std::string s = "\"";
    for (size_t i = 0; i < n; ++i) {
      if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
        s += static_cast<char>(p[i]);
      } else {
        char b[8];
        snprintf(b, sizeof(b), "\\x%02x", p[i]);
        s += b;
      }
    }
    return s + "\"";
  }

  StreamPtr inner_;
  TlsContextPtr ctx_;
  TlsStreamOptions opts_;
  bssl::UniquePtr<SSL> ssl_;
  bool server_{false};
  State state_{State::Idle};
  StreamCallbacks* cb_{nullptr};
  TimerPtr timer_;
  TlsHandshakeInfo info_;
  std::string lastError_;
  std::string sessionKey_;
  PeerCheck check_;
  // in_: ciphertext read from the inner stream, consumed by the SSL through the BIO.
  std::unique_ptr<uint8_t[]> in_;
  size_t inOff_{0};
  size_t inLen_{0};
  bool innerEof_{false};
  int innerErr_{0};
  bool sawFirstByte_{false};
  bool notTls_{false};
  std::string firstBytes_;
  // out_: ciphertext the SSL produced that the inner stream has not taken yet.
  std::string out_;
  size_t outOff_{0};
  bool readEof_{false};
  bool writeShutdown_{false};
  bool shutdownPending_{false};
};

int bioReadCb(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  int n = static_cast<TlsStreamImpl*>(BIO_get_data(b))->bioRead(out, len);
  if (n == -2) {
    BIO_set_retry_read(b);
    return -1;
  }
  return n;
}

int bioWriteCb(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  return static_cast<TlsStreamImpl*>(BIO_get_data(b))->bioWrite(data, len);
}

long bioCtrlCb(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

BIO_METHOD* streamBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ugate_stream");
    BIO_meth_set_read(m, bioReadCb);
    BIO_meth_set_write(m, bioWriteCb);
    BIO_meth_set_ctrl(m, bioCtrlCb);
    return m;
  }();
  return method;
}

enum ssl_verify_result_t verifyCb(SSL* ssl, uint8_t* alert) {
  return ownerOf(ssl)->verifyPeer(alert);
}

int newSessionCb(SSL* ssl, SSL_SESSION* session) {
  ownerOf(ssl)->onNewSession(session);
  return 1;  // 1: we took the reference
}

int alpnSelectCb(SSL*, const uint8_t** out, uint8_t* outLen, const uint8_t* in, unsigned inLen,
                 void* arg) {
  const auto* impl = static_cast<const TlsContext::Impl*>(arg);
  for (const auto& want : impl->cfg.alpn) {
    for (unsigned i = 0; i < inLen;) {
      unsigned n = in[i];
      if (i + 1 + n > inLen) break;
      if (n == want.size() && memcmp(in + i + 1, want.data(), n) == 0) {
        *out = in + i + 1;
        *outLen = static_cast<uint8_t>(n);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + n;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

Error tlsError(std::string what) {
  uint32_t e = ERR_get_error();
  ERR_clear_error();
  return makeError(Errc::InvalidArgument, what + (e ? ": " + sslErrorString(e) : ""));
}

Result<void> useCredentials(SSL_CTX* ctx, const std::string& chainPem, const std::string& keyPem) {
  bssl::UniquePtr<BIO> bio(
      BIO_new_mem_buf(chainPem.data(), static_cast<int>(chainPem.size())));
  bool first = true;
  for (;;) {
    bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) break;
    if (first) {
      if (!SSL_CTX_use_certificate(ctx, x.get())) return tlsError("certificate");
      first = false;
    } else if (!SSL_CTX_add1_chain_cert(ctx, x.get())) {
      return tlsError("chain certificate");
    }
  }
  ERR_clear_error();
  if (first) return makeError(Errc::InvalidArgument, "no certificate in the chain PEM");
  bssl::UniquePtr<BIO> kb(BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size())));
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!key) return tlsError("private key");
  if (!SSL_CTX_use_PrivateKey(ctx, key.get()) || !SSL_CTX_check_private_key(ctx)) {
    return tlsError("the private key does not match the certificate");
  }
  return {};
}

}  // namespace

TlsContext::TlsContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsContext::~TlsContext() = default;
const TlsContextConfig& TlsContext::config() const { return impl_->cfg; }
size_t TlsContext::cachedSessionsForTest() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sessions.size();
}

Result<std::shared_ptr<TlsContext>> TlsContext::create(TlsContextConfig cfg) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = std::move(cfg);
  const TlsContextConfig& c = impl->cfg;
  impl->ctx.reset(SSL_CTX_new(TLS_method()));
  SSL_CTX* ctx = impl->ctx.get();
  if (ctx == nullptr) return tlsError("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, c.tls13Only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  if (!c.certChainPem.empty() || !c.keyPem.empty()) {
    if (auto r = useCredentials(ctx, c.certChainPem, c.keyPem); !r) return r.error();
  } else if (c.server) {
    return makeError(Errc::InvalidArgument, "a TLS server needs a certificate and key");
  }
  if (c.verifier) {
    int mode = SSL_VERIFY_PEER;
    if (c.server && c.requirePeerCert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_custom_verify(ctx, mode, verifyCb);
  } else if (!c.server) {
    return makeError(Errc::InvalidArgument,
                     "a TLS client needs a peer verifier (acceptAny to only record the identity)");
  }
  if (c.server) {
    static const uint8_t kSidCtx[] = "ugate";
    SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof(kSidCtx) - 1);
    if (!c.alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, alpnSelectCb, impl.get());
  } else {
    if (!c.alpn.empty()) {
      std::string wire;
      for (const auto& p : c.alpn) {
        if (p.empty() || p.size() > 255) return makeError(Errc::InvalidArgument, "bad ALPN '" + p + "'");
        wire += static_cast<char>(p.size());
        wire += p;
      }
      if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) != 0) {
        return tlsError("ALPN");
      }
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, newSessionCb);
  }
  return std::make_shared<TlsContext>(std::move(impl));
}

std::unique_ptr<TlsStream> TlsStream::create(StreamPtr inner, TlsContextPtr ctx,
                                             TlsStreamOptions opts) {
  return std::make_unique<TlsStreamImpl>(std::move(inner), std::move(ctx), std::move(opts));
}

namespace {

/** TlsSslImpl: an SSL driven by a transport (QUIC); verification and tickets as for a TlsStream. */
class TlsSslImpl final : public TlsSsl, public SslOwner {
 public:
  TlsSslImpl(TlsContextPtr ctx, std::string sni, std::string sessionKey)
      : ctx_(std::move(ctx)), sessionKey_(sessionKey.empty() ? sni : std::move(sessionKey)) {
    ssl_.reset(SSL_new(ctx_->impl().ctx.get()));
    if (!ssl_) return;
    SSL_set_ex_data(ssl_.get(), ownerIndex(), static_cast<SslOwner*>(this));
    if (ctx_->config().server) {
      SSL_set_accept_state(ssl_.get());
    } else {
      SSL_set_connect_state(ssl_.get());
      if (!sni.empty()) SSL_set_tlsext_host_name(ssl_.get(), sni.c_str());
      if (!sessionKey_.empty() && ctx_->config().sessionCacheSize > 0) {
        if (auto s = ctx_->impl().takeSession(sessionKey_)) SSL_set_session(ssl_.get(), s.get());
      }
    }
  }
  bool valid() const { return ssl_ != nullptr; }

  ssl_st* native() override { return ssl_.get(); }
  const TlsHandshakeInfo& finish() override {
    if (!check_.collect(ssl_.get(), *ctx_, info_)) {
      info_.failure = check_.result.failure;
      info_.detail = check_.result.detail;
    }
    return info_;
  }
  std::string failureDetail() override {
    if (check_.done && !check_.result.ok()) return check_.result.detail;
    uint32_t e = ERR_peek_error();
    return e ? sslErrorString(e) : "";
  }

  enum ssl_verify_result_t verifyPeer(uint8_t* alert) override { return check_.verify(ssl_.get(), *ctx_, alert); }
  void onNewSession(SSL_SESSION* s) override { ctx_->impl().storeSession(sessionKey_, s); }

 private:
  TlsContextPtr ctx_;
  std::string sessionKey_;
  bssl::UniquePtr<SSL> ssl_;
  PeerCheck check_;
  TlsHandshakeInfo info_;
};

}  // namespace

std::unique_ptr<TlsSsl> TlsSsl::create(TlsContextPtr ctx, std::string sni, std::string sessionKey) {
  auto s = std::make_unique<TlsSslImpl>(std::move(ctx), std::move(sni), std::move(sessionKey));
  if (!s->valid()) return nullptr;
  return s;
}

}  // namespace ugate::auth
