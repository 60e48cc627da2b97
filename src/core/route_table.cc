#include "core/route_table.h"

#include <ugate/text.h>

#include <algorithm>

namespace ugate {
namespace {

template <class List, class Pred>
bool anyOrEmpty(const List& l, Pred p) {
  return l.empty() || std::any_of(l.begin(), l.end(), p);
}

// The destination address a CIDR match applies to: the original destination when known, else the
// requested host if it is a literal IP.
SocketAddress destAddress(const StreamMeta& m) {
  if (m.originalDst.valid()) return m.originalDst;
  if (auto a = SocketAddress::fromIp(m.host, m.port)) return *a;
  return {};
}

}  // namespace

bool RouteTable::nameMatches(std::string_view pattern, std::string_view name) {
  if (pattern == "*") return !name.empty();
  if (pattern.starts_with("*.")) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && iequals(name.substr(name.size() - suffix.size()), suffix);
  }
  return iequals(pattern, name);
}

bool RouteTable::alpnMatches(std::string_view protocol, std::string_view offered) {
  while (!offered.empty()) {
    size_t comma = offered.find(',');
    std::string_view one = offered.substr(0, comma);
    if (one == protocol) return true;
    if (comma == std::string_view::npos) break;
    offered.remove_prefix(comma + 1);
  }
  return false;
}

RouteDecision RouteTable::decide(const Target& t, std::string_view routeName, const StreamMeta& meta,
                                 bool requested) {
  RouteDecision d;
  d.route = routeName;
  switch (t.type) {
    case Target::Type::HostPort:
      d.action = RouteDecision::Action::Dial;
      d.target = t.hostPort;
      break;
    case Target::Type::Original:
      if (meta.originalDst.valid()) {
        d.action = RouteDecision::Action::DialOriginal;
      } else if (requested && !meta.host.empty() && meta.port != 0) {
        // A proxy client asked for a name: dial it (resolved asynchronously when dialled).
        d.action = RouteDecision::Action::Dial;
        d.target = HostPort{meta.host, meta.port};
      } else {
        d.action = RouteDecision::Action::NoRoute;
      }
      break;
    case Target::Type::Reject:
      d.action = RouteDecision::Action::Reject;
      break;
    case Target::Type::SniHost:
      // Egress: the name the client asked for, on the configured port (resolved by the session).
      if (meta.sni.empty()) {
        d.action = RouteDecision::Action::NoRoute;
      } else {
        d.action = RouteDecision::Action::Dial;
        d.target = HostPort{meta.sni, t.hostPort.port};
      }
      break;
    case Target::Type::Cluster:
      d.action = RouteDecision::Action::DialCluster;
      d.cluster = t.cluster;
      break;
    case Target::Type::None:
      d.action = RouteDecision::Action::NoRoute;
      break;
  }
  return d;
}

RouteDecision RouteTable::route(const StreamMeta& meta) const {
  const ListenerConfig* listener = cfg_->findListener(meta.listener);
  const bool requested = listener && listener->spec && listener->spec->dialsRequested;
  const SocketAddress dst = destAddress(meta);
  const uint16_t port = meta.originalDst.valid() ? meta.originalDst.port() : meta.port;
  for (const auto& r : cfg_->routes) {
    const RouteMatch& m = r.match;
    if (!anyOrEmpty(m.listeners, [&](const std::string& l) { return l == meta.listener; })) continue;
    if (!anyOrEmpty(m.sni, [&](const std::string& p) { return nameMatches(p, meta.sni); })) continue;
    if (!anyOrEmpty(m.alpn, [&](const std::string& p) { return alpnMatches(p, meta.alpn); })) {
      continue;
    }
    if (!anyOrEmpty(m.hosts, [&](const std::string& p) { return nameMatches(p, meta.host); })) continue;
    if (!anyOrEmpty(m.ports, [&](const PortRange& p) { return port >= p.lo && port <= p.hi; })) continue;
    if (!anyOrEmpty(m.cidrs, [&](const Cidr& c) { return dst.valid() && c.contains(dst); })) continue;
    if (!anyOrEmpty(m.sourceCidrs, [&](const Cidr& c) { return c.containsClient(meta.source); })) continue;
    std::string_view matchedId;
    if (!anyOrEmpty(m.identities, [&](const std::string& id) {
          if (!meta.peer || !(iequals(id, meta.peer->nodeId) || id == meta.peer->spiffe)) return false;
          matchedId = id;
          return true;
        })) {
      continue;
    }
    RouteDecision d = decide(r.to, r.name, meta, requested);
    d.identity = matchedId;
    d.proxyProtocol = r.proxyProtocol;
    d.upstreamTls = r.upstreamTls;
    d.via = r.via;
    d.http = r.http;
    d.upstreamQuic = r.upstreamQuic;
    return d;
  }
  if (listener) {
    // A proxy listener without `to` dials what its client asked for.
    Target t = listener->to;
    if (requested && t.type == Target::Type::None) t.type = Target::Type::Original;
    RouteDecision d = decide(t, "", meta, requested);
    if (d.action == RouteDecision::Action::DialCluster) d.cluster = listener->to.cluster;  // not t's copy
    d.proxyProtocol = listener->proxyProtocol;
    d.upstreamTls = listener->upstreamTls;
    return d;
  }
  return RouteDecision{};
}

}  // namespace ugate
