#include <array>
#include <atomic>

#include "auth/peer_verifier.h"

namespace ugate::auth {

namespace {
std::array<std::atomic<uint64_t>, static_cast<size_t>(AuthFailure::Count)> gFailures{};
}

std::string_view authFailureReason(AuthFailure f) {
  switch (f) {
    case AuthFailure::None: return "ok";
    case AuthFailure::NotTls: return "not_tls";
    case AuthFailure::NoPeerCert: return "no_peer_cert";
    case AuthFailure::BadCert: return "bad_cert";
    case AuthFailure::UnknownCa: return "unknown_ca";
    case AuthFailure::CertExpired: return "cert_expired";
    case AuthFailure::CertNotYetValid: return "cert_not_yet_valid";
    case AuthFailure::TrustDomainMismatch: return "trust_domain_mismatch";
    case AuthFailure::PinnedIdMismatch: return "pinned_id_mismatch";
    case AuthFailure::NoTrustConfigured: return "no_trust_configured";
    case AuthFailure::PeerRejected: return "peer_rejected";
    case AuthFailure::HandshakeFailed: return "handshake_failed";
    case AuthFailure::Closed: return "closed_during_handshake";
    case AuthFailure::Timeout: return "handshake_timeout";
    case AuthFailure::Count: break;
  }
  return "unknown";
}

void countAuthFailure(AuthFailure f) {
  if (f < AuthFailure::Count) gFailures[static_cast<size_t>(f)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t authFailureCount(AuthFailure f) {
  return f < AuthFailure::Count ? gFailures[static_cast<size_t>(f)].load(std::memory_order_relaxed)
                                : 0;
}

}  // namespace ugate::auth
