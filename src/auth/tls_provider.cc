#include "auth/tls_provider.h"

#include <sys/stat.h>

#include <atomic>
#include <map>

#include "auth/tls_stream.h"

namespace ugate::auth {

namespace {

std::atomic<uint64_t> gServerOk{0};
std::atomic<uint64_t> gClientOk{0};
std::atomic<uint64_t> gResumed{0};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + ",";
  return out;
}

// Contexts are keyed by the settings that shape them, not by config pointers, so a provider serves
// any config snapshot with the same settings (sessions and reloads need not be in lock step).
std::string serverKey(const ListenerTlsConfig& t) {
  return std::string(t.requireClientCert ? "m|" : "s|") + join(t.alpn);
}
std::string clientKey(const UpstreamTlsConfig& t) {
  return join(t.peerIds) + "|" + join(t.alpn) + (t.insecureSkipVerify ? "|insecure" : "");
}

TlsOutcome toOutcome(const TlsHandshakeInfo& i, bool server) {
  TlsOutcome o;
  o.ok = i.ok();
  if (!o.ok) {
    o.failure = std::string(authFailureReason(i.failure));
    o.detail = i.detail;
    o.timedOut = i.failure == AuthFailure::Timeout;
    return o;
  }
  (server ? gServerOk : gClientOk).fetch_add(1, std::memory_order_relaxed);
  if (i.resumed) gResumed.fetch_add(1, std::memory_order_relaxed);
  if (i.peerAuthenticated) o.peer = std::make_unique<PeerIdentity>(i.peer);
  o.alpn = i.alpn;
  o.sni = i.sni;
  o.version = i.version;
  o.resumed = i.resumed;
  return o;
}

/** SessionAdapter: an auth::TlsSsl as the contract's TlsSession. */
class SessionAdapter final : public TlsSession {
 public:
  SessionAdapter(std::unique_ptr<TlsSsl> ssl, bool server) : ssl_(std::move(ssl)), server_(server) {}
  void* nativeHandle() override { return ssl_->native(); }
  TlsOutcome finish() override { return toOutcome(ssl_->finish(), server_); }
  std::string failureDetail() override { return ssl_->failureDetail(); }

 private:
  std::unique_ptr<TlsSsl> ssl_;
  bool server_;
};

class Provider final : public TlsProvider {
 public:
  explicit Provider(std::string nodeId) : nodeId_(std::move(nodeId)) {}

  HandshakingStreamPtr server(const ListenerTlsConfig& cfg, StreamPtr inner, Reactor& r, Duration timeout,
                              Done done) const override {
    auto it = servers_.find(serverKey(cfg));
    if (it == servers_.end()) return nullptr;
    TlsStreamOptions o;
    o.reactor = &r;
    o.handshakeTimeout = timeout;
    o.onHandshake = [done = std::move(done)](const TlsHandshakeInfo& i) { done(toOutcome(i, true)); };
    return TlsStream::create(std::move(inner), it->second, std::move(o));
  }

  HandshakingStreamPtr client(const UpstreamTlsConfig& cfg, std::string_view sni, std::string_view sessionKey,
                              StreamPtr inner, Reactor& r, Duration timeout, Done done) const override {
    auto it = clients_.find(clientKey(cfg));
    if (it == clients_.end()) return nullptr;
    TlsStreamOptions o;
    o.sni = std::string(sni);
    o.sessionKey = std::string(sessionKey);
    o.reactor = &r;
    o.handshakeTimeout = timeout;
    o.onHandshake = [done = std::move(done)](const TlsHandshakeInfo& i) { done(toOutcome(i, false)); };
    return TlsStream::create(std::move(inner), it->second, std::move(o));
  }

  TlsSessionPtr serverSession(const ListenerTlsConfig& cfg) const override {
    auto it = servers_.find(serverKey(cfg));
    if (it == servers_.end()) return nullptr;
    auto ssl = TlsSsl::create(it->second, "", "");
    if (!ssl) return nullptr;
    return std::make_unique<SessionAdapter>(std::move(ssl), true);
  }

  TlsSessionPtr clientSession(const UpstreamTlsConfig& cfg, std::string_view sni,
                              std::string_view sessionKey) const override {
    auto it = clients_.find(clientKey(cfg));
    if (it == clients_.end()) return nullptr;
    auto ssl = TlsSsl::create(it->second, std::string(sni), std::string(sessionKey));
    if (!ssl) return nullptr;
    return std::make_unique<SessionAdapter>(std::move(ssl), false);
  }

  const std::string& nodeId() const override { return nodeId_; }

