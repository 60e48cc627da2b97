#include "auth/identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/fs_check.h"

namespace ugate::auth {

namespace {

std::string join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Error ioError(const std::string& what, const std::string& path, int err) {
  return makeError(err == ENOENT ? Errc::NotFound : Errc::Io,
                   what + " " + path + ": " + std::strerror(err));
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "ugate";
  std::string h(buf);
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  return h;
}

CertSpec specOf(const IdentityOptions& o) {
  CertSpec s;
  s.name = o.name.empty() ? hostName() : o.name;
  s.trustDomain = o.trustDomain;
  s.ns = o.ns;
  s.validity = o.certValidity;
  return s;
}

// selfSignedNeedsRenewal: a self-managed certificate is re-issued when it nears expiry or when the
// configured names changed.
bool selfSignedNeedsRenewal(const CertInfo& info, const IdentityOptions& o) {
  CertSpec s = specOf(o);
  auto now = std::chrono::system_clock::now();
  if (info.notAfter - now < o.renewBefore) return true;
  if (info.dnsSans.size() != 1 || info.dnsSans[0] != certDnsName(s)) return true;
  std::string spiffe = certSpiffeId(s);
  bool hasSpiffe = !info.uriSans.empty() && info.uriSans[0] == spiffe;
  return spiffe.empty() ? !info.uriSans.empty() : !hasSpiffe;
}

Result<void> checkMatches(const NodeCredentials& c) {
  auto certs = splitPemCerts(c.certChainPem);
  if (certs.empty()) return makeError(Errc::InvalidArgument, c.source + ": no certificate");
  if (!certMatchesKey(certs[0], c.key)) {
    return makeError(Errc::InvalidArgument,
                     c.source + ": the certificate does not belong to the private key");
  }
  return {};
}

}  // namespace

Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError("cannot open", path, errno);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return ioError("cannot read", path, e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) {
      ::close(fd);
      return makeError(Errc::TooLarge, path + ": larger than 1 MiB");
    }
  }
  ::close(fd);
  return out;
}

Result<std::string> readPrivateFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ioError("cannot stat", path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return makeError(Errc::AuthFailed,
                     "refusing private key file " + path + " with mode " + mode +
                         ": it is accessible by group or others (run: chmod 600 " + path + ")");
  }
  return readFile(path);
}

Result<void> writeFileAtomic(const std::string& path, std::string_view content, unsigned mode) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ioError("cannot create", tmp, errno);
  ::fchmod(fd, mode);  // fchmod: the umask must not widen or narrow what was asked
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ioError("cannot write", tmp, e);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ioError("cannot sync", tmp, e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ioError("cannot rename to", path, e);
  }
  return {};
}

Result<void> ensurePrivateDir(const std::string& dir) {
  if (dir.empty()) return makeError(Errc::InvalidArgument, "no data directory given");
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return makeError(Errc::InvalidArgument, dir + " is not a directory");
    return {};
  }
  std::filesystem::path p(dir);
  if (p.has_parent_path() && !p.parent_path().empty()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) return makeError(Errc::Io, "cannot create " + p.parent_path().string() + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ioError("cannot create", dir, errno);
  ::chmod(dir.c_str(), 0700);
  return {};
}

Result<NodeCredentials> loadIstioDir(const std::string& dir) {
  NodeCredentials c;
  c.source = dir;
  auto keyPem = readPrivateFile(join(dir, kIstioKeyFile));
  if (!keyPem) return keyPem.error();
  auto key = PrivateKey::fromPem(*keyPem);
  if (!key) return makeError(key.error().code, join(dir, kIstioKeyFile) + ": " + key.error().detail);
  c.key = std::move(*key);
  auto chain = readFile(join(dir, kIstioCertFile));
  if (!chain) return chain.error();
  c.certChainPem = std::move(*chain);
  std::string rootPath = join(dir, kIstioRootFile);
  if (exists(rootPath)) {
    auto roots = readFile(rootPath);
    if (!roots) return roots.error();
    c.rootsPem = std::move(*roots);
  }
  if (auto r = checkMatches(c); !r) return r.error();
  return c;
}

Result<void> saveIstioDir(const std::string& dir, const NodeCredentials& creds) {
  if (auto r = ensurePrivateDir(dir); !r) return r;
  if (auto r = writeFileAtomic(join(dir, kIstioKeyFile), creds.key.toPem(), 0600); !r) return r;
  if (auto r = writeFileAtomic(join(dir, kIstioCertFile), creds.certChainPem, 0644); !r) return r;
  if (!creds.rootsPem.empty()) {
    if (auto r = writeFileAtomic(join(dir, kIstioRootFile), creds.rootsPem, 0644); !r) return r;
  }
  return {};
}

Result<NodeCredentials> loadOrCreateIdentity(const IdentityOptions& opts) {
  if (opts.dataDir.empty()) return makeError(Errc::InvalidArgument, "no data directory given");
  if (exists(join(opts.dataDir, kIstioKeyFile))) return loadIstioDir(opts.dataDir);

  std::string kubePath = join(opts.dataDir, kKubeconfigFile);
  NodeCredentials c;
  bool save = false;
  if (exists(kubePath)) {
    auto text = readPrivateFile(kubePath);
    if (!text) return text.error();
    auto parsed = kubeconfigFromJson(*text);
    if (!parsed) return makeError(parsed.error().code, kubePath + ": " + parsed.error().detail);
    c = std::move(*parsed);
  } else {
    if (!opts.create) return makeError(Errc::NotFound, "no identity in " + opts.dataDir);
    if (auto r = opts.dryRun ? checkCanCreateDir(opts.dataDir) : ensurePrivateDir(opts.dataDir); !r) {
      return r.error();
    }
    auto key = PrivateKey::generate();
    if (!key) return key.error();
    c.key = std::move(*key);
    save = true;
    c.created = true;
  }
  c.source = kubePath;

  // Self-managed certificates: create, rename or renew (a CA-issued one is left alone).
  auto certs = splitPemCerts(c.certChainPem);
  bool reissue = certs.empty();
  if (!reissue) {
    auto info = parseCertPem(certs[0]);
    if (!info) return makeError(Errc::InvalidArgument, kubePath + ": " + info.error().detail);
    reissue = info->selfSigned && certs.size() == 1 && selfSignedNeedsRenewal(*info, opts);
  }
  if (reissue) {
    auto cert = createSelfSignedCert(c.key, specOf(opts));
    if (!cert) return cert.error();
    c.certChainPem = std::move(*cert);
    save = true;
  }
  if (auto r = checkMatches(c); !r) return r.error();
  if (save && opts.dryRun) {
    if (auto r = checkCanCreateDir(opts.dataDir); !r) return r.error();
    c.planned = c.created ? "would create a new key and self-signed certificate in " + kubePath
                          : "would re-issue the self-signed certificate in " + kubePath + " (same key)";
  } else if (save) {
    if (auto r = writeFileAtomic(kubePath, kubeconfigToJson(c), 0600); !r) return r.error();
  }
  return c;
}

}  // namespace ugate::auth
