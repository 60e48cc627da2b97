#pragma once
// MeshCa: a small certificate authority for a mesh, kept in a directory (ca-key.pem 0600,
// ca-cert.pem). `ugated ca init` creates it; `ugated ca issue` signs node certificates whose SANs are
// DNS <name>.<trustDomain> and spiffe://<trustDomain>/ns/<ns>/sa/<name>. Blocking file I/O.
#include <chrono>
#include <string>
#include <string_view>

#include <ugate/result.h>

#include "auth/crypto.h"
#include "auth/identity.h"

namespace ugate::auth {

inline constexpr std::string_view kCaKeyFile = "ca-key.pem";
inline constexpr std::string_view kCaCertFile = "ca-cert.pem";

struct MeshCa {
  PrivateKey key;
  std::string certPem;
  /** trustDomain: from the CA certificate's spiffe://<td> URI SAN ("" when none). */
  std::string trustDomain;
};

struct CaInitOptions {
  std::string dir;
  std::string trustDomain;
  std::string name{"ugate-mesh-ca"};
  std::chrono::seconds validity{std::chrono::hours(24 * 365 * 10)};
};

/** initMeshCa creates the CA key and self-signed certificate; refuses to overwrite an existing CA. */
Result<MeshCa> initMeshCa(const CaInitOptions& opts);
/** loadMeshCa reads the CA directory (the key must not be group/other readable). */
Result<MeshCa> loadMeshCa(const std::string& dir);

struct IssueOptions {
  std::string name;
  std::string ns{"default"};
  /** trustDomain: "" = the CA's. */
  std::string trustDomain;
  std::chrono::seconds validity{std::chrono::hours(24 * 90)};
  /**
   * notBefore: the epoch = now (written an hour back for clock skew); tests set past dates to make
   * expired certificates.
   */
  SystemTime notBefore{};
};

/**
 * issueNodeCredentials: a new key (or `key` when valid) and a chain [leaf, CA] signed by ca;
 * rootsPem is the CA certificate.
 */
Result<NodeCredentials> issueNodeCredentials(const MeshCa& ca, const IssueOptions& opts,
                                             PrivateKey key = {});

}  // namespace ugate::auth
