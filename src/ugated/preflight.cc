#include "ugated/preflight.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "auth/tls_provider.h"
#include "core/fs_check.h"
#include "core/port_holders.h"
#include <ugate/socket_util.h>

namespace ugate {

namespace {

// realPath: the canonical form of path (relative to cwd when given and path is relative); "" when
// it does not resolve.
std::string realPath(const std::string& path, const std::string& cwd = "") {
  const std::string p = path.empty() || path[0] == '/' || cwd.empty() ? path : cwd + "/" + path;
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

// configOf: the config file ugated process h runs (-c/--config), canonical; "" for another program.
std::string configOf(const PortHolder& h) {
  if (h.argv.empty() || h.argv[0].substr(h.argv[0].find_last_of('/') + 1) != "ugated") return "";
  for (size_t i = 1; i < h.argv.size(); ++i) {
    const std::string& a = h.argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < h.argv.size()) return realPath(h.argv[i + 1], h.cwd);
    if (a.rfind("--config=", 0) == 0) return realPath(a.substr(9), h.cwd);
  }
  return "";
}

// AddressCheck: whether an address can be bound; if not, why.
struct AddressCheck {
  std::string error;                // empty: it can be bound
  bool inUse{false};                // another process holds it
  std::vector<PortHolder> holders;  // the holders /proc shows (all of them unless `hidden`)
  bool hidden{false};
};

AddressCheck checkAddress(const SocketAddress& a, bool datagram, bool share,
                          const std::function<Result<void>(int)>& beforeBind) {
  AddressCheck out;
  if (a.port() == 0) return out;  // any free port: nothing to probe
  // A shared UDP address is not probed: a UDP socket joins the SO_REUSEPORT group at bind, so even
  // a probe would take a share of the other process's datagrams until it closes.
  if (share && datagram) return out;
  BindProbe p = probeBind(a, datagram, /*reusePort=*/share, beforeBind);
  if (p.ok()) return out;
  if (p.err != EADDRINUSE) {
    out.error = p.error.detail;
    return out;
  }
  PortUse use = findPortUse(a, datagram);
  if (use.self && !use.others) return out;  // this process alone: a reload binds beside its sockets
  if (!use.self && !use.others) {           // no listening socket there: a connection's local port
    out.error = a.str() + " is already in use by a socket that is not listening (a connection whose local "
                "port it is? keep listen ports out of net.ipv4.ip_local_port_range)";
    return out;
  }
  out.inUse = true;
  out.holders = use.holders;
  out.hidden = use.hidden || use.holders.empty();
  std::string who;
  for (const auto& h : use.holders) who += (who.empty() ? "" : "; ") + h.describe();
  out.error = a.str() + (datagram ? " (udp)" : "") + " is already in use by another process" +
              (who.empty() ? "" : " (" + who + ")");
  if (share) out.error += ", which sharePort cannot join (it must be of this user and set SO_REUSEPORT)";
  return out;
}

// record turns a check into an error, or (check-config of the file the holder runs) a note.
void record(Findings& out, const std::string& label, const AddressCheck& c, const std::string& checkedFile) {
  if (c.error.empty()) return;
  if (c.inUse && !checkedFile.empty() && !c.hidden) {
    bool allRunThisFile = true;
    std::string who;
    for (const auto& h : c.holders) {
      allRunThisFile = allRunThisFile && configOf(h) == checkedFile;
      who += (who.empty() ? "" : ", ") + std::to_string(h.pid);
    }
    if (allRunThisFile) {
      out.notes.push_back(label + ": held by ugated (pid " + who +
                          ") running this file: a SIGHUP reload keeps it; a second instance would not start");
      return;
    }
  }
  out.errors.push_back(label + ": " + c.error);
  ++out.bindErrors;
}

void checkListener(const Config& cfg, const ListenerConfig& l, Findings& out, const std::string& checkedFile) {
  std::function<Result<void>(int)> configure;
  if (l.spec && l.spec->configureListenSocket) {
    configure = [&l](int fd) { return l.spec->configureListenSocket(fd, l); };
  }
  const bool datagram = l.spec && l.spec->datagram;
  record(out, listenerLabel(cfg, l), checkAddress(l.address, datagram, l.sharePort, configure), checkedFile);
}

void checkAccessLog(const Config& c, Findings& out) {
  const std::string& p = c.log.accessLog;
  if (p.empty() || p == "-") return;
  if (auto r = checkCanAppend(p); !r) out.errors.push_back("log.accessLog: " + r.error().detail);
}

// checkCredentials loads the credentials as startup would, in a dry run (nothing is created or
// re-issued on disk), and builds every TLS context the config needs from them.
void checkCredentials(const Config& c, Findings& out) {
  if (!c.usesTls()) return;
  auth::CredentialSource source(c);
  auto creds = source.load(/*dryRun=*/true);
  if (!creds) {
    out.addError(creds.error().detail);
    return;
  }
  if (!creds->planned.empty()) out.notes.push_back("node.dataDir: startup " + creds->planned);
  if (auto p = auth::makeTlsProvider(c, *creds); !p) out.addError(p.error().detail);
}

// printReport prints what runCheckConfig found: the file name once, then one line per finding.
int printReport(const std::string& path, const Findings& f, const std::string& okSummary) {
  // Errors of reading or of JSON syntax start with the file name, which the header already says.
  auto strip = [&path](const std::string& line) {
    return line.rfind(path + ": ", 0) == 0 ? line.substr(path.size() + 2) : line;
  };
  if (f.errors.empty()) {
    printf("%s: ok (%s)\n", path.c_str(), okSummary.c_str());
    for (const auto& n : f.notes) printf("  note: %s\n", n.c_str());
    return 0;
  }
  const size_t n = f.errors.size();
  fprintf(stderr, "%s: %zu error%s\n", path.c_str(), n, n == 1 ? "" : "s");
  for (const auto& e : f.errors) fprintf(stderr, "  %s\n", strip(e).c_str());
  for (const auto& note : f.notes) fprintf(stderr, "  note: %s\n", note.c_str());
  return 2;
}

}  // namespace

void Findings::addError(const std::string& detail) {
  const size_t before = errors.size();
  size_t start = 0;
  while (start <= detail.size()) {
    size_t end = detail.find('\n', start);
    if (end == std::string::npos) end = detail.size();
    if (end > start) errors.push_back(detail.substr(start, end - start));
    start = end + 1;
  }
  if (errors.size() == before) errors.push_back("(an error without a description)");  // still an error
}

std::string listenerLabel(const Config& cfg, const ListenerConfig& l) {
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    if (cfg.listeners[i].name == l.name) return "listeners[" + std::to_string(i) + "] '" + l.name + "'";
  }
  return "listener '" + l.name + "'";
}

