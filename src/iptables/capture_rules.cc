#include "iptables/capture_rules.h"

#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ugate::iptables {

namespace {

constexpr std::string_view kNat = "nat";
constexpr std::string_view kMangle = "mangle";
// The chains, as Istio names them.
constexpr const char* kInbound = "ISTIO_INBOUND";
constexpr const char* kRedirect = "ISTIO_REDIRECT";
constexpr const char* kInRedirect = "ISTIO_IN_REDIRECT";
constexpr const char* kOutput = "ISTIO_OUTPUT";
constexpr const char* kDivert = "ISTIO_DIVERT";
constexpr const char* kTproxy = "ISTIO_TPROXY";
// iptables-extensions multiport: at most 15 ports per rule, a range counting as two.
constexpr int kMultiportMax = 15;

// The family's loopback (never captured) and the inbound passthrough source (Istio's 127.0.0.6:
// what the proxy binds to reach local applications without being captured again).
const char* loopbackCidr(Family f) { return f == Family::V4 ? "127.0.0.1/32" : "::1/128"; }
const char* passthroughCidr(Family f) { return f == Family::V4 ? "127.0.0.6/32" : "::6/128"; }
int familyOf(Family f) { return f == Family::V4 ? AF_INET : AF_INET6; }

class Builder {
 public:
  explicit Builder(RuleSet& rs) : rs_(rs) {}
  void chain(std::string_view table, const char* name) {
    rs_.chains.emplace_back(std::string(table), name);
  }
  void add(std::string_view table, const char* chain, std::string spec) {
    rs_.rules.push_back(Rule{std::string(table), chain, std::move(spec)});
  }

