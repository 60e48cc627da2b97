#include "iptables/iptables_cli.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <functional>
#include <map>

#include "iptables/policy_route.h"

namespace ugate::iptables {

namespace {

constexpr const char* kUsage = R"(usage: ugated iptables print|apply|clean [options]

Istio-compatible traffic capture for ugated as a sidecar or host proxy (docs/SIDECAR.md).
  print  show the rules (iptables-restore input per family) and the policy routing; touches nothing
  apply  install them: one iptables-restore --noflush transaction per family, so each family
         changes atomically; applying again replaces the earlier rules (apply twice = apply once)
  clean  remove exactly what apply installs (chains ISTIO_*, their jumps, the tproxy marks, the
         policy route and ::6 on lo); other rules are left alone
apply and clean need CAP_NET_ADMIN in the network namespace (e.g. `ip netns exec NS ugated ...`).

options (the istio-iptables flag each one corresponds to in brackets):
  --mode redirect|tproxy        inbound capture by REDIRECT (nat) or TPROXY (mangle, marks and a
                                policy route); outbound is always REDIRECT      [-m]  redirect
  --proxy-port PORT             outbound capture port                            [-p]  15001
  --inbound-capture-port PORT   inbound capture port                             [-z]  15006
  --tunnel-port PORT            mesh mTLS port, never captured inbound                 15008
  --proxy-uid LIST              uids whose traffic is never captured ('' none)   [-u]  1337
  --proxy-gid LIST              gids whose traffic is never captured ('' none)   [-g]  1337
  --mark N                      SO_MARK of ugated's upstream sockets, never captured (0: no such
                                rule); in tproxy mode also the mark of diverted packets [-t] 1337
  --route-table N               tproxy: table of `local default dev lo`          [-r]  133
  --inbound-ports LIST|*        inbound ports to capture ('' none)               [-b]  *
  --exclude-inbound-ports LIST  with '*': inbound ports left alone               [-d]
                                (default 15000,15020,15021,15090; the tunnel port always)
  --outbound-cidrs LIST|*       destinations to capture ('' none)                [-i]  *
  --exclude-outbound-cidrs LIST destinations never captured                      [-x]
  --outbound-ports LIST         ports captured whatever the destination          [-q]
  --exclude-outbound-ports LIST ports never captured                             [-o]
  --family both|ipv4|ipv6       families to handle; with both, IPv6 is skipped when the kernel
                                has no IPv6                                             both
  --backend auto|nft|legacy     iptables backend; auto picks the one that already holds rules,
                                else the one `iptables` uses                            auto
LISTs are comma separated; ports may be ranges LO:HI; CIDRs of both families may be mixed.
Use the same options for clean as for apply (marks and owners identify the tproxy rules).
)";

constexpr int kOk = 0;
constexpr int kFail = 1;
constexpr int kUsageError = 2;

Result<uint32_t> number(std::string_view flag, std::string_view v, uint32_t lo, uint32_t hi) {
  uint32_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) {
    return makeError(Errc::InvalidArgument, std::string(flag) + ": '" + std::string(v) +
                                                "' is not a number in " + std::to_string(lo) +
                                                ".." + std::to_string(hi));
  }
  return n;
}

Error flagError(std::string_view flag, const Error& e) {
  return makeError(Errc::InvalidArgument, std::string(flag) + ": " + e.detail);
}

using Setter =
    std::function<Result<void>(IptablesCommand&, std::string_view flag, std::string_view value)>;

Setter port(uint16_t CaptureOptions::*field) {
  return [field](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
    auto n = number(f, v, 1, 65535);
    if (!n) return n.error();
    c.options.*field = static_cast<uint16_t>(*n);
    return {};
  };
}

Setter ids(std::vector<uint32_t> CaptureOptions::*field) {
  return [field](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
    auto l = parseIdList(v);
    if (!l) return flagError(f, l.error());
    c.options.*field = std::move(*l);
    return {};
  };
}

Setter ports(std::vector<PortSpec> CaptureOptions::*field) {
  return [field](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
    auto l = parsePortList(v, false);
    if (!l) return flagError(f, l.error());
    c.options.*field = std::move(l->ports);
    return {};
  };
}

