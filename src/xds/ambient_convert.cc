#include "xds/ambient_convert.h"

#include <arpa/inet.h>

#include "istio/security/authorization.pb.h"
#include "istio/workload/workload.pb.h"
#include "xds/messages.h"

namespace ugate::xds {

namespace {

namespace wl = istio::workload;
namespace sec = istio::security;

Error invalid(std::string why) { return Error{Errc::InvalidArgument, std::move(why)}; }

std::string printable(std::string_view s) {
  std::string o(s.substr(0, 80));
  for (char& ch : o) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return o;
}

/** ipText: raw 4- or 16-byte IP → canonical text; nullopt for any other length. */
std::optional<std::string> ipText(const std::string& raw) {
  char buf[INET6_ADDRSTRLEN];
  if (raw.size() == 4) return std::string(inet_ntop(AF_INET, raw.data(), buf, sizeof buf));
  if (raw.size() == 16) return std::string(inet_ntop(AF_INET6, raw.data(), buf, sizeof buf));
  return std::nullopt;
}

/** port: a uint32 field as a port (0 allowed only when `zeroOk`). */
std::optional<uint16_t> port(uint32_t p, bool zeroOk) {
  if (p > 65535 || (p == 0 && !zeroOk)) return std::nullopt;
  return static_cast<uint16_t>(p);
}

Result<std::vector<AmbientPort>> ports(const google::protobuf::RepeatedPtrField<wl::Port>& in, const std::string& who) {
  if (static_cast<size_t>(in.size()) > kMaxAmbientPorts) return invalid(who + ": more than 1024 ports");
  std::vector<AmbientPort> out;
  for (const auto& p : in) {
    auto sp = port(p.service_port(), false);
    auto tp = port(p.target_port(), true);
    if (!sp || !tp) {
      return invalid(who + ": port " + std::to_string(p.service_port()) + "->" + std::to_string(p.target_port()) +
                     " out of range");
    }
    out.push_back({*sp, *tp});
  }
  return out;
}

Result<std::optional<AmbientWaypoint>> waypoint(bool has, const wl::GatewayAddress& g, const std::string& who) {
  if (!has) return std::optional<AmbientWaypoint>{};
  if (!g.has_address()) return invalid(who + ": a waypoint by hostname is not supported (an IP address is)");
  auto ip = ipText(g.address().address());
  if (!ip) return invalid(who + ": waypoint address of " + std::to_string(g.address().address().size()) + " bytes");
  auto p = port(g.hbone_mtls_port(), true);
  if (!p) return invalid(who + ": waypoint port " + std::to_string(g.hbone_mtls_port()) + " out of range");
  return std::optional<AmbientWaypoint>(AmbientWaypoint{*ip, *p ? *p : uint16_t{15008}});
}

Result<AmbientWorkload> workload(const wl::Workload& m) {
  AmbientWorkload w;
  w.uid = m.uid();
  if (w.uid.empty() || w.uid.size() > 512) return invalid("workload '" + printable(m.name()) + "': uid empty or too long");
  const std::string who = "workload " + printable(w.uid);
  w.name = m.name();
  w.ns = m.namespace_();
  if (m.addresses_size() == 0) return invalid(who + ": no address (workloads by hostname are not supported)");
  if (static_cast<size_t>(m.addresses_size()) > kMaxAmbientAddresses) return invalid(who + ": more than 64 addresses");
  for (const std::string& raw : m.addresses()) {
    auto ip = ipText(raw);
    if (!ip) return invalid(who + ": an address of " + std::to_string(raw.size()) + " bytes (4 or 16)");
    w.ips.push_back(*ip);
  }
  if (m.tunnel_protocol() != wl::NONE && m.tunnel_protocol() != wl::HBONE) {
    return invalid(who + ": tunnel_protocol " + std::to_string(m.tunnel_protocol()) + " is not supported");
  }
  w.hbone = m.tunnel_protocol() == wl::HBONE;
  w.healthy = m.status() == wl::HEALTHY;
  w.trustDomain = m.trust_domain().empty() ? "cluster.local" : m.trust_domain();
  w.serviceAccount = m.service_account().empty() ? "default" : m.service_account();
  for (const std::string* s : {&w.trustDomain, &w.serviceAccount, &w.ns}) {
    if (s->find('/') != std::string::npos || s->size() > 253) {
      return invalid(who + ": '" + printable(*s) + "' cannot be part of a SPIFFE ID");
    }
  }
  auto wp = waypoint(m.has_waypoint(), m.waypoint(), who);
  if (!wp) return wp.error();
  w.waypoint = std::move(*wp);
  if (static_cast<size_t>(m.services_size()) > kMaxAmbientServicesPerWorkload) {
    return invalid(who + ": endpoint of more than 1024 services");
  }
  for (const auto& [svc, list] : m.services()) {
    auto ps = ports(list.ports(), who + " in service " + printable(svc));
    if (!ps) return ps.error();
    w.services[svc] = std::move(*ps);
  }
  if (static_cast<size_t>(m.authorization_policies_size()) > kMaxAmbientRules) return invalid(who + ": too many policies");
  w.policies.assign(m.authorization_policies().begin(), m.authorization_policies().end());
  return w;
}

Result<AmbientService> service(const wl::Service& m) {
  AmbientService s;
  s.name = m.name();
  s.ns = m.namespace_();
  s.hostname = m.hostname();
  if (s.ns.empty() || s.hostname.empty() || s.key().size() > 512) {
    return invalid("service '" + printable(s.name) + "': namespace and hostname are required");
  }
  const std::string who = "service " + printable(s.key());
  if (static_cast<size_t>(m.addresses_size()) > kMaxAmbientAddresses) return invalid(who + ": more than 64 addresses");
  for (const auto& a : m.addresses()) {
    auto ip = ipText(a.address());
    if (!ip) return invalid(who + ": an address of " + std::to_string(a.address().size()) + " bytes (4 or 16)");
    s.vips.push_back(*ip);
  }
  auto ps = ports(m.ports(), who);
  if (!ps) return ps.error();
  s.ports = std::move(*ps);
  auto wp = waypoint(m.has_waypoint(), m.waypoint(), who);
  if (!wp) return wp.error();
  s.waypoint = std::move(*wp);
  return s;
}

template <class T>
bool tooMany(const google::protobuf::RepeatedPtrField<T>& v) {
  return static_cast<size_t>(v.size()) > kMaxAmbientRules;
}

Result<std::vector<AmbientStringMatch>> strings(const google::protobuf::RepeatedPtrField<sec::StringMatch>& in,
                                                const std::string& who) {
  if (tooMany(in)) return invalid(who + ": too many values");
  std::vector<AmbientStringMatch> out;
  for (const auto& m : in) {
    switch (m.match_type_case()) {
      case sec::StringMatch::kExact: out.push_back({AmbientStringMatch::Kind::Exact, m.exact()}); break;
      case sec::StringMatch::kPrefix: out.push_back({AmbientStringMatch::Kind::Prefix, m.prefix()}); break;
      case sec::StringMatch::kSuffix: out.push_back({AmbientStringMatch::Kind::Suffix, m.suffix()}); break;
      case sec::StringMatch::kPresence: out.push_back({AmbientStringMatch::Kind::Presence, {}}); break;
      default: return invalid(who + ": a string match with no value");
    }
  }
  return out;
}

Result<std::vector<Cidr>> cidrs(const google::protobuf::RepeatedPtrField<sec::Address>& in, const std::string& who) {
  if (tooMany(in)) return invalid(who + ": too many addresses");
  std::vector<Cidr> out;
  for (const auto& a : in) {
    auto ip = ipText(a.address());
    const uint32_t max = a.address().size() == 4 ? 32 : 128;
    if (!ip || a.length() > max) return invalid(who + ": an address of " + std::to_string(a.address().size()) + " bytes, length " + std::to_string(a.length()));
    auto c = Cidr::parse(*ip + "/" + std::to_string(a.length()));
    if (!c) return invalid(who + ": bad prefix " + *ip);
    out.push_back(*c);
  }
  return out;
}

Result<std::vector<uint16_t>> portList(const google::protobuf::RepeatedField<uint32_t>& in, const std::string& who) {
  if (static_cast<size_t>(in.size()) > kMaxAmbientRules) return invalid(who + ": too many ports");
  std::vector<uint16_t> out;
  for (uint32_t p : in) {
    auto q = port(p, false);
    if (!q) return invalid(who + ": port " + std::to_string(p) + " out of range");
    out.push_back(*q);
  }
  return out;
}

Result<AmbientMatch> match(const sec::Match& m, const std::string& who) {
  AmbientMatch out;
  struct S {
    const google::protobuf::RepeatedPtrField<sec::StringMatch>& in;
    std::vector<AmbientStringMatch>& out;
  };
  for (S s : {S{m.namespaces(), out.namespaces}, S{m.not_namespaces(), out.notNamespaces},
              S{m.principals(), out.principals}, S{m.not_principals(), out.notPrincipals}}) {
    auto v = strings(s.in, who);
    if (!v) return v.error();
    s.out = std::move(*v);
  }
  struct C {
    const google::protobuf::RepeatedPtrField<sec::Address>& in;
    std::vector<Cidr>& out;
  };
  for (C c : {C{m.source_ips(), out.sourceIps}, C{m.not_source_ips(), out.notSourceIps},
              C{m.destination_ips(), out.destinationIps}, C{m.not_destination_ips(), out.notDestinationIps}}) {
    auto v = cidrs(c.in, who);
    if (!v) return v.error();
    c.out = std::move(*v);
  }
  auto dp = portList(m.destination_ports(), who);
  if (!dp) return dp.error();
  out.destinationPorts = std::move(*dp);
  auto ndp = portList(m.not_destination_ports(), who);
  if (!ndp) return ndp.error();
  out.notDestinationPorts = std::move(*ndp);
  return out;
}

}  // namespace

Result<AmbientAddress> parseAmbientAddress(std::string_view bytes) {
  wl::Address m;
  if (!parseMessage(bytes, m)) return invalid("not an istio.workload.Address");
  AmbientAddress a;
  switch (m.type_case()) {
    case wl::Address::kWorkload: {
      auto w = workload(m.workload());
      if (!w) return w.error();
      a.workload = std::move(*w);
      return a;
    }
    case wl::Address::kService: {
      auto s = service(m.service());
      if (!s) return s.error();
      a.service = std::move(*s);
      return a;
    }
    default: return invalid("an Address that is neither a workload nor a service");
  }
}

Result<AmbientPolicy> parseAmbientPolicy(std::string_view bytes) {
  sec::Authorization m;
  if (!parseMessage(bytes, m)) return invalid("not an istio.security.Authorization");
  AmbientPolicy p;
  p.name = m.name();
  p.ns = m.namespace_();
  if (p.name.empty() || p.key().size() > 512) return invalid("authorization policy without a name");
  const std::string who = "policy " + printable(p.key());
  switch (m.scope()) {
    case sec::GLOBAL: p.scope = AmbientPolicy::Scope::Global; break;
    case sec::NAMESPACE: p.scope = AmbientPolicy::Scope::Namespace; break;
    case sec::WORKLOAD_SELECTOR: p.scope = AmbientPolicy::Scope::WorkloadSelector; break;
    default: return invalid(who + ": scope " + std::to_string(m.scope()) + " unknown");
  }
  switch (m.action()) {
    case sec::ALLOW: p.action = AmbientPolicy::Action::Allow; break;
    case sec::DENY: p.action = AmbientPolicy::Action::Deny; break;
    default: return invalid(who + ": action " + std::to_string(m.action()) + " is not supported");
  }
  if (tooMany(m.rules())) return invalid(who + ": too many rules");
  size_t matches = 0;
  for (const auto& r : m.rules()) {
    if (tooMany(r.clauses())) return invalid(who + ": too many clauses");
    auto& rule = p.rules.emplace_back();
    for (const auto& c : r.clauses()) {
      matches += static_cast<size_t>(c.matches_size());
      if (matches > kMaxAmbientRules) return invalid(who + ": too many matches");
      auto& clause = rule.emplace_back();
      for (const auto& mm : c.matches()) {
        auto x = match(mm, who);
        if (!x) return x.error();
        clause.push_back(std::move(*x));
      }
    }
  }
  return p;
}

}  // namespace ugate::xds