 private:
  RuleSet& rs_;
};

// portMatches: "--dport P" for one port, "-m multiport --dports A,B:C" (chunks of 15) for several.
std::vector<std::string> portMatches(const std::vector<PortSpec>& ports) {
  std::vector<std::string> out;
  if (ports.size() == 1) {
    out.push_back("--dport " + ports[0].str());
    return out;
  }
  std::string cur;
  int used = 0;
  for (const auto& p : ports) {
    int cost = p.lo == p.hi ? 1 : 2;
    if (used + cost > kMultiportMax) {
      out.push_back("-m multiport --dports " + cur);
      cur.clear();
      used = 0;
    }
    cur += (cur.empty() ? "" : ",") + p.str();
    used += cost;
  }
  if (!cur.empty()) out.push_back("-m multiport --dports " + cur);
  return out;
}

void inboundRules(const CaptureOptions& o, Family f, Builder& b) {
  if (o.inboundPorts.empty()) return;
  const std::string tunnel = std::to_string(o.tunnelPort);
  const std::string mark = std::to_string(o.mark);
  if (o.mode == CaptureMode::Tproxy) {
    // Diverted packets carry the mark, which the policy route sends to the loopback, where the
    // TPROXY socket takes them; packets of established connections are only marked (DIVERT).
    b.add(kMangle, kDivert, "-j MARK --set-mark " + mark);
    b.add(kMangle, kDivert, "-j ACCEPT");
    b.add(kMangle, kTproxy,
          std::string("! -d ") + loopbackCidr(f) + " -p tcp -j TPROXY --tproxy-mark " + mark +
              "/0xffffffff --on-port " + std::to_string(o.inboundPort));
    b.add(kMangle, "PREROUTING", std::string("-p tcp -j ") + kInbound);
    // Not captured: the proxy's own (marked) packets, its passthrough connections to local
    // applications, and local traffic other than the proxy's own connections to this host.
    b.add(kMangle, kInbound, "-p tcp -m mark --mark " + mark + " -j RETURN");
    b.add(kMangle, kInbound, std::string("-p tcp -s ") + passthroughCidr(f) + " -i lo -j RETURN");
    b.add(kMangle, kInbound,
          "-p tcp -i lo -m mark ! --mark " + std::to_string(o.outboundMark) + " -j RETURN");
    if (o.inboundPorts.all) {
      b.add(kMangle, kInbound, "-p tcp --dport " + tunnel + " -j RETURN");
      for (const auto& m : portMatches(o.excludeInboundPorts)) {
        b.add(kMangle, kInbound, "-p tcp " + m + " -j RETURN");
      }
      b.add(kMangle, kInbound,
            std::string("-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ") + kDivert);
      b.add(kMangle, kInbound, std::string("-p tcp -j ") + kTproxy);
    } else {
      for (const auto& p : o.inboundPorts.ports) {
        b.add(kMangle, kInbound,
              "-p tcp --dport " + p.str() + " -m conntrack --ctstate RELATED,ESTABLISHED -j " +
                  kDivert);
        b.add(kMangle, kInbound, "-p tcp --dport " + p.str() + " -j " + kTproxy);
      }
    }
    return;
  }
  b.add(kNat, "PREROUTING", std::string("-p tcp -j ") + kInbound);
  if (o.inboundPorts.all) {
    for (const auto& m : portMatches(o.excludeInboundPorts)) {
      b.add(kNat, kInbound, "-p tcp " + m + " -j RETURN");
    }
    b.add(kNat, kInbound, std::string("-p tcp -j ") + kInRedirect);
  } else {
    for (const auto& p : o.inboundPorts.ports) {
      b.add(kNat, kInbound, "-p tcp --dport " + p.str() + " -j " + kInRedirect);
    }
  }
}

bool includesLoopback(const CidrList& l) {
  return std::any_of(l.cidrs.begin(), l.cidrs.end(),
                     [](const Cidr& c) { return c.addr.isLoopback(); });
}

void ownerRules(const CaptureOptions& o, Family f, const char* match, uint32_t id, Builder& b) {
  const std::string owner = std::string("-m owner --") + match + "-owner " + std::to_string(id);
  // The proxy calling this host's own addresses (an application reaching itself through a service
  // address): back in through the inbound capture.
  b.add(kNat, kOutput,
        std::string("-o lo ! -d ") + loopbackCidr(f) + " -p tcp ! --dport " +
            std::to_string(o.tunnelPort) + " " + owner + " -j " + kInRedirect);
  // Applications calling this host's own addresses directly: not captured.
  if (!includesLoopback(o.outboundCidrs)) {
    b.add(
        kNat, kOutput,
        std::string("-o lo -m owner ! --") + match + "-owner " + std::to_string(id) + " -j RETURN");
  }
  // Everything else the proxy sends: never captured again.
  b.add(kNat, kOutput, owner + " -j RETURN");
}

void outboundRules(const CaptureOptions& o, Family f, Builder& b) {
  b.add(kNat, "OUTPUT", std::string("-p tcp -j ") + kOutput);
  for (const auto& m : portMatches(o.excludeOutboundPorts)) {
    b.add(kNat, kOutput, "-p tcp " + m + " -j RETURN");
  }
  b.add(kNat, kOutput, std::string("-o lo -s ") + passthroughCidr(f) + " -j RETURN");
  if (o.mark != 0) b.add(kNat, kOutput, "-m mark --mark " + std::to_string(o.mark) + " -j RETURN");
  for (uint32_t uid : o.proxyUids) ownerRules(o, f, "uid", uid, b);
  for (uint32_t gid : o.proxyGids) ownerRules(o, f, "gid", gid, b);
  b.add(kNat, kOutput, std::string("-d ") + loopbackCidr(f) + " -j RETURN");
  for (const auto& c : o.excludeOutboundCidrs) {
    if (c.addr.family() == familyOf(f)) b.add(kNat, kOutput, "-d " + c.str() + " -j RETURN");
  }
  for (const auto& p : o.outboundPorts) {
    b.add(kNat, kOutput, "-p tcp --dport " + p.str() + " -j " + kRedirect);
  }
  if (o.outboundCidrs.all) {
    b.add(kNat, kOutput, std::string("-j ") + kRedirect);
  } else {
    for (const auto& c : o.outboundCidrs.cidrs) {
      if (c.addr.family() == familyOf(f)) {
        b.add(kNat, kOutput, "-d " + c.str() + " -j " + kRedirect);
      }
    }
  }
}

// tproxyMarkRules: connections the proxy opens with the mark (to local applications, from the
// client's own address) keep it in conntrack, so the applications' replies are marked too and
// the policy route returns them to the proxy's transparent socket.
void tproxyMarkRules(const CaptureOptions& o, Family f, Builder& b) {
  const std::string mark = std::to_string(o.mark);
  b.add(kMangle, "PREROUTING", "-p tcp -m mark --mark " + mark + " -j CONNMARK --save-mark");
  b.add(kMangle, "OUTPUT", "-p tcp -o lo -m mark --mark " + mark + " -j RETURN");
  auto outbound = [&](const char* match, uint32_t id) {
    b.add(kMangle, "OUTPUT",
          std::string("! -d ") + loopbackCidr(f) + " -p tcp -o lo -m owner --" + match + "-owner " +
              std::to_string(id) + " -j MARK --set-mark " + std::to_string(o.outboundMark));
  };
  for (uint32_t uid : o.proxyUids) outbound("uid", uid);
  for (uint32_t gid : o.proxyGids) outbound("gid", gid);
  b.add(kMangle, "OUTPUT", "-p tcp -m connmark --mark " + mark + " -j CONNMARK --restore-mark");
}

bool jumpsToOwned(std::string_view table, std::string_view spec) {
  for (std::string_view flag : {"-j ", "-g "}) {
    size_t at = 0;
    while ((at = spec.find(flag, at)) != std::string_view::npos) {
      if (at == 0 || spec[at - 1] == ' ') {
        std::string_view target = spec.substr(at + flag.size());
        target = target.substr(0, target.find(' '));
        const auto& owned = ownedChains(table);
        if (std::find(owned.begin(), owned.end(), target) != owned.end()) return true;
      }
      at += flag.size();
    }
  }
  return false;
}

std::vector<std::string_view> splitList(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
    if (s.empty()) out.push_back(s);  // trailing comma: an empty item, reported by the caller
  }
  return out;
}