const std::map<std::string, Setter, std::less<>>& setters() {
  static const std::map<std::string, Setter, std::less<>> m{
      {"--mode",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         if (v == "redirect" || v == "REDIRECT") {
           c.options.mode = CaptureMode::Redirect;
         } else if (v == "tproxy" || v == "TPROXY") {
           c.options.mode = CaptureMode::Tproxy;
         } else {
           return makeError(Errc::InvalidArgument, std::string(f) + ": '" + std::string(v) +
                                                       "' is not redirect or tproxy");
         }
         return {};
       }},
      {"--proxy-port", port(&CaptureOptions::proxyPort)},
      {"--inbound-capture-port", port(&CaptureOptions::inboundPort)},
      {"--tunnel-port", port(&CaptureOptions::tunnelPort)},
      {"--proxy-uid", ids(&CaptureOptions::proxyUids)},
      {"--proxy-gid", ids(&CaptureOptions::proxyGids)},
      {"--mark",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         auto n = number(f, v, 0, 0xffffffff);
         if (!n) return n.error();
         c.options.mark = *n;
         return {};
       }},
      {"--route-table",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         auto n = number(f, v, 1, 0xffffffff);
         if (!n) return n.error();
         if (*n >= 253 && *n <= 255) {
           return makeError(Errc::InvalidArgument,
                            std::string(f) + ": " + std::string(v) +
                                " is a reserved table (default, main, local)");
         }
         c.options.routeTable = *n;
         return {};
       }},
      {"--inbound-ports",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         auto l = parsePortList(v, true);
         if (!l) return flagError(f, l.error());
         c.options.inboundPorts = std::move(*l);
         return {};
       }},
      {"--exclude-inbound-ports", ports(&CaptureOptions::excludeInboundPorts)},
      {"--outbound-cidrs",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         auto l = parseCidrList(v, true);
         if (!l) return flagError(f, l.error());
         c.options.outboundCidrs = std::move(*l);
         return {};
       }},
      {"--exclude-outbound-cidrs",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         auto l = parseCidrList(v, false);
         if (!l) return flagError(f, l.error());
         c.options.excludeOutboundCidrs = std::move(l->cidrs);
         return {};
       }},
      {"--outbound-ports", ports(&CaptureOptions::outboundPorts)},
      {"--exclude-outbound-ports", ports(&CaptureOptions::excludeOutboundPorts)},
      {"--family",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         c.familyExplicit = v != "both";
         c.options.ipv4 = v == "both" || v == "ipv4";
         c.options.ipv6 = v == "both" || v == "ipv6";
         if (!c.options.ipv4 && !c.options.ipv6) {
           return makeError(Errc::InvalidArgument, std::string(f) + ": '" + std::string(v) +
                                                       "' is not both, ipv4 or ipv6");
         }
         return {};
       }},
      {"--backend",
       [](IptablesCommand& c, std::string_view f, std::string_view v) -> Result<void> {
         if (v == "auto") {
           c.backend = Backend::Auto;
         } else if (v == "nft") {
           c.backend = Backend::Nft;
         } else if (v == "legacy") {
           c.backend = Backend::Legacy;
         } else {
           return makeError(Errc::InvalidArgument, std::string(f) + ": '" + std::string(v) +
                                                       "' is not auto, nft or legacy");
         }
         return {};
       }},
  };
  return m;
}

bool haveIpv6() { return access("/proc/net/if_inet6", F_OK) == 0; }

const char* familyName(Family f) { return f == Family::V4 ? "IPv4" : "IPv6"; }

const char* changeName(Change c) {
  switch (c) {
    case Change::Added: return "added";
    case Change::Removed: return "removed";
    case Change::Unchanged: return "unchanged";
  }
  return "?";
}

int fail(const std::string& msg) {
  fprintf(stderr, "ugated iptables: %s\n", msg.c_str());
  return kFail;
}

int print(const IptablesCommand& c) {
  const CaptureOptions& o = c.options;
  for (Family f : {Family::V4, Family::V6}) {
    if (f == Family::V4 ? !o.ipv4 : !o.ipv6) continue;
    printf("# %s: iptables-restore --noflush input (%s)\n", familyName(f),
           f == Family::V4 ? "iptables" : "ip6tables");
    fputs(renderRules(buildRules(o, f)).c_str(), stdout);
    if (o.mode == CaptureMode::Tproxy) {
      printf("# %s policy routing, installed through netlink:\n", familyName(f));
      std::string d = describePolicyRoute(f, o.mark, o.routeTable);
      size_t at = 0;
      while (at < d.size()) {
        size_t nl = d.find('\n', at);
        printf("#   %s\n", d.substr(at, nl - at).c_str());
        at = nl + 1;
      }
    }
    if (f == Family::V6) {
      printf(
          "# IPv6 inbound passthrough source, through netlink:\n#   ip -6 addr add ::6/128 dev "
          "lo\n");
    }
  }
  return kOk;
}

// updateRouting makes the tproxy policy route (and, for IPv6, ::6 on lo) present or absent and
// says what changed ("" when nothing did).
Result<std::string> updateRouting(Family f, const CaptureOptions& o, bool present) {
  std::string changes;
  auto route = ensurePolicyRoute(f, o.mark, o.routeTable, present && o.mode == CaptureMode::Tproxy);
  if (!route) return route.error();
  if (*route != Change::Unchanged) changes += std::string("; policy route ") + changeName(*route);
  if (f == Family::V6) {
    auto addr = ensurePassthroughAddress(present);
    if (!addr) return addr.error();
    if (*addr != Change::Unchanged) changes += std::string("; ::6/128 on lo ") + changeName(*addr);
  }
  return changes;
}