void checkAddresses(const Config& cfg, Findings& out, const std::string& checkedFile, const Config* running) {
  for (const auto& l : cfg.listeners) {
    if (!keepsSockets(running, l)) checkListener(cfg, l, out, checkedFile);
  }
  if (cfg.admin.enabled && !running) {
    record(out, "admin.address", checkAddress(cfg.admin.address, false, false, nullptr), checkedFile);
  }
  if (cfg.health.enabled && !running) {
    record(out, "health.address", checkAddress(cfg.health.address, false, false, nullptr), checkedFile);
  }
}

int runCheckConfig(const std::string& path) {
  Findings f;
  auto cfg = loadConfigFile(path, ConfigDefaults::fromEnvironment());
  if (!cfg) {
    f.addError(cfg.error().detail);
    if (cfg.error().code != Errc::NotFound) {
      f.notes.push_back("credentials, log paths and listen addresses are checked once these are fixed");
    }
    return printReport(path, f, "");
  }
  const Config& c = **cfg;
  checkAccessLog(c, f);
  checkCredentials(c, f);
  checkAddresses(c, f, realPath(path));
  return printReport(path, f,
                     std::to_string(c.listeners.size()) + " listeners, " + std::to_string(c.routes.size()) + " routes");
}

}  // namespace ugate