template <class T>
bool parseNumber(std::string_view s, T& out, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  out = static_cast<T>(v);
  return true;
}

// clearHostBits: 10.1.2.3/8 -> 10.0.0.0/8, as iptables stores it.
Cidr clearHostBits(const Cidr& c) {
  sockaddr_storage ss{};
  memcpy(&ss, c.addr.sa(), c.addr.len());
  uint8_t* bytes =
      c.addr.family() == AF_INET6
          ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr.s6_addr
          : reinterpret_cast<uint8_t*>(&reinterpret_cast<sockaddr_in*>(&ss)->sin_addr.s_addr);
  for (int i = 0; i < c.addr.ipLen(); ++i) {
    int keep = std::clamp(c.prefixLen - i * 8, 0, 8);
    bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return Cidr{SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), c.addr.len()),
              c.prefixLen};
}

}  // namespace

std::string PortSpec::str() const {
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + ":" + std::to_string(hi);
}

RuleSet buildRules(const CaptureOptions& o, Family f) {
  RuleSet rs;
  rs.family = f;
  Builder b(rs);
  const bool tproxy = o.mode == CaptureMode::Tproxy;
  if (tproxy && !o.inboundPorts.empty()) {
    b.chain(kMangle, kDivert);
    b.chain(kMangle, kTproxy);
    b.chain(kMangle, kInbound);
  }
  b.chain(kNat, kInbound);
  b.chain(kNat, kRedirect);
  b.chain(kNat, kInRedirect);
  b.chain(kNat, kOutput);
  b.add(kNat, kInbound, "-p tcp --dport " + std::to_string(o.tunnelPort) + " -j RETURN");
  b.add(kNat, kRedirect, "-p tcp -j REDIRECT --to-ports " + std::to_string(o.proxyPort));
  b.add(kNat, kInRedirect, "-p tcp -j REDIRECT --to-ports " + std::to_string(o.inboundPort));
  inboundRules(o, f, b);
  outboundRules(o, f, b);
  if (tproxy) tproxyMarkRules(o, f, b);
  return rs;
}

std::string renderRules(const RuleSet& rs) {
  std::string out;
  for (std::string_view table : {kMangle, kNat}) {
    std::string block;
    for (const auto& [t, c] : rs.chains) {
      if (t == table) block += ":" + c + " - [0:0]\n";
    }
    for (const auto& r : rs.rules) {
      if (r.table == table) block += "-A " + r.chain + " " + r.spec + "\n";
    }
    if (!block.empty()) out += "*" + std::string(table) + "\n" + block + "COMMIT\n";
  }
  return out;
}

const std::vector<std::string>& ownedChains(std::string_view table) {
  static const std::vector<std::string> nat{kInbound, kRedirect, kInRedirect, kOutput};
  static const std::vector<std::string> mangle{kDivert, kTproxy, kInbound};
  static const std::vector<std::string> none;
  return table == kNat ? nat : table == kMangle ? mangle : none;
}

bool isBuiltinChain(std::string_view c) {
  return c == "PREROUTING" || c == "INPUT" || c == "FORWARD" || c == "OUTPUT" || c == "POSTROUTING";
}

std::vector<Rule> builtinRulesToCheck(const CaptureOptions& o, Family f) {
  CaptureOptions t = o;
  t.mode = CaptureMode::Tproxy;
  RuleSet rs;
  Builder b(rs);
  tproxyMarkRules(t, f, b);
  return rs.rules;
}

