#pragma once
// TLS over any ugate::Stream (a TcpStream, an HTTP/2 stream, a pipe), client or server, with ALPN,
// TLS 1.3-only contexts for mesh ports, client session resumption and peer verification through a
// PeerVerifier. The backend is tls_boringssl.cc; nothing here names a BoringSSL type.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/stream.h>
#include <ugate/time.h>

#include "auth/peer_verifier.h"
#include <ugate/tls_provider.h>

struct ssl_st;

namespace ugate::auth {

struct TlsContextConfig {
  bool server{false};
  /** certChainPem / keyPem: what we present. Required for a server, optional for a client (mTLS). */
  std::string certChainPem;
  std::string keyPem;
  /**
   * verifier: how the peer is judged. A client needs one (PeerVerifyConfig::acceptAny records the
   * identity without trusting anything in particular). A server without one asks for no client cert.
   */
  PeerVerifierPtr verifier;
  /** requirePeerCert: server with a verifier: a client without a certificate fails (mutual TLS). */
  bool requirePeerCert{true};
  /** alpn: client: offered in order; server: accepted in preference order (none in common = none). */
  std::vector<std::string> alpn;
  /** tls13Only: mesh ports accept nothing older; otherwise TLS 1.2 is the minimum. */
  bool tls13Only{true};
  /** sessionCacheSize: client sessions kept for resumption, keyed by TlsStreamOptions::sessionKey. */
  size_t sessionCacheSize{256};
  /** clock: wall time for certificate validity; null = the system clock. */
  std::function<std::chrono::system_clock::time_point()> clock;
};

/** TlsContext: immutable configuration shared by streams, any thread. Create once per config. */
class TlsContext {
 public:
  struct Impl;
  static Result<std::shared_ptr<TlsContext>> create(TlsContextConfig cfg);
  explicit TlsContext(std::unique_ptr<Impl> impl);
  ~TlsContext();
  const TlsContextConfig& config() const;
  /** cachedSessionsForTest: how many client sessions are waiting for reuse. */
  size_t cachedSessionsForTest() const;
  Impl& impl() { return *impl_; }
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};
using TlsContextPtr = std::shared_ptr<TlsContext>;

/** TlsHandshakeInfo: the outcome of a handshake. */
struct TlsHandshakeInfo {
  AuthFailure failure{AuthFailure::None};
  std::string detail;        // detail: a human sentence naming the cause when failed
  bool peerAuthenticated{false};
  PeerIdentity peer;         // peer: valid when peerAuthenticated
  std::string alpn;
  std::string sni;           // sni: what the client asked for (server side) or sent (client side)
  std::string version;
  std::string cipher;
  bool resumed{false};
  bool ok() const { return failure == AuthFailure::None; }
};

struct TlsStreamOptions {
  /** sni: client: the server name sent. */
  std::string sni;
  /** sessionKey: client: resumption key ("" = sni; both empty = no resumption). */
  std::string sessionKey;
  /**
   * onHandshake runs once, on the stream's reactor, when the handshake completes or fails. It may
   * close the stream but must not destroy it synchronously (use Reactor::deferredDelete).
   * With TLS 1.3 a client learns that the server rejected its certificate only on its first read.
   * If callbacks are set when it returns, onStreamReadable follows at once (data may be buffered).
   */
  std::function<void(const TlsHandshakeInfo&)> onHandshake;
  /** reactor + handshakeTimeout: fail with AuthFailure::Timeout when set. */
  Reactor* reactor{nullptr};
  Duration handshakeTimeout{0};
};

/**
 * TlsStream: a Stream whose bytes are TLS-protected on an inner Stream it owns. Non-blocking: read()
 * and write() return wouldBlock() until the handshake completes and whenever the inner stream would
 * block. spliceFd() is -1: bytes are always in userland.
 */
class TlsStream : public HandshakingStream {
 public:
  /** create takes ownership of inner; it must be connected. Call start() to begin. */
  static std::unique_ptr<TlsStream> create(StreamPtr inner, TlsContextPtr ctx,
                                           TlsStreamOptions opts);
  /** start sends the ClientHello (client) or waits for one (server). */
  void start() override = 0;
  virtual bool handshakeDone() const = 0;
  virtual const TlsHandshakeInfo& handshakeInfo() const = 0;
  /** lastError: why the last read()/write() failed after the handshake (e.g. a peer alert). */
  virtual const std::string& lastError() const = 0;
  virtual Stream& inner() = 0;
};
using TlsStreamPtr = std::unique_ptr<TlsStream>;

/**
 * TlsSsl: a TLS session whose handshake bytes a transport carries itself (QUIC's CRYPTO frames),
 * made from a TlsContext like a TlsStream: the same certificate, peer verification (the custom
 * verify callback, through the SSL's own ex_data slot: its app data stays the transport's), ALPN
 * and client session cache. The transport drives native() and calls finish() once its handshake
 * completed. One thread.
 */
class TlsSsl {
 public:
  /** create: null when the SSL cannot be allocated. */
  static std::unique_ptr<TlsSsl> create(TlsContextPtr ctx, std::string sni, std::string sessionKey);
  virtual ~TlsSsl() = default;
  virtual ssl_st* native() = 0;
  /** finish: ALPN, SNI, version, cipher and the verified peer; failure set when the peer fails the rules. */
  virtual const TlsHandshakeInfo& finish() = 0;
  /** failureDetail: why the handshake failed (the peer's verification, else the TLS error). */
  virtual std::string failureDetail() = 0;
};

}  // namespace ugate::auth
