#include "auth/cli.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "auth/file_owner.h"
#include "auth/identity.h"
#include "auth/mesh_ca.h"

namespace ugate::auth {

namespace {

constexpr int kOk = 0;
constexpr int kFail = 1;
constexpr int kUsage = 2;

constexpr const char* kIdUsage =
    "usage: ugated id --data-dir DIR [--cert] [--name NAME] [--trust-domain DOMAIN]"
    " [--namespace NS]\n"
    "                 [--owner USER[:GROUP]]\n"
    "  Prints this node's ID (base32 SHA-256 of its P-256 public key) on the first line, creating\n"
    "  the key and a self-signed certificate in DIR when absent. --cert also prints the node\n"
    "  certificate (PEM). --owner gives DIR and its identity files to USER (and GROUP, default\n"
    "  USER's login group), modes kept (0700, 0600), so ugated running as USER can read them;\n"
    "  only root can do that. Without --owner, root writing into a DIR that another user owns\n"
    "  gives the files to DIR's owner.\n";

constexpr const char* kCaUsage =
    "usage: ugated ca init --dir DIR [--trust-domain DOMAIN] [--validity DURATION]\n"
    "       ugated ca issue --dir DIR --name NAME --out DIR2 [--namespace NS]\n"
    "                       [--trust-domain DOMAIN] [--validity DURATION] [--owner USER[:GROUP]]\n"
    "  init creates a mesh CA (ca-key.pem, ca-cert.pem) in DIR.\n"
    "  issue signs a certificate for node NAME and writes key.pem, cert-chain.pem and\n"
    "  root-cert.pem to DIR2 (an existing key in DIR2 is kept, so the node ID does not change).\n"
    "  --owner gives DIR2 and those files to USER (and GROUP, default USER's login group), modes\n"
    "  kept (0700, 0600), so ugated running as USER can read its key; only root can do that.\n"
    "  Without --owner, root writing into a DIR2 that another user owns gives the files to DIR2's\n"
    "  owner (a re-issue keeps the service user's key readable).\n"
    "  DURATION is a number with a unit: s, m, h or d (e.g. 90d).\n";

// Args: --flag VALUE / --flag=VALUE options and boolean switches, parsed against a whitelist.
struct Args {
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
  std::string error;
  bool help{false};
};

Args parseArgs(int argc, char** argv, int first, const std::set<std::string>& valueFlags,
               const std::set<std::string>& switchFlags) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      a.help = true;
      continue;
    }
    std::string value;
    bool inlineValue = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      inlineValue = true;
    }
    if (switchFlags.count(arg) && !inlineValue) {
      a.switches.insert(arg);
    } else if (valueFlags.count(arg)) {
      if (!inlineValue) {
        if (i + 1 >= argc) {
          a.error = arg + " needs a value";
          return a;
        }
        value = argv[++i];
      }
      if (value.empty()) {
        a.error = arg + " needs a non-empty value";
        return a;
      }
      a.values[arg] = value;
    } else {
      a.error = "unknown argument '" + std::string(argv[i]) + "'";
      return a;
    }
  }
  return a;
}

std::string get(const Args& a, const std::string& k, std::string def = {}) {
  auto it = a.values.find(k);
  return it == a.values.end() ? def : it->second;
}

