// The mesh module's config sections ("upstreams", "authorize", "mesh"): the only file of the mesh
// that sees JSON. Core hands them over through Module::parseConfig; what core must know of them
// (route sources, gateways, TLS) goes into Config::fromModules.
#include "mesh/mesh_config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include <ugate/config_json.h>

#include "mesh/mesh_module.h"

namespace ugate::mesh {

namespace {

using json = nlohmann::json;
using namespace cfgjson;  // NOLINT: the config helpers, in this parsing file only

// parseExpose: mesh.expose, the loopback ports mesh peers may reach. The admin port can never be
// exposed (it has no authentication).
void parseExpose(const json& j, const std::string& path, const Config& c, MeshConfig& m) {
  if (!j.is_array()) fail(path, "expected an array of {\"port\", \"allow\"} objects, got " + typeName(j));
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    if (!j[i].is_object()) fail(p, "expected an object, got " + typeName(j[i]));
    checkKeys(j[i], p, {"port", "allow", "allowProxy"});
    if (!j[i].contains("port")) fail(p + ".port", "required (a port, \"lo-hi\" or a list of them)");
    if (!j[i].contains("allow")) {
      fail(p + ".allow", "required: the node IDs or spiffe:// IDs that may reach the port, or \"*\" for any authenticated peer");
    }
    MeshExpose e;
    e.ports = parsePorts(j[i]["port"], p + ".port");
    e.allow = parsePeerIds(j[i]["allow"], p + ".allow", true);
    if (e.allow.empty()) fail(p + ".allow", "must name at least one peer (or \"*\")");
    if (j[i].contains("allowProxy")) e.allowProxy = getBool(j[i]["allowProxy"], p + ".allowProxy");
    if (c.admin.enabled) {
      const uint16_t admin = c.admin.address.port();
      for (const PortRange& r : e.ports) {
        if (r.contains(admin)) {
          fail(p + ".port", "covers the admin port " + std::to_string(admin) +
                                " (admin.address), which can never be exposed: it has no authentication");
        }
      }
    }
    m.expose.push_back(std::move(e));
  }
}

// parseUpstream parses upstreams[i] (path p); its name must differ from those parsed before it.
void parseUpstream(const json& j, const std::string& p, const Config& c, MeshConfig& m) {
  checkKeys(j, p, {"name", "address", "id", "transport", "quicAddress"});
  UpstreamConfig u;
  u.name = j.contains("name") ? getString(j["name"], p + ".name") : p;
  if (!j.contains("address")) fail(p + ".address", "required (the gateway's mesh host:port)");
  std::string a = getString(j["address"], p + ".address");
  auto hp = HostPort::parse(a);
  if (!hp || hp->port == 0) fail(p + ".address", "'" + a + "' is not host:port");
  u.address = *hp;
  if (j.contains("id")) {
    auto ids = parseNodeIds(j["id"], p + ".id");
    if (ids.size() != 1) fail(p + ".id", "one node ID");
    u.id = ids[0];
  }
  if (j.contains("transport")) {
    std::string t = getString(j["transport"], p + ".transport");
    if (t == "h2") {
      u.transport = MeshTransport::H2;
    } else if (t == "quic") {
      u.transport = MeshTransport::Quic;
    } else if (t == "auto") {
      u.transport = MeshTransport::Auto;
    } else {
      fail(p + ".transport", "'" + t + "': one of h2, quic, auto");
    }
  }
  u.quicAddress = u.address;
  if (j.contains("quicAddress")) {
    std::string q = getString(j["quicAddress"], p + ".quicAddress");
    auto qp = HostPort::parse(q);
    if (!qp || qp->port == 0) fail(p + ".quicAddress", "'" + q + "' is not host:port");
    if (u.transport == MeshTransport::H2) fail(p + ".quicAddress", "needs transport quic or auto");
    u.quicAddress = *qp;
  }
  for (const auto& o : m.upstreams) {
    if (o.name == u.name) fail(p + ".name", "duplicate upstream name '" + u.name + "'");
  }
  if (c.findListener(u.name)) {
    fail(p + ".name", "'" + u.name + "' is also a listener's name: routes' match.listener names either");
  }
  m.upstreams.push_back(std::move(u));
}

void parseAuthorize(const json& a, MeshConfig& m) {
  if (a.is_array() && a.empty()) return;  // [] is accepted as "nothing authorized" (older configs)
  checkKeys(a, "authorize", {"reverseAccept", "reverseAcceptTrustDomain"});
  if (a.contains("reverseAccept")) m.reverseAccept = parseNodeIds(a["reverseAccept"], "authorize.reverseAccept");
  if (a.contains("reverseAcceptTrustDomain")) {
    m.reverseAcceptTrustDomain = getBool(a["reverseAcceptTrustDomain"], "authorize.reverseAcceptTrustDomain");
  }
}

void parseMeshSection(const json& j, const Config& c, MeshConfig& m) {
  checkKeys(j, "mesh", {"maxHops", "maxStreamsPerConnection", "streamWindow", "connectionWindow",
                        "pingInterval", "pingTimeout", "reconnectMin", "reconnectMax",
                        "idleConnectionTimeout", "trustedGateways", "expose"});
  if (j.contains("trustedGateways")) {
    m.trustedGateways = parsePeerIds(j["trustedGateways"], "mesh.trustedGateways", false);
  }
  if (j.contains("expose")) parseExpose(j["expose"], "mesh.expose", c, m);
  if (j.contains("maxHops")) m.maxHops = static_cast<uint32_t>(getInt(j["maxHops"], "mesh.maxHops", 1, 32));
  if (j.contains("maxStreamsPerConnection")) {
    m.maxStreamsPerConnection =
        static_cast<uint32_t>(getInt(j["maxStreamsPerConnection"], "mesh.maxStreamsPerConnection", 1, 100000));
  }
  if (j.contains("streamWindow")) {
    m.streamWindow = static_cast<uint32_t>(getInt(j["streamWindow"], "mesh.streamWindow", 65535, (1u << 31) - 1));
  }
  if (j.contains("connectionWindow")) {
    m.connectionWindow =
        static_cast<uint32_t>(getInt(j["connectionWindow"], "mesh.connectionWindow", 65535, (1u << 31) - 1));
  }
  if (j.contains("pingInterval")) m.pingInterval = getDuration(j["pingInterval"], "mesh.pingInterval");
  if (j.contains("pingTimeout")) m.pingTimeout = getDuration(j["pingTimeout"], "mesh.pingTimeout");
  if (j.contains("reconnectMin")) m.reconnectMin = getDuration(j["reconnectMin"], "mesh.reconnectMin");
  if (j.contains("reconnectMax")) m.reconnectMax = getDuration(j["reconnectMax"], "mesh.reconnectMax");
  if (j.contains("idleConnectionTimeout")) {
    m.idleConnectionTimeout = getDuration(j["idleConnectionTimeout"], "mesh.idleConnectionTimeout");
  }
  if (m.reconnectMin.count() <= 0 || m.reconnectMax < m.reconnectMin) {
    fail("mesh.reconnectMax", "must be at least mesh.reconnectMin (which must be positive)");
  }
}

}  // namespace

