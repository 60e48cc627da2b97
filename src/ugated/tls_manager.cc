#include "ugated/tls_manager.h"

#include <spdlog/spdlog.h>

#include "auth/peer_verifier.h"

namespace ugate {

TlsManager::TlsManager(Reactor& r, Publish publish) : reactor_(r), publish_(std::move(publish)) {}

TlsManager::~TlsManager() = default;

Result<TlsManager::Prepared> TlsManager::prepare(const Config& cfg) {
  Prepared p;
  if (!cfg.usesTls()) return p;
  if (!credsStale_ && cur_.source && cur_.creds && cur_.source->sameSettings(cfg) && !cur_.source->changed()) {
    // The listeners' TLS settings may differ, so the contexts are rebuilt; the credentials are not.
    auto provider = auth::makeTlsProvider(cfg, *cur_.creds);
    if (!provider) return provider.error();
    p.provider = std::move(*provider);
    p.keepCredentials = true;
    return p;
  }
  p.source = std::make_unique<auth::CredentialSource>(cfg);
  auto creds = p.source->load();
  if (!creds) return creds.error();  // names the config key: tls.certDir, node.dataDir, tls.rootsFile
  auto provider = auth::makeTlsProvider(cfg, *creds);
  if (!provider) return provider.error();
  p.creds = std::move(*creds);
  p.provider = std::move(*provider);
  return p;
}

void TlsManager::logIdentity(const auth::NodeCredentials& c, const char* what) const {
  std::string expiry;
  auto certs = auth::splitPemCerts(c.certChainPem);
  if (!certs.empty()) {
    if (auto info = auth::parseCertPem(certs[0]); info) {
      auto left = std::chrono::duration_cast<std::chrono::hours>(info->notAfter - std::chrono::system_clock::now());
      expiry = ", certificate " + (info->uriSans.empty() ? info->subject : info->uriSans[0]) +
               (info->selfSigned ? " (self-signed)" : " issued by " + info->issuer) + ", expires in " +
               std::to_string(left.count()) + " h";
    }
  }
  spdlog::info("tls: {} node ID {} from {}{}{}", what, c.nodeId(), c.source, c.created ? " (new key)" : "",
               expiry);
}

void TlsManager::install(ConfigPtr cfg, Prepared p) {
  cfg_ = std::move(cfg);
  if (!p.keepCredentials) credsStale_ = false;  // loaded from the files just now
  if (p.keepCredentials) {
    p.source = std::move(cur_.source);
    p.creds = std::move(cur_.creds);
    spdlog::debug("tls: credentials unchanged, contexts rebuilt for the new config");
  } else if (p.creds) {
    logIdentity(*p.creds, "identity:");
  }
  cur_ = std::move(p);
  publish_(cur_.provider);
  if (!cur_.source) {
    timer_.reset();
    return;
  }
  if (!timer_) timer_ = reactor_.createTimer([this] { onTimer(); });
  timer_->enable(cfg_->tls.reloadInterval);
}

void TlsManager::onTimer() {
  timer_->enable(cfg_->tls.reloadInterval);
  if (!cur_.source || !cur_.source->changedAndSettled()) return;
  // Load into a fresh source so a failure leaves the running credentials and their watch alone.
  auto source = std::make_unique<auth::CredentialSource>(*cfg_);
  auto creds = source->load();
  Result<TlsProviderPtr> provider = creds ? auth::makeTlsProvider(*cfg_, *creds) : Result<TlsProviderPtr>(creds.error());
  if (!provider) {
    ++reloadsFailed_;
    // Do not retry every tick on the same broken files: wait until they change again, or a SIGHUP.
    cur_.source = std::move(source);
    credsStale_ = true;
    spdlog::error("tls: credentials in {} changed but cannot be used, keeping the running ones: {}",
                  cur_.source->describe(), provider.error().detail);
    return;
  }
  ++reloadsOk_;
  credsStale_ = false;
  logIdentity(*creds, "reloaded credentials:");
  cur_.source = std::move(source);
  cur_.creds = std::move(*creds);
  cur_.provider = std::move(*provider);
  publish_(cur_.provider);
}

void TlsManager::renderStats(MetricsWriter& m) const {
  auto c = auth::tlsCounters();
  m.family("ugate_tls_handshakes_total", "counter", "Completed TLS handshakes by side.");
  m.sample("ugate_tls_handshakes_total", {{"side", "server"}}, c.serverOk);
  m.sample("ugate_tls_handshakes_total", {{"side", "client"}}, c.clientOk);
  m.counter("ugate_tls_resumed_total", "TLS handshakes that resumed a session.", c.resumed);
  m.family("ugate_tls_handshake_failures_total", "counter", "Failed TLS handshakes by reason.");
  for (size_t i = 1; i < static_cast<size_t>(auth::AuthFailure::Count); ++i) {
    auto f = static_cast<auth::AuthFailure>(i);
    m.sample("ugate_tls_handshake_failures_total", {{"reason", auth::authFailureReason(f)}}, auth::authFailureCount(f));
  }
  m.family("ugate_tls_credential_reloads_total", "counter", "Credential reloads on file change or renewal.");
  m.sample("ugate_tls_credential_reloads_total", {{"result", "ok"}}, reloadsOk_);
  m.sample("ugate_tls_credential_reloads_total", {{"result", "error"}}, reloadsFailed_);
  if (cur_.creds) {
    auto certs = auth::splitPemCerts(cur_.creds->certChainPem);
    if (!certs.empty()) {
      if (auto info = auth::parseCertPem(certs[0]); info) {
        auto left = std::chrono::duration_cast<std::chrono::seconds>(info->notAfter - std::chrono::system_clock::now());
        m.family("ugate_tls_cert_expiry_seconds", "gauge", "Seconds until the node certificate expires.");
        m.sample("ugate_tls_cert_expiry_seconds", {{"node_id", cur_.creds->nodeId()}}, left.count());
      }
    }
  }
}

}  // namespace ugate
