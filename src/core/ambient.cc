// Ambient (ugate/ambient.h): the published Istio ambient state and the two questions the data path
// asks of it. Pure functions of a snapshot; the directory is one atomic pointer.
#include <ugate/ambient.h>

#include <algorithm>

namespace ugate {

bool AmbientStringMatch::matches(std::string_view s) const {
  switch (kind) {
    case Kind::Exact: return s == value;
    case Kind::Prefix: return s.substr(0, value.size()) == value;
    case Kind::Suffix: return s.size() >= value.size() && s.substr(s.size() - value.size()) == value;
    case Kind::Presence: return !s.empty();
  }
  return false;
}

void AmbientSnapshot::index() {
  workloadByIp.clear();
  serviceByVip.clear();
  endpointsOf.clear();
  for (const auto& [uid, w] : workloads) {
    for (const std::string& ip : w.ips) workloadByIp[ip] = uid;
    for (const auto& [svc, ports] : w.services) endpointsOf[svc].push_back(uid);
  }
  for (const auto& [key, s] : services) {
    for (const std::string& ip : s.vips) serviceByVip[ip] = key;
  }
}

std::string spiffeNamespace(std::string_view spiffe) {
  constexpr std::string_view kScheme = "spiffe://";
  if (spiffe.substr(0, kScheme.size()) != kScheme) return "";
  std::string_view rest = spiffe.substr(kScheme.size());
  const size_t ns = rest.find("/ns/");
  if (ns == std::string_view::npos) return "";
  rest = rest.substr(ns + 4);
  const size_t end = rest.find('/');
  return std::string(rest.substr(0, end));
}

namespace {

std::string hboneHop(const std::string& ip, uint16_t port) {
  const bool v6 = ip.find(':') != std::string::npos;
  return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

std::string waypointHop(const AmbientWaypoint& w) { return hboneHop(w.ip, w.port ? w.port : 15008); }

/** waypointIdentity: the SPIFFE ID of the workload at the waypoint's address, when known. */
std::string waypointIdentity(const AmbientSnapshot& s, const AmbientWaypoint& w) {
  auto it = s.workloadByIp.find(w.ip);
  return it == s.workloadByIp.end() ? std::string() : s.workloads.at(it->second).spiffe();
}

/** dialWorkload: to workload w's first address on `port`, as its tunnel protocol says. */
AmbientDial dialWorkload(const AmbientSnapshot& s, const AmbientWorkload& w, uint16_t port, std::string why) {
  AmbientDial d;
  d.why = std::move(why);
  if (w.ips.empty()) {
    d.why += ": workload " + w.uid + " has no address";
    return d;
  }
  d.target = HostPort{w.ips.front(), port};
  if (w.waypoint) {
    d.via = waypointHop(*w.waypoint);
    d.identity = waypointIdentity(s, *w.waypoint);
    d.why += " via waypoint " + d.via;
  } else if (w.hbone) {
    d.via = hboneHop(w.ips.front(), 15008);
    d.identity = w.spiffe();
  }
  return d;
}

}  // namespace

std::optional<AmbientDial> ambientOutbound(const AmbientSnapshot& s, const SocketAddress& dst, uint64_t pick) {
  if (!dst.valid()) return std::nullopt;
  const std::string ip = dst.ip();
  const uint16_t port = dst.port();
  if (auto sv = s.serviceByVip.find(ip); sv != s.serviceByVip.end()) {
    const AmbientService& svc = s.services.at(sv->second);
    const std::string why = "service " + svc.key();
    const AmbientPort* sp = nullptr;
    for (const AmbientPort& p : svc.ports) {
      if (p.servicePort == port) sp = &p;
    }
    AmbientDial d;
    if (sp == nullptr) {
      d.why = why + " has no port " + std::to_string(port);
      return d;
    }
    if (svc.waypoint) {  // the waypoint picks the endpoint: it gets the service address
      d.target = HostPort{ip, port};
      d.via = waypointHop(*svc.waypoint);
      d.identity = waypointIdentity(s, *svc.waypoint);
      d.why = why + " via waypoint " + d.via;
      return d;
    }
    std::vector<std::pair<const AmbientWorkload*, uint16_t>> eps;
    if (auto e = s.endpointsOf.find(svc.key()); e != s.endpointsOf.end()) {
      for (const std::string& uid : e->second) {
        const AmbientWorkload& w = s.workloads.at(uid);
        if (!w.healthy || w.ips.empty()) continue;
        uint16_t target = sp->targetPort ? sp->targetPort : sp->servicePort;
        for (const AmbientPort& wp : w.services.at(svc.key())) {
          if (wp.servicePort == port && wp.targetPort) target = wp.targetPort;
        }
        eps.emplace_back(&w, target);
      }
    }
    if (eps.empty()) {
      d.why = why + " has no healthy endpoint";
      return d;
    }
    const auto& [w, target] = eps[pick % eps.size()];
    return dialWorkload(s, *w, target, why + " -> workload " + w->uid);
  }
  if (auto wi = s.workloadByIp.find(ip); wi != s.workloadByIp.end()) {
    const AmbientWorkload& w = s.workloads.at(wi->second);
    AmbientDial d = dialWorkload(s, w, port, "workload " + w.uid);
    d.target.host = ip;  // the address dialled, whichever of the workload's it was
    if (!w.waypoint && w.hbone) d.via = hboneHop(ip, 15008);
    return d;
  }
  return std::nullopt;
}

namespace {

struct Peer {
  std::string_view principal;
  std::string ns;
  const SocketAddress& source;
  const SocketAddress& dst;
};

template <class T, class F>
bool anyOf(const std::vector<T>& v, F f) {
  return std::any_of(v.begin(), v.end(), f);
}

bool matchOne(const AmbientMatch& m, const Peer& p) {
  auto str = [](const std::vector<AmbientStringMatch>& v, std::string_view s) {
    return anyOf(v, [&](const AmbientStringMatch& x) { return x.matches(s); });
  };
  auto ip = [](const std::vector<Cidr>& v, const SocketAddress& a) {
    return anyOf(v, [&](const Cidr& c) { return c.containsClient(a); });
  };
  auto port = [&](const std::vector<uint16_t>& v) {
    return std::find(v.begin(), v.end(), p.dst.port()) != v.end();
  };
  if (!m.namespaces.empty() && !str(m.namespaces, p.ns)) return false;
  if (str(m.notNamespaces, p.ns)) return false;
  if (!m.principals.empty() && !str(m.principals, p.principal)) return false;
  if (str(m.notPrincipals, p.principal)) return false;
  if (!m.sourceIps.empty() && !ip(m.sourceIps, p.source)) return false;
  if (ip(m.notSourceIps, p.source)) return false;
  if (!m.destinationIps.empty() && !ip(m.destinationIps, p.dst)) return false;
  if (ip(m.notDestinationIps, p.dst)) return false;
  if (!m.destinationPorts.empty() && !port(m.destinationPorts)) return false;
  if (port(m.notDestinationPorts)) return false;
  return true;
}

bool matchPolicy(const AmbientPolicy& pol, const Peer& p) {
  return anyOf(pol.rules, [&](const std::vector<std::vector<AmbientMatch>>& rule) {
    return std::all_of(rule.begin(), rule.end(), [&](const std::vector<AmbientMatch>& clause) {
      return anyOf(clause, [&](const AmbientMatch& m) { return matchOne(m, p); });
    });
  });
}

bool appliesTo(const AmbientPolicy& pol, const AmbientWorkload& w) {
  switch (pol.scope) {
    case AmbientPolicy::Scope::Global: return true;
    case AmbientPolicy::Scope::Namespace: return pol.ns == w.ns;
    case AmbientPolicy::Scope::WorkloadSelector:
      return std::find(w.policies.begin(), w.policies.end(), pol.key()) != w.policies.end();
  }
  return false;
}

}  // namespace

AmbientVerdict ambientAuthorize(const AmbientSnapshot& s, const SocketAddress& dst, std::string_view principal,
                                const SocketAddress& source) {
  AmbientVerdict v;
  if (!dst.valid()) return v;
  auto wi = s.workloadByIp.find(dst.ip());
  if (wi == s.workloadByIp.end()) return v;
  const AmbientWorkload& w = s.workloads.at(wi->second);
  v.applies = true;
  const Peer p{principal, spiffeNamespace(principal), source, dst};
  for (const auto& [key, pol] : s.policies) {  // any DENY that matches refuses
    if (pol.action == AmbientPolicy::Action::Deny && appliesTo(pol, w) && matchPolicy(pol, p)) {
      v.allowed = false;
      v.why = "denied by policy " + key;
      return v;
    }
  }
  const AmbientPolicy* allowApplies = nullptr;
  for (const auto& [key, pol] : s.policies) {
    if (pol.action != AmbientPolicy::Action::Allow || !appliesTo(pol, w)) continue;
    if (matchPolicy(pol, p)) {
      v.why = "allowed by policy " + key;
      return v;
    }
    allowApplies = &pol;
  }
  if (allowApplies) {
    v.allowed = false;
    v.why = "no ALLOW policy of workload " + w.uid + " matches (e.g. " + allowApplies->key() + ")";
  } else {
    v.why = "no policy";
  }
  return v;
}

void AmbientDirectory::publish(std::shared_ptr<const AmbientSnapshot> s) {
  snap_.store(std::move(s), std::memory_order_release);
}

AmbientDirectory& ambientDirectory() {
  static AmbientDirectory d;
  return d;
}

}  // namespace ugate
