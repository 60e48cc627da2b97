#pragma once
// The daemon's side of TLS: where the node's credentials come from (and when they changed), and the
// TlsProvider built from them for one config. Blocking file I/O and key generation: main thread only.
#include <memory>
#include <string>

#include <ugate/result.h>

#include "auth/identity.h"
#include <ugate/config.h>
#include <ugate/tls_provider.h>

namespace ugate::auth {

/**
 * CredentialSource: loads the credentials a config names — tls.certDir (Istio layout), else
 * node.dataDir (Istio layout, kube.json, or a new key and self-signed certificate) — plus
 * tls.rootsFile, and tells when they changed on disk or a self-managed certificate is due for
 * renewal. A renewal re-issues the certificate for the same key (the node ID does not change).
 */
class CredentialSource {
 public:
  explicit CredentialSource(const Config& cfg);
  /**
   * load reads (and creates or renews when self-managed) the credentials. Errors start with the
   * config key that names the files (tls.certDir, node.dataDir, tls.rootsFile). dryRun writes
   * nothing (IdentityOptions::dryRun): `ugated --check-config`.
   */
  Result<NodeCredentials> load(bool dryRun = false);
  /** changed: the files differ from the last load (size, mtime, inode) or renewal is due. */
  bool changed() const;
  /**
   * changedAndSettled: for the periodic check: the files differ from the last load and are the same
   * as at the previous call — a writer replacing key, chain and roots one after another (a cert
   * manager's renames) has finished, so a reload never takes half of a new set — or renewal is due.
   */
  bool changedAndSettled();
  /** sameSettings: cfg names the same files and certificate options as this source. */
  bool sameSettings(const Config& cfg) const;
  const std::string& describe() const { return where_; }

 private:
  std::string fingerprint() const;

  IdentityOptions opts_;
  std::string certDir_;
  std::string rootsFile_;
  std::string where_;
  std::string fingerprint_;
  std::string seen_;  // changedAndSettled: the files' fingerprint at the previous check, while changed
  SystemTime renewAt_{SystemTime::max()};
};

/**
 * makeTlsProvider builds every TLS context cfg needs (one per distinct listener "tls" and
 * "upstreamTls" setting) from creds. Errors name the config path: a mutual-TLS listener or an
 * upstream with nothing to trust, an unusable certificate; every one found, one per line.
 */
Result<TlsProviderPtr> makeTlsProvider(const Config& cfg, const NodeCredentials& creds);

/** TlsCounters: handshakes by side, resumed ones, and failures by reason (process-wide). */
struct TlsCounters {
  uint64_t serverOk{0};
  uint64_t clientOk{0};
  uint64_t resumed{0};
};
TlsCounters tlsCounters();

}  // namespace ugate::auth
