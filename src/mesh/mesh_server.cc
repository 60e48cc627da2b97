// The server role (mesh_server.h): mutual TLS accept, reverse-accept registrations (ALPN h2r) and
// CONNECT admission (ALPN h2): who may ask for what, what identity and trace context a stream
// carries, and the core session that serves it.
#include <algorithm>

#include <spdlog/spdlog.h>

#include <ugate/ambient.h>
#include <ugate/text.h>
#include <ugate/tls_provider.h>

#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>
#include "mesh/exposure.h"
#include "mesh/mesh_conn.h"
#include "mesh/mesh_server.h"
#include "mesh/mesh_stats.h"
#include "mesh/node_table.h"
#include "http/trace_context.h"

namespace ugate::mesh {

namespace {

std::vector<std::string> splitHops(const std::string& v) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < v.size()) {
    size_t c = v.find(',', pos);
    std::string h = v.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    while (!h.empty() && h.front() == ' ') h.erase(0, 1);
    while (!h.empty() && h.back() == ' ') h.pop_back();
    if (!h.empty()) out.push_back(upper(h));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return out;
}

// assertableIdentity: an x-ugate-peer value names a node ID (52 base32 characters) or a SPIFFE ID.
bool assertableIdentity(const std::string& v) {
  if (v.rfind("spiffe://", 0) == 0) return v.size() > 9;
  return isNodeId(v);
}

// nameFromPeer: the node name a certificate asserts: the first label of its first DNS SAN.
std::string nameFromPeer(const PeerIdentity& p) {
  if (!p.dnsSans.empty()) {
    const std::string& d = p.dnsSans[0];
    return d.substr(0, d.find('.'));
  }
  return {};
}

}  // namespace

// Inbound: the mesh listener.
const Config& MeshServer::cfg() const { return hub_.cfg(); }

void MeshServer::accept(const ListenerConfig& l, int fd, StreamMeta meta) {
  const TlsProviderPtr& tls = worker_.tls();
  if (hub_.draining()) {
    closeAbort(fd);
    return;
  }
  if (!tls || !l.tls) {
    closeAbort(fd);
    onTlsAcceptFailed(l.name, meta, Errc::AuthFailed, "TLS from client: no_credentials: no TLS credentials loaded (see the startup log)");
    return;
  }
  const uint64_t h = shared_.nodes.nextHandle();
  auto c = std::make_unique<Conn>(hub_, Conn::Kind::MeshServer, h);
  c->listener = l.name;
  c->tmeta = std::move(meta);
  c->state = Conn::State::Handshaking;
  Conn* raw = c.get();
  hub_.addConn(std::move(c));
  HandshakingStreamPtr hs = tls->server(*l.tls, std::make_unique<TcpStream>(worker_.reactor(), fd), worker_.reactor(),
                                        cfg().tls.handshakeTimeout, [this, h](TlsOutcome&& o) {
                                          auto it = hub_.conns().find(h);
                                          if (it == hub_.conns().end()) return;
                                          Conn& cc = *it->second;
                                          if (!o.ok) {
                                            onTlsAcceptFailed(cc.listener, cc.tmeta,
                                                              o.timedOut ? Errc::HandshakeTimeout : Errc::AuthFailed,
                                                              "TLS from client: " + o.failure + ": " + o.detail);
                                            hub_.removeConn(cc);
                                            return;
                                          }
                                          cc.peer = std::move(o.peer);
                                          cc.tmeta.alpn = o.alpn;
                                          onTlsAccepted(cc);
                                        });
  if (!hs) {
    onTlsAcceptFailed(raw->listener, raw->tmeta, Errc::AuthFailed,
                      "TLS from client: no_context: no context for this listener's settings (reload in progress?)");
    hub_.removeConn(*raw);
    return;
  }
  HandshakingStream* s = hs.get();
  raw->tls = std::move(hs);
  s->start();
}

void MeshServer::onTlsAcceptFailed(const std::string& listener, StreamMeta& meta, Errc reason, std::string detail) {
  ListenerStats& st = worker_.stats(listener);
  st.accepted.add();
  st.closes[static_cast<size_t>(reason)].add();
  meta.kind = StreamKind::Tls;  // the connection never carried HTTP/2
  meta.closeReason = reason;
  meta.closeDetail = std::move(detail);
  worker_.accessLog().log(meta);
  uint64_t left = 0;
  if (tlsFailureLog_[listener].allow(worker_.reactor().now(), left)) {
    spdlog::warn("mesh: listener {}: {} from {}: {}{}", listener, errcReason(reason), meta.source.str(),
                 meta.closeDetail,
                 left ? " (and " + std::to_string(left) +
                            " more on this worker since the last such line; each is in the access log and "
                            "ugate_listener_closes_total)"
                      : "");
  }
}

