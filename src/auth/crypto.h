#pragma once
// Crypto helpers behind one backend (crypto_boringssl.cc): EC P-256 keys, SHA-256, ES256 signatures,
// node IDs and X.509 certificates (self-signed node certs, a mesh CA, parsing). Nothing here names a
// BoringSSL type, so the TLS library can change in one place.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>

namespace ugate::auth {

using Bytes = std::vector<uint8_t>;
using SystemTime = std::chrono::system_clock::time_point;

/** kPublicKeyLen: an uncompressed P-256 point, 0x04 || X || Y. */
constexpr size_t kPublicKeyLen = 65;
/** kNodeIdLen: base32 of a SHA-256 digest without padding. */
constexpr size_t kNodeIdLen = 52;

/** PrivateKey: an EC P-256 private key. Immutable, cheap to copy (shared), thread-safe to use. */
class PrivateKey {
 public:
  struct Impl;  // Impl: defined by the crypto backend
  PrivateKey() = default;
  /** PrivateKey(impl): used by the backend; Impl is opaque everywhere else. */
  explicit PrivateKey(std::shared_ptr<const Impl> i) : impl_(std::move(i)) {}
  /** generate creates a fresh key from the system CSPRNG. */
  static Result<PrivateKey> generate();
  /** fromPem parses a PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM; only P-256 is accepted. */
  static Result<PrivateKey> fromPem(std::string_view pem);

  bool valid() const { return impl_ != nullptr; }
  /** toPem: PKCS#8 PEM (what Go's x509.MarshalPKCS8PrivateKey and Istio's key.pem hold). */
  std::string toPem() const;
  /** publicKey: the 65-byte uncompressed point. */
  const Bytes& publicKey() const;
  /** nodeId: base32(SHA-256(publicKey())), 52 characters. */
  std::string nodeId() const;
  /** signEs256 hashes data with SHA-256 and signs it; the signature is raw r||s (64 bytes). */
  Result<Bytes> signEs256(std::span<const uint8_t> data) const;

  const Impl* impl() const { return impl_.get(); }

 private:
  std::shared_ptr<const Impl> impl_;
};

/** sha256 of data. */
std::array<uint8_t, 32> sha256(std::span<const uint8_t> data);
/** isP256PublicKey tells whether key is a valid uncompressed P-256 point on the curve. */
bool isP256PublicKey(std::span<const uint8_t> key);
/** verifyEs256 checks a raw r||s signature of SHA-256(data) against an uncompressed public key. */
bool verifyEs256(std::span<const uint8_t> publicKey, std::span<const uint8_t> data,
                 std::span<const uint8_t> signature);
/** nodeIdFromPublicKey: base32 (RFC 4648, no padding) of SHA-256 of the 65-byte key. */
std::string nodeIdFromPublicKey(std::span<const uint8_t> publicKey);

/** CertSpec: the names and lifetime a certificate carries. */
struct CertSpec {
  /** name: node name; the DNS SAN and CN are `<name>.<trustDomain>` (just `<name>` without one). */
  std::string name;
  /** trustDomain: when set, adds URI SAN spiffe://<trustDomain>/ns/<ns>/sa/<name>. */
  std::string trustDomain;
  std::string ns{"default"};
  /**
   * notBefore: start of validity. The epoch (default) means now, with notBefore written an hour
   * earlier for clock skew; `validity` always counts from the start (now), not from the backdating.
   */
  SystemTime notBefore{};
  std::chrono::seconds validity{std::chrono::hours(24 * 365)};
  /** isCa: a CA certificate (basicConstraints CA:TRUE, keyCertSign) named by CN `name`. */
  bool isCa{false};
};

/** dnsName: `<name>.<trustDomain>`, or `<name>` without a trust domain. */
std::string certDnsName(const CertSpec& spec);
/** spiffeId: spiffe://<trustDomain>/ns/<ns>/sa/<name>, or "" without a trust domain. */
std::string certSpiffeId(const CertSpec& spec);

/** createSelfSignedCert: an ECDSA-SHA256 certificate for key signed by itself. @return PEM. */
Result<std::string> createSelfSignedCert(const PrivateKey& key, const CertSpec& spec);
/**
 * createSignedCert: a certificate for subjectPublicKey (65-byte point) signed by a CA.
 * @param caCertPem the CA's certificate (the first one in the PEM is used).
 * @return the leaf PEM only; callers append the CA for a chain.
 */
Result<std::string> createSignedCert(std::span<const uint8_t> subjectPublicKey, const CertSpec& spec,
                                     const PrivateKey& caKey, std::string_view caCertPem);

/** CertInfo: what the rest of ugate needs to know about a certificate. */
struct CertInfo {
  std::string subject;  // subject and issuer in OpenSSL's one-line form
  std::string issuer;
  std::vector<std::string> dnsSans;
  std::vector<std::string> uriSans;
  SystemTime notBefore{};
  SystemTime notAfter{};
  Bytes publicKey;  // the 65-byte point for EC P-256 keys, else empty
  bool isCa{false};
  bool selfSigned{false};  // issuer == subject and the signature verifies with its own key
};

/** parseCertPem parses the first certificate of a PEM text. */
Result<CertInfo> parseCertPem(std::string_view pem);
/** parseCertDer parses one DER certificate. */
Result<CertInfo> parseCertDer(std::span<const uint8_t> der);
/** splitPemCerts returns each CERTIFICATE block of a PEM text, in order, with its armour. */
std::vector<std::string> splitPemCerts(std::string_view pem);
/** certMatchesKey: the first certificate of certPem is for key's public key. */
bool certMatchesKey(std::string_view certPem, const PrivateKey& key);

}  // namespace ugate::auth
