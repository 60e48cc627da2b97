#include "auth/mesh_ca.h"

#include <sys/stat.h>

namespace ugate::auth {

namespace {
std::string join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

std::string trustDomainOf(const CertInfo& info) {
  static constexpr std::string_view kPrefix = "spiffe://";
  for (const auto& u : info.uriSans) {
    if (u.rfind(kPrefix, 0) == 0) {
      std::string td = u.substr(kPrefix.size());
      return td.substr(0, td.find('/'));
    }
  }
  return {};
}
}  // namespace

Result<MeshCa> initMeshCa(const CaInitOptions& opts) {
  if (opts.dir.empty()) return makeError(Errc::InvalidArgument, "no CA directory given");
  struct stat st;
  if (::stat(join(opts.dir, kCaKeyFile).c_str(), &st) == 0) {
    return makeError(Errc::AlreadyExists,
                     "a CA already exists in " + opts.dir + " (" + std::string(kCaKeyFile) + ")");
  }
  if (auto r = ensurePrivateDir(opts.dir); !r) return r.error();
  auto key = PrivateKey::generate();
  if (!key) return key.error();
  CertSpec spec;
  spec.name = opts.name;
  spec.trustDomain = opts.trustDomain;
  spec.validity = opts.validity;
  spec.isCa = true;
  auto cert = createSelfSignedCert(*key, spec);
  if (!cert) return cert.error();
  if (auto r = writeFileAtomic(join(opts.dir, kCaKeyFile), key->toPem(), 0600); !r) return r.error();
  if (auto r = writeFileAtomic(join(opts.dir, kCaCertFile), *cert, 0644); !r) return r.error();
  return MeshCa{std::move(*key), std::move(*cert), opts.trustDomain};
}

Result<MeshCa> loadMeshCa(const std::string& dir) {
  auto keyPem = readPrivateFile(join(dir, kCaKeyFile));
  if (!keyPem) return keyPem.error();
  auto key = PrivateKey::fromPem(*keyPem);
  if (!key) return makeError(key.error().code, join(dir, kCaKeyFile) + ": " + key.error().detail);
  auto certPem = readFile(join(dir, kCaCertFile));
  if (!certPem) return certPem.error();
  auto info = parseCertPem(*certPem);
  if (!info) return makeError(Errc::InvalidArgument, join(dir, kCaCertFile) + ": " + info.error().detail);
  if (!info->isCa) return makeError(Errc::InvalidArgument, join(dir, kCaCertFile) + ": not a CA certificate");
  if (info->publicKey != key->publicKey()) {
    return makeError(Errc::InvalidArgument, dir + ": the CA key does not match the CA certificate");
  }
  return MeshCa{std::move(*key), std::move(*certPem), trustDomainOf(*info)};
}

Result<NodeCredentials> issueNodeCredentials(const MeshCa& ca, const IssueOptions& opts,
                                             PrivateKey key) {
  if (!key.valid()) {
    auto k = PrivateKey::generate();
    if (!k) return k.error();
    key = std::move(*k);
  }
  CertSpec spec;
  spec.name = opts.name;
  spec.ns = opts.ns;
  spec.trustDomain = opts.trustDomain.empty() ? ca.trustDomain : opts.trustDomain;
  spec.validity = opts.validity;
  spec.notBefore = opts.notBefore;
  auto leaf = createSignedCert(key.publicKey(), spec, ca.key, ca.certPem);
  if (!leaf) return leaf.error();
  NodeCredentials c;
  c.key = std::move(key);
  c.certChainPem = *leaf + ca.certPem;
  c.rootsPem = ca.certPem;
  c.source = "issued";
  return c;
}

}  // namespace ugate::auth
