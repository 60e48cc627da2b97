#pragma once
// TlsManager (main thread): loads the node's credentials for the running config, builds the TLS
// contexts (a TlsProvider) and hands them to the workers; watches the credential files and
// rebuilds when they change or a self-managed certificate is due for renewal, without a restart.
// Connections already open keep the contexts they started with.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <ugate/metrics.h>
#include <ugate/reactor.h>

#include "auth/tls_provider.h"
#include <ugate/config.h>

namespace ugate {

class TlsManager {
 public:
  /** Publish installs a provider on every worker (null: TLS unused). */
  using Publish = std::function<void(TlsProviderPtr)>;
  TlsManager(Reactor& r, Publish publish);
  ~TlsManager();

  /** Prepared: what a config needs, built but not installed. */
  struct Prepared {
    std::unique_ptr<auth::CredentialSource> source;
    std::optional<auth::NodeCredentials> creds;
    TlsProviderPtr provider;
    bool keepCredentials{false};  // the running source and credentials still apply (see prepare)
  };
  /**
   * prepare loads credentials (creating them on first use) and builds contexts for cfg. On a reload
   * whose config names the same credentials (CredentialSource::sameSettings) and whose files did
   * not change, it builds the contexts from the credentials in memory: no file I/O.
   */
  Result<Prepared> prepare(const Config& cfg);
  /** install publishes p's provider and watches its files for the running config cfg. */
  void install(ConfigPtr cfg, Prepared p);
  /** renderStats appends the TLS metrics (Prometheus text). */
  void renderStats(MetricsWriter& out) const;

 private:
  void onTimer();
  void logIdentity(const auth::NodeCredentials& c, const char* what) const;

  Reactor& reactor_;
  Publish publish_;
  ConfigPtr cfg_;
  Prepared cur_;
  TimerPtr timer_;
  // credsStale_: the last timer reload failed; cur_.source then watches the broken files, so it no
  // longer describes cur_.creds and a SIGHUP must read the files again (the operator's retry).
  bool credsStale_{false};
  uint64_t reloadsOk_{0};
  uint64_t reloadsFailed_{0};
};

}  // namespace ugate