  std::string nodeId_;
  std::map<std::string, TlsContextPtr> servers_;
  std::map<std::string, TlsContextPtr> clients_;
};

std::string stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return path + ":-;";
  return path + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
}

}  // namespace

TlsCounters tlsCounters() {
  return {gServerOk.load(std::memory_order_relaxed), gClientOk.load(std::memory_order_relaxed),
          gResumed.load(std::memory_order_relaxed)};
}

CredentialSource::CredentialSource(const Config& cfg) {
  opts_.dataDir = cfg.node.dataDir;
  opts_.name = cfg.node.name;
  opts_.trustDomain = cfg.node.trustDomain;
  opts_.ns = cfg.tls.ns;
  opts_.certValidity = std::chrono::duration_cast<std::chrono::seconds>(cfg.tls.certValidity);
  opts_.renewBefore = std::chrono::duration_cast<std::chrono::seconds>(cfg.tls.renewBefore);
  certDir_ = cfg.tls.certDir;
  rootsFile_ = cfg.tls.rootsFile;
  where_ = certDir_.empty() ? opts_.dataDir : certDir_;
}

bool CredentialSource::sameSettings(const Config& cfg) const {
  CredentialSource o(cfg);
  return o.opts_.dataDir == opts_.dataDir && o.opts_.name == opts_.name &&
         o.opts_.trustDomain == opts_.trustDomain && o.opts_.ns == opts_.ns &&
         o.opts_.certValidity == opts_.certValidity && o.opts_.renewBefore == opts_.renewBefore &&
         o.certDir_ == certDir_ && o.rootsFile_ == rootsFile_;
}

std::string CredentialSource::fingerprint() const {
  std::string fp;
  const std::string& dir = certDir_.empty() ? opts_.dataDir : certDir_;
  for (std::string_view f : {kIstioKeyFile, kIstioCertFile, kIstioRootFile, kKubeconfigFile}) {
    fp += stamp(dir + "/" + std::string(f));
  }
  if (!rootsFile_.empty()) fp += stamp(rootsFile_);
  return fp;
}

bool CredentialSource::changed() const {
  return fingerprint() != fingerprint_ || std::chrono::system_clock::now() >= renewAt_;
}

bool CredentialSource::changedAndSettled() {
  if (std::chrono::system_clock::now() >= renewAt_) return true;
  std::string now = fingerprint();
  if (now == fingerprint_) {
    seen_.clear();
    return false;
  }
  const bool settled = now == seen_;
  seen_ = std::move(now);
  return settled;
}

Result<NodeCredentials> CredentialSource::load(bool dryRun) {
  // Stamp the files before reading them: a change made while we read shows up at the next check,
  // and files that fail to load are not retried until they change again.
  fingerprint_ = fingerprint();
  renewAt_ = SystemTime::max();
  IdentityOptions opts = opts_;
  opts.dryRun = dryRun;
  Result<NodeCredentials> c = certDir_.empty() ? loadOrCreateIdentity(opts) : loadIstioDir(certDir_);
  if (!c) return makeError(c.error().code, (certDir_.empty() ? "node.dataDir: " : "tls.certDir: ") + c.error().detail);
  if (!rootsFile_.empty()) {
    auto roots = readFile(rootsFile_);
    if (!roots) return makeError(roots.error().code, "tls.rootsFile: " + roots.error().detail);
    if (splitPemCerts(*roots).empty()) {
      return makeError(Errc::InvalidArgument, "tls.rootsFile: " + rootsFile_ + " holds no PEM certificate");
    }
    if (!c->rootsPem.empty() && c->rootsPem.back() != '\n') c->rootsPem += '\n';
    c->rootsPem += *roots;
  }
  // A self-managed certificate (self-signed, in dataDir) is renewed by loadOrCreateIdentity when due:
  // remember when that will be.
  auto certs = splitPemCerts(c->certChainPem);
  if (certDir_.empty() && certs.size() == 1) {
    auto info = parseCertPem(certs[0]);
    if (info && info->selfSigned) {
      renewAt_ = info->notAfter - std::chrono::duration_cast<SystemTime::duration>(opts_.renewBefore);
    }
  }
  if (c->created || renewAt_ != SystemTime::max()) fingerprint_ = fingerprint();  // we may have written
  return c;
}

