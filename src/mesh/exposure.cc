#include "mesh/exposure.h"

#include <ugate/text.h>

#include <algorithm>

namespace ugate::mesh {

namespace {

bool covers(const MeshExpose& e, uint16_t port) {
  return std::any_of(e.ports.begin(), e.ports.end(), [port](const PortRange& r) { return r.contains(port); });
}

bool allows(const MeshExpose& e, const PeerIdentity& p) {
  return std::any_of(e.allow.begin(), e.allow.end(), [&p](const std::string& a) {
    if (a == "*") return true;
    if (a.starts_with("spiffe://")) return a == p.spiffe;
    return iequals(a, p.nodeId);
  });
}

// proxyListenerOn: a listener that proxies to destinations its clients name (socks5, http-connect)
// reachable on 127.0.0.1:port, where a mesh stream to this node's port lands.
const ListenerConfig* proxyListenerOn(const Config& c, uint16_t port) {
  for (const ListenerConfig& l : c.listeners) {
    if (!l.spec || !l.spec->dialsRequested || l.spec->acceptConnection || l.spec->datagram) continue;
    if (l.address.port() == port && (l.address.isLoopback() || l.address.isAny())) return &l;
  }
  return nullptr;
}

}  // namespace

std::string peerName(const PeerIdentity* peer) {
  if (!peer) return "an anonymous peer";
  return peer->spiffe.empty() ? peer->nodeId : peer->spiffe;
}

bool isLoopbackHost(std::string_view host) {
  if (iequals(host, "localhost")) return true;
  auto a = SocketAddress::fromIp(host, 0);
  return a && a->isLoopback();
}

ExposureVerdict checkExposure(const Config& c, uint16_t port, const PeerIdentity* peer) {
  const std::string p = std::to_string(port);
  if (c.admin.enabled && port == c.admin.address.port()) {
    return {false, "port " + p + " is the admin port, which is never exposed to the mesh"};
  }
  if (!peer || (peer->nodeId.empty() && peer->spiffe.empty())) {
    return {false, "port " + p + ": the stream has no authenticated identity"};
  }
  const ListenerConfig* proxy = proxyListenerOn(c, port);
  bool portListed = false, peerAllowed = false;
  for (const MeshExpose& e : meshConfig(c).expose) {
    if (!covers(e, port)) continue;
    portListed = true;
    if (!allows(e, *peer)) continue;
    peerAllowed = true;
    if (!proxy || e.allowProxy) return {true, {}};
  }
  if (!portListed) return {false, "port " + p + " is not exposed (mesh.expose)"};
  if (!peerAllowed) return {false, "port " + p + " is not exposed to " + peerName(peer) + " (mesh.expose allow)"};
  return {false, "port " + p + " is the " + proxy->kind + " listener '" + proxy->name +
                     "', a proxy: its mesh.expose entry needs \"allowProxy\": true"};
}

}  // namespace ugate::mesh