const MeshConfig& meshConfig(const Config& c) {
  static const MeshConfig kDefaults;
  const MeshConfig* m = c.moduleConfig<MeshConfig>("mesh");
  return m ? *m : kDefaults;
}

bool isMeshHost(const Config& c, std::string_view host, std::string* nodeOut) {
  const std::string& suffix = c.node.meshSuffix;
  if (suffix.empty() || host.size() < suffix.size() + 2) return false;
  const size_t dot = host.size() - suffix.size() - 1;
  if (host[dot] != '.') return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (tolower(static_cast<unsigned char>(host[dot + 1 + i])) != tolower(static_cast<unsigned char>(suffix[i]))) {
      return false;
    }
  }
  std::string_view label = host.substr(0, dot);
  if (label.find('.') != std::string_view::npos) return false;  // one label: the node ID or name
  if (nodeOut) *nodeOut = std::string(label);
  return true;
}

std::string_view transportName(MeshTransport t) {
  switch (t) {
    case MeshTransport::H2: return "h2";
    case MeshTransport::Quic: return "quic";
    case MeshTransport::Auto: return "auto";
  }
  return "h2";
}

UpstreamTlsConfig meshUpstreamTls(const UpstreamConfig& u, std::string_view alpn) {
  UpstreamTlsConfig t;
  if (!u.id.empty()) t.peerIds = {u.id};
  t.alpn = {std::string(alpn)};
  if (!SocketAddress::fromIp(u.address.host, u.address.port)) t.sni = u.address.host;
  return t;
}

