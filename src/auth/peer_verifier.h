#pragma once
// PeerVerifier: decides whether a TLS peer's certificate chain is trusted, and who the peer is.
// Two modes, usable together: chain to configured roots (optionally requiring a SPIFFE trust
// domain), or pinned node IDs (the leaf key's node ID must be in an allowed set; this is how
// self-signed nodes are trusted). Implemented by the crypto backend.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>
#include <ugate/stream.h>

#include "auth/crypto.h"

namespace ugate::auth {

/** AuthFailure: why a TLS handshake or peer verification failed. Each has a stable reason string. */
enum class AuthFailure : uint8_t {
  None = 0,
  NotTls,               // the peer did not speak TLS (e.g. plain TCP to a TLS port)
  NoPeerCert,           // the peer sent no certificate where one is required
  BadCert,              // unparsable certificate or unsupported key
  UnknownCa,            // chain does not lead to a configured root
  CertExpired,          // leaf or chain certificate past notAfter
  CertNotYetValid,      // before notBefore
  TrustDomainMismatch,  // no spiffe://<trustDomain>/ URI SAN
  PinnedIdMismatch,     // the key's node ID is not in the allowed set
  NoTrustConfigured,    // neither roots nor pinned IDs to check against
  PeerRejected,         // the peer sent a fatal alert (it rejected us)
  HandshakeFailed,      // any other TLS protocol error (version, ALPN, cipher)
  Closed,               // the transport closed or failed during the handshake
  Timeout,              // handshake deadline passed
  Count,                // keep last
};

/** authFailureReason: stable snake_case reason for logs, counters and access logs. */
std::string_view authFailureReason(AuthFailure f);
/** countAuthFailure / authFailureCount: process-wide counters per reason (thread-safe). */
void countAuthFailure(AuthFailure f);
uint64_t authFailureCount(AuthFailure f);

/** PeerVerifyConfig: what a peer must prove. */
struct PeerVerifyConfig {
  /** rootsPem: CA bundle; a peer whose chain verifies to one of these is trusted. */
  std::string rootsPem;
  /** trustDomain: when set, root-verified peers must carry a spiffe://<trustDomain>/ URI SAN. */
  std::string trustDomain;
  /** pinnedIds: node IDs accepted whatever signed the certificate (self-signed peers). */
  std::vector<std::string> pinnedIds;
  /** acceptAny: trust any valid key (identity recorded, authorization left to routes). */
  bool acceptAny{false};
};

/** VerifyResult: the verdict, the reason when rejected, and the identity when accepted. */
struct VerifyResult {
  AuthFailure failure{AuthFailure::None};
  std::string detail;
  PeerIdentity peer;
  bool ok() const { return failure == AuthFailure::None; }
};

class PeerVerifier {
 public:
  struct Impl;
  /** create parses the roots once. Thread-safe to share once created. */
  static Result<std::shared_ptr<const PeerVerifier>> create(const PeerVerifyConfig& cfg);
  ~PeerVerifier();

  /**
   * verify checks a chain (leaf first, DER) at time now. Proof of key possession is the TLS
   * layer's job; this only judges the certificates.
   */
  VerifyResult verify(std::span<const std::string_view> derChain, SystemTime now) const;
  const PeerVerifyConfig& config() const { return cfg_; }

  explicit PeerVerifier(PeerVerifyConfig cfg, std::unique_ptr<Impl> impl);

 private:
  PeerVerifyConfig cfg_;
  std::unique_ptr<Impl> impl_;
};
using PeerVerifierPtr = std::shared_ptr<const PeerVerifier>;

/** identityFromCert: node ID (from the key), SPIFFE URI and DNS SANs of a parsed certificate. */
PeerIdentity identityFromCert(const CertInfo& info);

}  // namespace ugate::auth