bool MeshServer::authorizeAssociation(Conn& c, std::string& why) const {
  if (!c.peer || c.peer->nodeId.empty()) {
    why = "no authenticated node identity";
    return false;
  }
  for (const auto& id : meshConfig(cfg()).reverseAccept) {
    if (id == upper(c.peer->nodeId)) return true;
  }
  const std::string& td = cfg().node.trustDomain;
  if (meshConfig(cfg()).reverseAcceptTrustDomain && !td.empty() &&
      c.peer->spiffe.rfind("spiffe://" + td + "/", 0) == 0) {
    return true;
  }
  why = "node " + c.peer->nodeId + " is not in authorize.reverseAccept" +
        (td.empty() ? std::string() : " and has no spiffe://" + td + "/ identity");
  return false;
}

void MeshServer::acceptMux(const std::string& listener, MuxConnectionPtr mux) {
  if (hub_.draining()) return;  // dropped: the connection closes
  const uint64_t h = shared_.nodes.nextHandle();
  auto c = std::make_unique<Conn>(hub_, Conn::Kind::MeshServer, h);
  c->listener = listener;
  c->transport = MeshTransport::Quic;
  c->tmeta.source = mux->peerAddress();
  c->tmeta.local = mux->localAddress();
  c->tmeta.alpn = mux->alpn();
  if (mux->peer()) c->peer = std::make_unique<PeerIdentity>(*mux->peer());
  c->state = Conn::State::Handshaking;
  Conn& ref = hub_.addConn(std::move(c));
  ref.mux = std::move(mux);
  onTlsAccepted(ref);
  // Streams that arrived with the handshake are delivered now (unless the connection was refused).
  if (Conn* still = hub_.findConn(h); still != nullptr && still->mux) still->mux->setCallbacks(still);
}

void MeshServer::onTlsAccepted(Conn& c) {
  if (c.tmeta.alpn != kMeshReverseAlpn && c.tmeta.alpn != kMeshQuicReverseAlpn) {
    hub_.onConnReady(c);  // MeshServer: the peer sends CONNECTs
    return;
  }
  // A node registers its association: we become the HTTP/2 client on its connection.
  std::string why;
  if (!authorizeAssociation(c, why)) {
    bump(shared_.counters.associationsRefused);
    spdlog::warn("mesh: association from {} refused: {}", c.tmeta.source.str(), why);
    hub_.removeConn(c);
    return;
  }
  NodeEntry e;
  e.id = upper(c.peer->nodeId);
  e.name = nameFromPeer(*c.peer);
  e.spiffe = c.peer->spiffe;
  e.worker = worker_.index();
  e.handle = c.handle;
  e.peer = c.tmeta.source;
  e.sinceUnixMs = wallMs();
  auto added = shared_.nodes.add(e);
  if (!added) {
    bump(shared_.counters.associationsRefused);
    spdlog::warn("mesh: association of node {} from {} refused: {}", e.id, c.tmeta.source.str(),
                 added.error().detail);
    hub_.removeConn(c);
    return;
  }
  c.kind = Conn::Kind::NodeHeld;
  c.nodeId = e.id;
  c.registered = true;
  bump(shared_.counters.associationsRegistered);
  spdlog::info("mesh: node {} ({}) registered from {}", e.id, e.name.empty() ? "no name" : e.name,
               c.tmeta.source.str());
  if (uint64_t old = *added; old != 0) {
    // The newest association of a node wins; the older one drains wherever it lives.
    bump(shared_.counters.associationsReplaced);
    for (MeshWorker* m : shared_.workers) {
      if (m) m->worker().reactor().post([m, old] { m->server().goAwayAssociation(old); });
    }
  }
  hub_.onConnReady(c);
}

void MeshServer::goAwayAssociation(uint64_t handle) {
  auto it = hub_.conns().find(handle);
  if (it == hub_.conns().end()) return;
  Conn& c = *it->second;
  c.registered = false;  // the table already points at the newer association
  c.goAway();
}

bool MeshServer::mayAssertIdentity(const Conn& c) const {
  if (!c.peer) return false;
  if (c.kind == Conn::Kind::Association) return true;  // the gateway we dialled (pinned or CA-verified)
  const std::string id = upper(c.peer->nodeId);
  for (const auto& g : meshConfig(cfg()).trustedGateways) {
    if (g == id || (!c.peer->spiffe.empty() && g == c.peer->spiffe)) return true;
  }
  return false;
}