// updateOne applies or cleans one family and returns its summary line.
Result<std::string> updateOne(const IptablesCommand& c, Backend b, Family f) {
  const bool apply = c.verb == "apply";
  const std::string fam = familyName(f);
  std::string routing;
  if (apply) {  // routing first: capture starts with its route in place
    auto r = updateRouting(f, c.options, true);
    if (!r) return makeError(r.error().code, fam + ": " + r.error().detail);
    routing = *r;
  }
  RuleSet rs = buildRules(c.options, f);
  auto rep = updateFamily(b, f, c.options, apply ? &rs : nullptr);
  if (!rep) return rep.error();
  if (!apply) {  // and last on clean
    auto r = updateRouting(f, c.options, false);
    if (!r) return makeError(r.error().code, fam + ": " + r.error().detail);
    routing = *r;
  }
  std::string line = fam + " (" + backendName(b) + "): ";
  if (apply) {
    line += std::to_string(rep->added) + " rules installed";
    if (rep->removed) line += ", replacing " + std::to_string(rep->removed) + " earlier ones";
  } else {
    line += rep->script.empty() ? "nothing to remove"
                                : "removed " + std::to_string(rep->removed) + " rules and chains";
  }
  return line + routing;
}

int update(const IptablesCommand& c) {
  auto backend = detectBackend(c.backend);
  if (!backend) return fail(backend.error().detail);
  int done = 0;
  for (Family f : {Family::V4, Family::V6}) {
    if (f == Family::V4 ? !c.options.ipv4 : !c.options.ipv6) continue;
    if (f == Family::V6 && !haveIpv6()) {
      if (c.familyExplicit) return fail("IPv6: the kernel has no IPv6 (no /proc/net/if_inet6)");
      printf("IPv6: skipped (the kernel has no IPv6)\n");
      continue;
    }
    auto line = updateOne(c, *backend, f);
    if (!line) return fail(line.error().detail);
    printf("%s\n", line->c_str());
    ++done;
  }
  if (done == 0) return fail("no address family to handle");
  return kOk;
}

}  // namespace

const char* iptablesUsage() { return kUsage; }

Result<IptablesCommand> parseIptablesArgs(int argc, const char* const* argv) {
  IptablesCommand c;
  // The verb and the options, in any order; options take a value (`--flag V` or `--flag=V`).
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      c.help = true;
      return c;
    }
    if (!a.starts_with("--")) {
      if (!c.verb.empty()) {
        return makeError(Errc::InvalidArgument, "unexpected argument '" + std::string(a) + "'");
      }
      c.verb = a;
      continue;
    }
    std::string_view flag = a, value;
    const size_t eq = a.find('=');
    if (eq != std::string_view::npos) {
      flag = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    auto it = setters().find(flag);
    if (it == setters().end()) {
      return makeError(Errc::InvalidArgument, "unknown option '" + std::string(flag) + "'");
    }
    if (eq == std::string_view::npos) {
      if (i + 1 >= argc) {
        return makeError(Errc::InvalidArgument, std::string(flag) + " needs a value");
      }
      value = argv[++i];
    }
    if (auto r = it->second(c, flag, value); !r) return r.error();
  }
  if (c.verb.empty()) {
    return makeError(Errc::InvalidArgument, "missing command: print, apply or clean");
  }
  if (c.verb != "print" && c.verb != "apply" && c.verb != "clean") {
    return makeError(Errc::InvalidArgument,
                     "unknown command '" + c.verb + "' (print, apply or clean)");
  }
  const CaptureOptions& o = c.options;
  if (o.mode == CaptureMode::Tproxy && o.mark == 0) {
    return makeError(Errc::InvalidArgument,
                     "--mark 0: tproxy mode needs a mark for diverted packets");
  }
  if (o.mark != 0 && o.mark == o.outboundMark) {
    return makeError(Errc::InvalidArgument,
                     "--mark " + std::to_string(o.mark) +
                         " is the mark tproxy mode sets on the proxy's connections to this host");
  }
  if (o.proxyPort == o.inboundPort) {
    return makeError(Errc::InvalidArgument, "--proxy-port and --inbound-capture-port are both " +
                                                std::to_string(o.proxyPort));
  }
  return c;
}

int runIptablesCommand(int argc, char** argv) {
  auto c = parseIptablesArgs(argc, argv);
  if (!c) {
    fprintf(stderr, "ugated iptables: %s\n(see ugated iptables --help)\n",
            c.error().detail.c_str());
    return kUsageError;
  }
  if (c->help) {
    fputs(kUsage, stdout);
    return kOk;
  }
  if (c->verb == "print") return print(*c);
  return update(*c);
}

}  // namespace ugate::iptables