const SaveState::Table* SaveState::find(std::string_view name) const {
  for (const auto& t : tables) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<SaveState> parseSave(std::string_view text) {
  SaveState st;
  SaveState::Table* cur = nullptr;
  size_t lineNo = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto bad = [&](const char* why) {
      return makeError(Errc::ProtocolError, "iptables-save line " + std::to_string(lineNo) + ": " +
                                                why + ": '" + std::string(line.substr(0, 120)) +
                                                "'");
    };
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {  // -c counters: "[12:345] -A ..."
      size_t end = line.find("] ");
      if (end == std::string_view::npos) return bad("unterminated counters");
      line.remove_prefix(end + 2);
      if (line.empty()) return bad("counters without a rule");
    }
    if (line[0] == '*') {
      if (cur) return bad("table without COMMIT before it");
      if (line.size() < 2) return bad("empty table name");
      st.tables.push_back(SaveState::Table{std::string(line.substr(1)), {}, {}});
      cur = &st.tables.back();
    } else if (line == "COMMIT") {
      if (!cur) return bad("COMMIT outside a table");
      cur = nullptr;
    } else if (line[0] == ':') {
      if (!cur) return bad("chain outside a table");
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos || sp == 1) return bad("malformed chain");
      std::string_view name = line.substr(1, sp - 1);
      std::string_view policy = line.substr(sp + 1);
      if (policy.starts_with("- ") || policy == "-") cur->chains.emplace_back(name);
    } else if (line.starts_with("-A ")) {
      if (!cur) return bad("rule outside a table");
      std::string_view rest = line.substr(3);
      size_t sp = rest.find(' ');
      if (sp == 0 || rest.empty()) return bad("rule without a chain");
      std::string_view chain = rest.substr(0, sp);
      std::string_view spec =
          sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
      cur->rules.push_back(Rule{cur->name, std::string(chain), std::string(spec)});
    } else {
      return bad("unexpected line");
    }
  }
  if (cur) {
    return makeError(Errc::ProtocolError, "iptables-save output ends inside table " + cur->name);
  }
  return st;
}

std::string updateScript(const SaveState& current, const std::vector<Rule>& present,
                         const RuleSet* next) {
  std::string out;
  for (std::string_view table : {kMangle, kNat}) {
    std::string block;
    std::vector<std::string> declared;
    if (next) {
      for (const auto& [t, c] : next->chains) {
        if (t != table) continue;
        block += ":" + c + " - [0:0]\n";  // creates the chain, or flushes it when it exists
        declared.push_back(c);
      }
    }
    const SaveState::Table* cur = current.find(table);
    if (cur) {
      for (const auto& r : cur->rules) {
        if (isBuiltinChain(r.chain) && jumpsToOwned(table, r.spec)) {
          block += "-D " + r.chain + " " + r.spec + "\n";
        }
      }
    }
    for (const auto& r : present) {
      if (r.table == table) block += "-D " + r.chain + " " + r.spec + "\n";
    }
    if (cur) {
      std::vector<std::string> stale;
      for (const auto& c : ownedChains(table)) {
        bool exists = std::find(cur->chains.begin(), cur->chains.end(), c) != cur->chains.end();
        bool kept = std::find(declared.begin(), declared.end(), c) != declared.end();
        if (exists && !kept) stale.push_back(c);
      }
      // Flush them all before deleting any: owned chains may jump to each other.
      for (const auto& c : stale) block += "-F " + c + "\n";
      for (const auto& c : stale) block += "-X " + c + "\n";
    }
    if (next) {
      for (const auto& r : next->rules) {
        if (r.table == table) block += "-A " + r.chain + " " + r.spec + "\n";
      }
    }
    if (!block.empty()) out += "*" + std::string(table) + "\n" + block + "COMMIT\n";
  }
  return out;
}

Result<PortList> parsePortList(std::string_view s, bool allowAll) {
  PortList l;
  if (s == "*") {
    if (!allowAll) return makeError(Errc::InvalidArgument, "'*' is not allowed here");
    l.all = true;
    return l;
  }
  for (std::string_view item : splitList(s)) {
    PortSpec p;
    size_t colon = item.find(':');
    std::string_view lo = item.substr(0, colon);
    std::string_view hi = colon == std::string_view::npos ? lo : item.substr(colon + 1);
    if (!parseNumber(lo, p.lo, 65535) || !parseNumber(hi, p.hi, 65535) || p.lo == 0 ||
        p.hi < p.lo) {
      return makeError(Errc::InvalidArgument,
                       "'" + std::string(item) + "' is not a port (1-65535) or a range LO:HI");
    }
    l.ports.push_back(p);
  }
  return l;
}

Result<CidrList> parseCidrList(std::string_view s, bool allowAll) {
  CidrList l;
  if (s == "*") {
    if (!allowAll) return makeError(Errc::InvalidArgument, "'*' is not allowed here");
    l.all = true;
    return l;
  }
  for (std::string_view item : splitList(s)) {
    auto c = Cidr::parse(item);
    if (!c) {
      return makeError(Errc::InvalidArgument,
                       "'" + std::string(item) + "' is not a CIDR (10.0.0.0/8, fd00::/8)");
    }
    l.cidrs.push_back(clearHostBits(*c));
  }
  return l;
}

Result<std::vector<uint32_t>> parseIdList(std::string_view s) {
  std::vector<uint32_t> out;
  for (std::string_view item : splitList(s)) {
    uint32_t v = 0;
    if (!parseNumber(item, v, 0xfffffffeULL)) {
      return makeError(Errc::InvalidArgument,
                       "'" + std::string(item) + "' is not a numeric uid/gid");
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace ugate::iptables