std::unique_ptr<PeerIdentity> MeshServer::originIdentity(const Conn& c, const MuxInbound& s) {
  const std::string asserted = muxField(s.fields, kPeerHeader);
  if (!asserted.empty()) {
    const char* why = !mayAssertIdentity(c)            ? "the peer is not a trusted gateway (mesh.trustedGateways)"
                      : !assertableIdentity(asserted) ? "neither a node ID nor a spiffe:// ID"
                                                      : nullptr;
    if (why == nullptr) {
      auto p = std::make_unique<PeerIdentity>();
      if (asserted.rfind("spiffe://", 0) == 0) {
        p->spiffe = asserted;
        // The same originator's node ID, when the gateway knew it (a malformed one is left out).
        if (std::string id = muxField(s.fields, kPeerIdHeader); id.size() == 52 && assertableIdentity(id)) p->nodeId = upper(id);
      } else {
        p->nodeId = upper(asserted);
      }
      return p;
    }
    bump(shared_.counters.identityIgnored);
    if (worker_.logBudget()) {
      spdlog::warn("mesh: {} from {} ({}): ignored {} '{}': {}; the stream carries the peer's own identity",
                   s.authority, c.tmeta.source.str(), c.peer ? c.peer->nodeId : "?", kPeerHeader, asserted, why);
    }
  }
  return c.peer ? std::make_unique<PeerIdentity>(*c.peer) : nullptr;
}

void MeshServer::takeCarriedHeaders(const Conn& c, const MuxInbound& s, StreamMeta& meta) {
  auto keep = [&meta](std::string_view k, std::string v) {
    if (!meta.headers) meta.headers = std::make_unique<http::Headers>();  // most streams carry none
    meta.headers->emplace_back(std::string(k), std::move(v));
  };
  auto drop = [&](std::string_view k, const std::string& v, const char* why) {
    bump(shared_.counters.traceHeadersDropped);
    if (worker_.logBudget()) {
      spdlog::warn("mesh: {} from {}: dropped {} ({}): {}", s.authority, c.tmeta.source.str(), k, why,
                   v.substr(0, 128));
    }
  };
  // Repeated fields are one list (RFC 9110 5.3), joined with ',' (a repeated traceparent, not a
  // list, then fails its check, as the specification wants).
  auto field = [&s](std::string_view name) {
    std::string out;
    for (const auto& [n, v] : s.fields) {
      if (n != name) continue;
      if (!out.empty()) out += ',';
      out += v;
    }
    return out;
  };
  for (http::TraceField& f : http::takeTraceContext(field)) {
    if (f.why) {
      drop(f.name, f.value, f.why);
    } else {
      keep(f.name, std::move(f.value));
    }
  }
  if (std::string hops = muxField(s.fields, kHopsHeader); !hops.empty()) keep(kHopsHeader, std::move(hops));
}

void MeshServer::onTunnelRequest(Conn& c, http::H2StreamPtr s) {
  // An HTTP/2 CONNECT is a mesh stream like any other once its method is checked.
  MuxInbound in;
  in.authority = s->authority();
  in.fields = s->headers();
  http::H2Stream* hs = s.get();
  in.respond = [hs](int status, const MuxFields& fields, const std::string& body) { hs->respond(status, fields, body); };
  const bool connect = s->method() == "CONNECT";
  in.stream = std::move(s);
  admit(c, std::move(in), connect);
}