std::vector<ModuleClientTls> meshClientTls(const Config& c, const MeshConfig& m) {
  std::vector<ModuleClientTls> out;
  for (const auto& u : m.upstreams) {
    out.push_back({meshUpstreamTls(u, kMeshReverseAlpn), "upstreams[]"});
    out.push_back({meshUpstreamTls(u, kMeshAlpn), "upstreams[]"});
    if (u.transport != MeshTransport::H2) {
      out.push_back({meshUpstreamTls(u, kMeshQuicReverseAlpn), "upstreams[]"});
      out.push_back({meshUpstreamTls(u, kMeshQuicAlpn), "upstreams[]"});
    }
  }
  for (const auto& r : c.routes) {
    if (r.via.empty()) continue;
    bool named = std::any_of(m.upstreams.begin(), m.upstreams.end(),
                             [&](const UpstreamConfig& u) { return u.name == r.via; });
    if (!named) {
      UpstreamTlsConfig t;
      t.alpn = {std::string(kMeshAlpn)};
      out.push_back({std::move(t), "routes[].via"});
      break;
    }
  }
  // Neighbours found on a link (ugate/peer_directory.h) are dialled with the node's trust (their
  // certificate must be trusted) and their announced ID checked after the handshake: an
  // announcement proves a key, not that we trust it. Built when there is something to trust.
  UpstreamTlsConfig direct;
  direct.alpn = {std::string(kMeshAlpn)};
  out.push_back({std::move(direct), "mesh (direct dials of neighbours)", true});
  UpstreamTlsConfig directQuic;  // neighbours that announce the mesh over QUIC
  directQuic.alpn = {std::string(kMeshQuicAlpn)};
  out.push_back({std::move(directQuic), "mesh (direct dials of neighbours over QUIC)", true});
  return out;
}

std::vector<std::string> MeshModule::configSections() const { return {"upstreams", "authorize", "mesh"}; }

void MeshModule::parseConfig(const json& root, Config& c, ConfigErrors& errs) const {
  auto m = std::make_shared<MeshConfig>();
  // Before the routes (core parses them next): a route may go via an upstream or match its streams.
  const std::set<std::string> broken =
      eachElement(root, "upstreams", errs, [&](const json& j, size_t, const std::string& p) { parseUpstream(j, p, c, *m); });
  if (root.contains("authorize")) errs.attempt([&] { parseAuthorize(root["authorize"], *m); });
  if (root.contains("mesh")) errs.attempt([&] { parseMeshSection(root["mesh"], c, *m); });
  ModuleNeeds& n = c.fromModules;
  // Nodes allowed to register and the gateways we associate with are trusted by their node IDs.
  for (const auto& id : m->reverseAccept) n.trustedIds.push_back(id);
  for (const auto& u : m->upstreams) {
    if (!u.id.empty()) n.trustedIds.push_back(u.id);
    // A route's match.listener names an upstream's streams as "gw1" or "upstream:gw1" (meta.listener).
    n.routeSources[u.name] = "upstream:" + u.name;
    n.routeSources["upstream:" + u.name] = "upstream:" + u.name;
    n.gateways.insert(u.name);
  }
  for (const auto& b : broken) {
    n.broken.insert(b);
    n.broken.insert("upstream:" + b);
  }
  if (!m->upstreams.empty()) n.tls = true;
  c.modules[std::string(name())] = std::move(m);
}

void MeshModule::finishConfig(Config& c, ConfigErrors&) const {
  const MeshConfig& m = meshConfig(c);
  for (const auto& r : c.routes) {
    if (!r.via.empty()) c.fromModules.tls = true;  // a route through a gateway: mutual TLS
  }
  for (auto& t : meshClientTls(c, m)) c.fromModules.clientTls.push_back(std::move(t));
}

}  // namespace ugate::mesh