Result<TlsProviderPtr> makeTlsProvider(const Config& cfg, const NodeCredentials& creds) {
  auto p = std::make_shared<Provider>(creds.nodeId());
  const std::string keyPem = creds.key.toPem();
  PeerVerifyConfig trust;
  trust.rootsPem = creds.rootsPem;
  trust.trustDomain = cfg.tls.requireTrustDomain ? cfg.node.trustDomain : "";
  trust.pinnedIds = cfg.tls.trustedIds;
  // Modules' pins (the mesh: nodes allowed to register, the gateways we associate with).
  for (const auto& id : cfg.fromModules.trustedIds) trust.pinnedIds.push_back(id);
  const bool haveTrust = !trust.rootsPem.empty() || !trust.pinnedIds.empty();
  PeerVerifierPtr trustVerifier;
  if (haveTrust) {
    auto v = PeerVerifier::create(trust);
    if (!v) return makeError(v.error().code, "tls: trusted roots: " + v.error().detail);
    trustVerifier = *v;
  }
  const char* nothingToTrust =
      "nothing to trust: set tls.trustedIds (node IDs) or tls.rootsFile, or use CA-issued credentials "
      "with a root-cert.pem";

  std::string errors;  // every problem found, one per line (once: settings may repeat)
  auto addError = [&errors](const Error& e) {
    if (("\n" + errors + "\n").find("\n" + e.detail + "\n") == std::string::npos) {
      errors += (errors.empty() ? "" : "\n") + e.detail;
    }
  };
  auto addServer = [&](const ListenerTlsConfig& t, const std::string& path) {
    std::string key = serverKey(t);
    if (p->servers_.count(key)) return;
    if (t.requireClientCert && !haveTrust) {
      addError(makeError(Errc::InvalidArgument, path + ": mutual TLS but " + nothingToTrust));
      return;
    }
    TlsContextConfig c;
    c.server = true;
    c.certChainPem = creds.certChainPem;
    c.keyPem = keyPem;
    if (t.requireClientCert) c.verifier = trustVerifier;
    c.requirePeerCert = t.requireClientCert;
    c.alpn = t.alpn;
    c.tls13Only = true;
    auto ctx = TlsContext::create(std::move(c));
    if (!ctx) {
      addError(makeError(ctx.error().code, path + ": " + ctx.error().detail));
      return;
    }
    p->servers_.emplace(std::move(key), *ctx);
  };
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    if (cfg.listeners[i].tls) addServer(*cfg.listeners[i].tls, "listeners[" + std::to_string(i) + "].tls");
  }
  for (const auto& t : cfg.fromModules.serverTls) addServer(t.tls, t.path);

  auto addClient = [&](const UpstreamTlsConfig& t, const std::string& path) -> Result<void> {
    std::string key = clientKey(t);
    if (p->clients_.count(key)) return {};
    TlsContextConfig c;
    c.server = false;
    c.certChainPem = creds.certChainPem;
    c.keyPem = keyPem;
    if (t.insecureSkipVerify) {
      // Explicitly configured: any certificate is accepted (its identity is still recorded).
      PeerVerifyConfig any;
      any.acceptAny = true;
      auto v = PeerVerifier::create(any);
      if (!v) return makeError(v.error().code, path + ".insecureSkipVerify: " + v.error().detail);
      c.verifier = *v;
    } else if (!t.peerIds.empty()) {
      PeerVerifyConfig pin;
      pin.pinnedIds = t.peerIds;
      auto v = PeerVerifier::create(pin);
      if (!v) return makeError(v.error().code, path + ".peerIds: " + v.error().detail);
      c.verifier = *v;
    } else if (haveTrust) {
      c.verifier = trustVerifier;
    } else {
      return makeError(Errc::InvalidArgument, path + ": cannot verify the server: set peerIds, or " +
                                                  nothingToTrust);
    }
    c.alpn = t.alpn;
    c.tls13Only = true;
    auto ctx = TlsContext::create(std::move(c));
    if (!ctx) return makeError(ctx.error().code, path + ": " + ctx.error().detail);
    p->clients_.emplace(std::move(key), *ctx);
    return {};
  };
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    if (!cfg.listeners[i].upstreamTls) continue;
    auto r = addClient(*cfg.listeners[i].upstreamTls, "listeners[" + std::to_string(i) + "].upstreamTls");
    if (!r) addError(r.error());
  }
  for (size_t i = 0; i < cfg.routes.size(); ++i) {
    if (!cfg.routes[i].upstreamTls) continue;
    auto r = addClient(*cfg.routes[i].upstreamTls, "routes[" + std::to_string(i) + "].upstreamTls");
    if (!r) addError(r.error());
  }
  for (const auto& t : cfg.fromModules.clientTls) {
    if (t.optional && t.tls.peerIds.empty() && !haveTrust) continue;
    auto r = addClient(t.tls, t.path);
    if (!r) addError(r.error());
  }
  if (!errors.empty()) return makeError(Errc::InvalidArgument, errors);
  return TlsProviderPtr(std::move(p));
}

}  // namespace ugate::auth