void MeshServer::admit(Conn& c, MuxInbound in, bool connectMethod) {
  StreamMeta meta;
  meta.id = worker_.nextStreamId();
  meta.kind = c.mux ? StreamKind::Quic : StreamKind::H2;
  meta.listener = c.listener;
  meta.source = c.tmeta.source;
  meta.local = c.tmeta.local;
  meta.start = worker_.reactor().now();
  meta.alpn = c.tmeta.alpn;
  // refuse answers the stream with `status` and x-ugate-error, counts it by reason (mesh and
  // listener counters), logs peer, target and reason, and writes the stream's access-log line.
  auto refuse = [&](int status, Errc why, const std::string& detail) {
    bump(shared_.counters.streamsRefused[static_cast<size_t>(why)]);
    ListenerStats& ls = worker_.stats(meta.listener);
    ls.accepted.add();
    ls.closes[static_cast<size_t>(why)].add();
    if (worker_.logBudget()) {
      spdlog::warn("mesh: {} from {} ({}) over {}: {} {}: {}", in.authority.substr(0, 256), c.tmeta.source.str(),
                   meta.peer ? peerName(meta.peer.get()) : (c.peer ? c.peer->nodeId : "?"), c.transportName(), status,
                   errcReason(why), detail);
    }
    in.respond(status, {{std::string(kErrorHeader), std::string(errcReason(why))}}, detail + "\n");
    if (meta.host.empty()) meta.host = in.authority.substr(0, 256);
    meta.closeReason = why;
    meta.closeDetail = detail;
    worker_.accessLog().log(meta);
  };
  if (hub_.draining()) return refuse(503, Errc::Shutdown, "draining");
  if (!connectMethod) return refuse(405, Errc::NotSupported, "only CONNECT is served here");
  auto hp = HostPort::parse(in.authority);
  if (!hp) return refuse(400, Errc::ProtocolError, "bad :authority '" + in.authority.substr(0, 256) + "'");
  meta.host = hp->host;
  meta.port = hp->port;
  if (auto a = SocketAddress::fromIp(hp->host, hp->port)) meta.originalDst = *a;
  std::vector<std::string> hops = splitHops(muxField(in.fields, kHopsHeader));
  const std::string self = hub_.selfId();
  // The hop list is believed from every peer: it can only get the peer's own stream refused, and
  // ignoring it would let a loop through a gateway we do not trust go on forever.
  if (std::find(hops.begin(), hops.end(), self) != hops.end()) {
    bump(shared_.counters.loopsRefused);
    return refuse(508, Errc::LoopDetected, "loop: this node already forwarded the stream");
  }
  if (hops.size() >= meshConfig(cfg()).maxHops) {
    bump(shared_.counters.hopsExceeded);
    return refuse(508, Errc::LoopDetected,
                  "circuit too long: " + std::to_string(hops.size()) + " gateways already forwarded the stream, mesh.maxHops=" +
                      std::to_string(meshConfig(cfg()).maxHops));
  }
  meta.peer = originIdentity(c, in);
  takeCarriedHeaders(c, in, meta);
  // Istio ambient (ugate/ambient.h): a stream to a workload the control plane described passes its
  // Authorization policies first (principal = the peer's SPIFFE ID).
  if (auto amb = ambientDirectory().current(); amb && meta.originalDst.valid()) {
    const AmbientVerdict v =
        ambientAuthorize(*amb, meta.originalDst, meta.peer ? std::string_view(meta.peer->spiffe) : "", meta.source);
    if (v.applies && !v.allowed) {
      ambientDirectory().inboundDenied.fetch_add(1, std::memory_order_relaxed);
      return refuse(403, Errc::NotExposed, "ambient: " + v.why);
    }
    if (v.applies) ambientDirectory().inboundAllowed.fetch_add(1, std::memory_order_relaxed);
  }

  // Exposure (docs/SECURITY.md): the routes see the stream first (match.listener is the mesh
  // listener, or "upstream:<name>" over our association; match.identity the peer), and a reject
  // wins; then a stream for one of this node's own ports needs a mesh.expose entry for that peer.
  std::string node;
  const bool meshHost = isMeshHost(cfg(), hp->host, &node);
  const bool own = meshHost && hub_.isSelf(node);
  if (c.kind == Conn::Kind::Association && !own) {
    return refuse(403, Errc::NotExposed,
                  "over its association this node serves only its own ports, not " + hp->str());
  }
  const RouteDecision d = worker_.router().route(meta);
  if (d.action == RouteDecision::Action::Reject) {
    meta.route = routeLogName(d, meta.listener);
    return refuse(403, Errc::RouteRejected, "rejected by route " + meta.route);
  }
  if (own || isLoopbackHost(hp->host)) {
    ExposureVerdict v = checkExposure(cfg(), hp->port, meta.peer.get());
    if (!v.allowed) return refuse(403, Errc::NotExposed, v.why);
  }
  // A mesh stream to a non-mesh host needs an explicit route (the mesh is not an open proxy).
  if (!meshHost && d.route.empty()) {
    return refuse(403, Errc::RouteRejected, "no route allows " + hp->str() + " from the mesh");
  }
  bump(shared_.counters.streamsAccepted);
  if (c.mux) bump(shared_.counters.quicStreamsAccepted);
  const ListenerConfig* l = cfg().findListener(c.listener);
  const LimitsConfig& lim = cfg().limits;
  SessionStart start;
  start.connectTimeout = l && l->connectTimeout ? *l->connectTimeout : lim.connectTimeout;
  start.idleTimeout = l && l->idleTimeout ? *l->idleTimeout : lim.idleTimeout;
  start.sniffTimeout = lim.sniffTimeout;
  // Over our association the stream goes to our own loopback port unless a route names a target.
  if (c.kind == Conn::Kind::Association && d.action != RouteDecision::Action::Dial) start.forcedTarget = *hp;
  start.onResult = [respond = std::move(in.respond)](Errc e, const StreamMeta& m) {
    if (e == Errc::Ok) {
      respond(200, {}, std::string());
    } else {
      respond(tunnelStatus(e), {{std::string(kErrorHeader), std::string(errcReason(e))}},
              m.closeDetail.empty() ? std::string() : m.closeDetail + "\n");
    }
  };
  worker_.startSession(std::move(in.stream), std::move(meta), std::move(start));
}

}  // namespace ugate::mesh
