#pragma once
// TlsProvider: how a session wraps a stream in TLS without core knowing the TLS library. The daemon
// builds one per (config, credentials) pair on the main thread (src/auth/tls_provider.cc) and hands
// it to every worker; sessions take a reference when they start a handshake, so a provider replaced
// by a certificate reload lives on until its last handshake ends. Immutable, shared across threads.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/stream.h>
#include <ugate/time.h>

namespace ugate {

struct ListenerTlsConfig;
struct UpstreamTlsConfig;

/** TlsOutcome: the result of a handshake, reported once on the stream's reactor. */
struct TlsOutcome {
  bool ok{false};
  std::string failure;  // failure: stable snake_case reason ("unknown_ca", "not_tls", ...) when !ok
  std::string detail;   // detail: a sentence naming the cause when !ok
  bool timedOut{false};  // timedOut: the handshake outlived its deadline
  std::unique_ptr<PeerIdentity> peer;  // the verified peer (null when it sent no certificate)
  std::string alpn;
  std::string sni;
  std::string version;
  bool resumed{false};
};

/**
 * HandshakingStream: a Stream that must run a handshake before bytes flow. start() begins it; the
 * outcome goes to the callback given at creation (possibly from within start()).
 */
class HandshakingStream : public Stream {
 public:
  virtual void start() = 0;
};
using HandshakingStreamPtr = std::unique_ptr<HandshakingStream>;

/**
 * TlsSession: TLS for a transport that carries the handshake bytes itself (QUIC's CRYPTO frames)
 * and drives the TLS library's session object; made by the provider from the same settings as its
 * TLS streams (certificate, peer rules, ALPN). Used on one thread.
 */
class TlsSession {
 public:
  virtual ~TlsSession() = default;
  /** nativeHandle: the TLS library's session object (BoringSSL: SSL*). */
  virtual void* nativeHandle() = 0;
  /**
   * finish: once the transport saw the handshake complete: ALPN, SNI, version and the verified
   * peer; !ok when the peer fails the rules (a resumed session is judged with today's config).
   */
  virtual TlsOutcome finish() = 0;
  /** failureDetail: why the handshake failed (peer verification, else the library's error). */
  virtual std::string failureDetail() = 0;
};
using TlsSessionPtr = std::unique_ptr<TlsSession>;

class TlsProvider {
 public:
  using Done = std::function<void(TlsOutcome&&)>;
  virtual ~TlsProvider() = default;
  /**
   * server wraps an accepted stream for a listener with TLS config `cfg` (a pointer into the config
   * snapshot this provider was built for, or an equal one). Call start() on the result; `done` runs
   * once on reactor r when the handshake completes, fails or outlives `timeout`.
   */
  virtual HandshakingStreamPtr server(const ListenerTlsConfig& cfg, StreamPtr inner, Reactor& r,
                                      Duration timeout, Done done) const = 0;
  /**
   * client wraps a connected upstream with our certificate; `sni` is the name sent (may be empty),
   * `sessionKey` keys resumption (e.g. "host:port").
   */
  virtual HandshakingStreamPtr client(const UpstreamTlsConfig& cfg, std::string_view sni,
                                      std::string_view sessionKey, StreamPtr inner, Reactor& r,
                                      Duration timeout, Done done) const = 0;
  /**
   * serverSession / clientSession: a TlsSession for a transport that drives TLS itself (QUIC), with
   * the settings of listener TLS config `cfg` / upstream `cfg` (pointers into the snapshot this
   * provider was built for, or equal ones). Null when this provider has no such context.
   */
  virtual TlsSessionPtr serverSession(const ListenerTlsConfig& cfg) const = 0;
  virtual TlsSessionPtr clientSession(const UpstreamTlsConfig& cfg, std::string_view sni,
                                      std::string_view sessionKey) const = 0;
  /** nodeId: our own identity (for logs and /stats). */
  virtual const std::string& nodeId() const = 0;
};
using TlsProviderPtr = std::shared_ptr<const TlsProvider>;

}  // namespace ugate