std::optional<std::chrono::seconds> parseDuration(const std::string& s) {
  if (s.size() < 2) return std::nullopt;
  char unit = s.back();
  std::string num = s.substr(0, s.size() - 1);
  if (num.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  long long n = std::atoll(num.c_str());
  if (n <= 0 || n > 100LL * 365 * 24 * 3600) return std::nullopt;
  switch (unit) {
    case 's': return std::chrono::seconds(n);
    case 'm': return std::chrono::seconds(n * 60);
    case 'h': return std::chrono::seconds(n * 3600);
    case 'd': return std::chrono::seconds(n * 86400);
    default: return std::nullopt;
  }
}

int usage(const char* text, const std::string& error) {
  if (!error.empty()) std::cerr << "error: " << error << "\n";
  std::cerr << text;
  return kUsage;
}

int fail(const Error& e) {
  std::cerr << "error: " << e.detail << "\n";
  return kFail;
}

// ownerOf resolves --owner and checks that this process may chown to it, so that a refusal comes
// before any file is written. Without --owner, root writing into a directory another user owns
// (a re-issue into the service user's directory) keeps that user as the owner.
Result<std::optional<FileOwner>> ownerOf(const Args& a, const std::string& dir) {
  if (!a.values.count("--owner")) return inheritedOwner(dir);
  auto owner = parseFileOwner(get(a, "--owner"));
  if (!owner) return owner.error();
  if (auto r = checkCanChown(*owner); !r) return r.error();
  return std::optional<FileOwner>(std::move(*owner));
}

// giveTo hands dir and its identity files to owner (when given) and says so on stderr.
Result<void> giveTo(const std::optional<FileOwner>& owner, const std::string& dir) {
  if (!owner) return {};
  auto changed = chownIdentityDir(dir, *owner);
  if (!changed) return changed.error();
  const size_t files = changed->size() - 1;
  std::cerr << "gave " << dir << " and " << files << (files == 1 ? " file" : " files")
            << " in it to " << owner->name << " (uid " << owner->uid << ", gid " << owner->gid
            << ")\n";
  return {};
}

int caInit(const Args& a) {
  CaInitOptions o;
  o.dir = get(a, "--dir");
  o.trustDomain = get(a, "--trust-domain");
  if (a.values.count("--validity")) {
    auto d = parseDuration(get(a, "--validity"));
    if (!d) return usage(kCaUsage, "bad --validity '" + get(a, "--validity") + "'");
    o.validity = *d;
  }
  auto ca = initMeshCa(o);
  if (!ca) return fail(ca.error());
  std::cout << "created mesh CA in " << o.dir
            << (o.trustDomain.empty() ? std::string() : " for trust domain " + o.trustDomain)
            << "\n";
  return kOk;
}

int caIssue(const Args& a) {
  auto owner = ownerOf(a, get(a, "--out"));
  if (!owner) return fail(owner.error());
  auto ca = loadMeshCa(get(a, "--dir"));
  if (!ca) return fail(ca.error());
  IssueOptions o;
  o.name = get(a, "--name");
  o.ns = get(a, "--namespace", "default");
  o.trustDomain = get(a, "--trust-domain");
  if (a.values.count("--validity")) {
    auto d = parseDuration(get(a, "--validity"));
    if (!d) return usage(kCaUsage, "bad --validity '" + get(a, "--validity") + "'");
    o.validity = *d;
  }
  std::string out = get(a, "--out");
  // Keep an existing node key so its ID survives a re-issue.
  PrivateKey key;
  IdentityOptions io;
  io.dataDir = out;
  io.create = false;
  io.name = o.name;
  if (auto existing = loadOrCreateIdentity(io)) {
    key = existing->key;
  } else if (existing.error().code != Errc::NotFound) {
    return fail(existing.error());
  }
  auto creds = issueNodeCredentials(*ca, o, key);
  if (!creds) return fail(creds.error());
  if (auto r = saveIstioDir(out, *creds); !r) return fail(r.error());
  std::cout << creds->nodeId() << std::endl;
  if (auto r = giveTo(*owner, out); !r) return fail(r.error());
  return kOk;
}

}  // namespace

int runIdCommand(int argc, char** argv) {
  Args a = parseArgs(argc, argv, 1,
                     {"--data-dir", "--name", "--trust-domain", "--namespace", "--owner"}, {"--cert"});
  if (a.help) {
    std::cout << kIdUsage;
    return kOk;
  }
  if (!a.error.empty()) return usage(kIdUsage, a.error);
  if (!a.values.count("--data-dir")) return usage(kIdUsage, "--data-dir is required");
  IdentityOptions o;
  o.dataDir = get(a, "--data-dir");
  o.name = get(a, "--name");
  o.trustDomain = get(a, "--trust-domain");
  o.ns = get(a, "--namespace", "default");
  auto owner = ownerOf(a, o.dataDir);
  if (!owner) return fail(owner.error());
  auto creds = loadOrCreateIdentity(o);
  if (!creds) return fail(creds.error());
  if (creds->created) std::cerr << "created a new node identity in " << o.dataDir << "\n";
  std::cout << creds->nodeId() << "\n";
  if (a.switches.count("--cert")) {
    auto certs = splitPemCerts(creds->certChainPem);
    if (!certs.empty()) std::cout << certs[0];
  }
  std::cout.flush();
  if (auto r = giveTo(*owner, o.dataDir); !r) return fail(r.error());
  return kOk;
}

int runCaCommand(int argc, char** argv) {
  if (argc < 2) return usage(kCaUsage, "missing subcommand (init or issue)");
  std::string sub = argv[1];
  if (sub == "-h" || sub == "--help") {
    std::cout << kCaUsage;
    return kOk;
  }
  if (sub == "init") {
    Args a = parseArgs(argc, argv, 2, {"--dir", "--trust-domain", "--validity"}, {});
    if (a.help) {
      std::cout << kCaUsage;
      return kOk;
    }
    if (!a.error.empty()) return usage(kCaUsage, a.error);
    if (!a.values.count("--dir")) return usage(kCaUsage, "ca init: --dir is required");
    return caInit(a);
  }
  if (sub == "issue") {
    Args a = parseArgs(argc, argv, 2,
                       {"--dir", "--name", "--out", "--namespace", "--trust-domain", "--validity",
                        "--owner"},
                       {});
    if (a.help) {
      std::cout << kCaUsage;
      return kOk;
    }
    if (!a.error.empty()) return usage(kCaUsage, a.error);
    for (const char* req : {"--dir", "--name", "--out"}) {
      if (!a.values.count(req)) return usage(kCaUsage, std::string("ca issue: ") + req + " is required");
    }
    return caIssue(a);
  }
  return usage(kCaUsage, "unknown ca subcommand '" + sub + "' (want init or issue)");
}

}  // namespace ugate::auth
