#include "core/route_table.h"

#include <algorithm>

namespace ugate {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

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

RouteDecision RouteTable::decide(const Target& t, std::string_view routeName, const StreamMeta& meta) {
  RouteDecision d;
  d.route = routeName;
  switch (t.type) {
    case Target::Type::HostPort:
      d.action = RouteDecision::Action::Dial;
      d.target = t.hostPort;
      break;
    case Target::Type::Original:
      d.action = meta.originalDst.valid() ? RouteDecision::Action::DialOriginal
                                          : RouteDecision::Action::NoRoute;
      break;
    case Target::Type::Reject:
      d.action = RouteDecision::Action::Reject;
      break;
    case Target::Type::None:
      d.action = RouteDecision::Action::NoRoute;
      break;
  }
  return d;
}

RouteDecision RouteTable::route(const StreamMeta& meta) const {
  const SocketAddress dst = destAddress(meta);
  const uint16_t port = meta.originalDst.valid() ? meta.originalDst.port() : meta.port;
  for (const auto& r : cfg_->routes) {
    const RouteMatch& m = r.match;
    if (!anyOrEmpty(m.listeners, [&](const std::string& l) { return l == meta.listener; })) continue;
    if (!anyOrEmpty(m.sni, [&](const std::string& p) { return nameMatches(p, meta.sni); })) continue;
    if (!anyOrEmpty(m.hosts, [&](const std::string& p) { return nameMatches(p, meta.host); })) continue;
    if (!anyOrEmpty(m.ports, [&](const PortRange& p) { return port >= p.lo && port <= p.hi; })) continue;
    if (!anyOrEmpty(m.cidrs, [&](const Cidr& c) { return dst.valid() && c.contains(dst); })) continue;
    if (!anyOrEmpty(m.identities, [&](const std::string& id) {
          return meta.peer && (iequals(id, meta.peer->nodeId) || id == meta.peer->spiffe);
        })) {
      continue;
    }
    return decide(r.to, r.name, meta);
  }
  if (const ListenerConfig* l = cfg_->findListener(meta.listener)) {
    return decide(l->to, "", meta);
  }
  return RouteDecision{};
}

}  // namespace ugate
