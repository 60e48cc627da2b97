// MeshWorker (mesh_worker.h): one worker's mesh connections, their life (dial, TLS, ready, close) and the
// roles they serve (MeshDialer, MeshServer, MeshAssociations); the mesh listener kind and the module.
#include "mesh/mesh_worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/listener.h>
#include <ugate/socket_util.h>
#include <ugate/stream_bridge.h>
#include <ugate/tcp_stream.h>
#include <ugate/tls_provider.h>
#include "mesh/mesh_conn.h"
#include "mesh/mesh_module.h"
#include "mesh/mesh_stats.h"
#include "mesh/node_table.h"

namespace ugate::mesh {

// wallMs: wall-clock time for the admin endpoint (Unix milliseconds).
int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
MeshWorker::MeshWorker(WorkerContext& w, MeshShared& shared, http::H2Stats& h2Stats)
    : worker_(w), shared_(shared), h2Stats_(h2Stats) {}

MeshWorker::~MeshWorker() {
  // After every worker thread stopped (ModuleWorker's contract): nobody looks this slot up now.
  const auto i = static_cast<size_t>(worker_.index());
  if (i < shared_.workers.size() && shared_.workers[i] == this) shared_.workers[i] = nullptr;
  dialer_.closeBridged();  // before the connections their streams belong to
  for (auto& [h, c] : conns_) {
    if (c->registered) shared_.nodes.remove(c->nodeId, c->handle);
    if (c->h2) c->h2->close();
    if (c->mux) c->mux->close();
  }
  conns_.clear();
}

const Config& MeshWorker::cfg() const { return worker_.config(); }

MeshWorker::Conn* MeshWorker::findConn(uint64_t handle) {
  auto it = conns_.find(handle);
  return it == conns_.end() ? nullptr : it->second.get();
}

MeshWorker::Conn& MeshWorker::addConn(std::unique_ptr<Conn> c) {
  Conn& ref = *c;
  conns_[c->handle] = std::move(c);
  return ref;
}

std::string MeshWorker::selfId() const {
  const TlsProviderPtr& t = worker_.tls();
  return t ? t->nodeId() : std::string();
}

bool MeshWorker::isSelf(const std::string& node) const {
  std::string id = selfId();
  if (!id.empty() && upper(node) == id) return true;
  const std::string& name = cfg().node.name;
  if (name.empty() || name.size() != node.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (tolower(static_cast<unsigned char>(name[i])) != tolower(static_cast<unsigned char>(node[i]))) return false;
  }
  return true;
}

http::H2Options MeshWorker::h2Options() const {
  const MeshConfig& m = meshConfig(cfg());
  http::H2Options o;
  o.maxConcurrentStreams = m.maxStreamsPerConnection;
  o.streamWindow = m.streamWindow;
  o.connectionWindow = m.connectionWindow;
  o.pingInterval = m.pingInterval;
  o.pingTimeout = m.pingTimeout;
  o.stats = &h2Stats_;
  return o;
}

// ---------------------------------------------------------------------------------------------
// The connection table: dial, TLS, ready, fail, close.
void MeshWorker::dialConn(Conn& c) {
  c.state = Conn::State::Dialling;
  c.timer = worker_.reactor().createTimer([this, h = c.handle] {
    auto it = conns_.find(h);
    if (it != conns_.end()) {
      failConn(*it->second, Errc::ConnectTimeout, "no mesh connection to " + it->second->target.str() + " within " +
                                                      std::to_string(cfg().limits.connectTimeout.count()) + " ms");
    }
  });
  c.timer->enable(cfg().limits.connectTimeout);
  const uint64_t h = c.handle;
  if (!c.addrs.empty()) {  // preset (a neighbour's announced addresses)
    onConnTcp(c, -1);
    return;
  }
  c.dns = worker_.resolver().resolve(c.target.host, c.target.port, [this, h](Result<std::vector<SocketAddress>> r) {
    auto it = conns_.find(h);
    if (it == conns_.end()) return;
    Conn& cc = *it->second;
    cc.dns.reset();
    if (!r || r->empty()) {
      failConn(cc, Errc::DnsFailure, r ? cc.target.host + ": no addresses" : r.error().detail);
      return;
    }
    cc.addrs = std::move(*r);
    onConnTcp(cc, -1);
  });
}

UpstreamTlsConfig MeshWorker::clientTls(const Conn& c) const {
  const bool quic = c.transport != MeshTransport::H2;
  UpstreamTlsConfig t;
  if (c.kind == Conn::Kind::Association) {
    for (const auto& u : meshConfig(cfg()).upstreams) {
      if (u.name == c.upstream) t = meshUpstreamTls(u, quic ? kMeshQuicReverseAlpn : kMeshReverseAlpn);
    }
  } else {
    if (!c.pinnedId.empty() && !c.direct) t.peerIds = {c.pinnedId};
    t.alpn = {std::string(quic ? kMeshQuicAlpn : kMeshAlpn)};
    if (!SocketAddress::fromIp(c.target.host, c.target.port)) t.sni = c.target.host;
  }
  return t;
}

// onConnTcp: err -1 = start the next address; 0 = connected; else the connect failed.
void MeshWorker::onConnTcp(Conn& c, int err) {
  if (c.transport != MeshTransport::H2) {
    dialMux(c);
    return;
  }
  if (err == 0) {
    if (c.kind == Conn::Kind::Association && c.tcp->spliceFd() >= 0) {
      // Streams the gateway sends us come from it: they log its address as their source.
      c.tmeta.source = c.tmeta.upstreamAddr;
      c.tmeta.local = localAddress(c.tcp->spliceFd());
    }
    startClientTls(c, clientTls(c));
    return;
  }
  if (err > 0 && c.tcp) {
    deleteLater(worker_.reactor(), std::move(c.tcp));
  }
  while (c.nextAddr < c.addrs.size()) {
    const SocketAddress& a = c.addrs[c.nextAddr++];
    auto fd = startConnect(a);
    if (!fd) continue;
    c.tmeta.upstreamAddr = a;
    const uint64_t h = c.handle;
    c.tcp = std::make_unique<TcpStream>(worker_.reactor(), *fd, [this, h](int e) {
      auto it = conns_.find(h);
      if (it != conns_.end()) onConnTcp(*it->second, e == 0 ? 0 : e);
    });
    return;
  }
  failConn(c, err > 0 ? errcFromErrno(err) : Errc::ConnectRefused,
           "mesh connection to " + c.target.str() + ": " + (err > 0 ? strerror(err) : "no address accepted"));
}

void MeshWorker::dialMux(Conn& c) {
  MuxTransport* t = muxTransports().find("quic");
  if (t == nullptr) {
    failConn(c, Errc::NotSupported, "mesh to " + c.target.str() + " over QUIC: this build has no QUIC transport");
    return;
  }
  if (c.nextAddr >= c.addrs.size()) {
    failConn(c, Errc::ConnectRefused, "mesh to " + c.target.str() + " over QUIC: no address left to try");
    return;
  }
  MuxDialParams p;
  p.address = c.addrs[c.nextAddr++];
  p.tls = clientTls(c);
  p.sni = p.tls.sni;
  p.name = "mesh " + c.target.str();
  const MeshConfig& m = meshConfig(cfg());
  p.handshakeTimeout = cfg().tls.handshakeTimeout;
  // Under auto a QUIC attempt that gets no answer (UDP blocked) gives way to HTTP/2 sooner.
  if (c.autoFallback) p.handshakeTimeout = std::min(p.handshakeTimeout, Duration(3000));
  p.idleTimeout = m.pingInterval + m.pingTimeout;  // keepalive PINGs at a third of it
  p.maxStreams = m.maxStreamsPerConnection;
  p.streamWindow = m.streamWindow;
  p.connectionWindow = m.connectionWindow;
  c.tmeta.upstreamAddr = p.address;
  auto r = t->dial(worker_, p, c);
  if (!r) {
    failConn(c, r.error().code, "mesh to " + c.target.str() + " over QUIC: " + r.error().detail);
    return;
  }
  c.mux = std::move(*r);
  c.state = Conn::State::Handshaking;
}

std::string MeshWorker::pinMismatch(const Conn& c, const PeerIdentity* peer) {
  // A neighbour's connection must carry the node ID it announced (an announcement proves a key, not
  // trust); an Istio ambient HBONE hop, the workload's SPIFFE ID (any trusted certificate is not enough).
  if (c.direct && (!peer || upper(peer->nodeId) != upper(c.pinnedId))) {
    return "neighbour " + c.target.str() + ": its certificate carries node ID " +
           (peer ? peer->nodeId : std::string("(none)")) + ", not the announced " + c.pinnedId;
  }
  if (!c.pinnedSpiffe.empty() && (!peer || peer->spiffe != c.pinnedSpiffe)) {
    return c.target.str() + ": its certificate carries SPIFFE ID " +
           (peer && !peer->spiffe.empty() ? peer->spiffe : std::string("(none)")) + ", not the expected " +
           c.pinnedSpiffe;
  }
  return "";
}

void MeshWorker::onMuxReady(Conn& c) {
  if (c.state == Conn::State::Closed) return;
  if (std::string why = pinMismatch(c, c.mux->peer()); !why.empty()) {
    failConn(c, Errc::AuthFailed, "mesh over QUIC to " + why);
    return;
  }
  if (c.mux->peer()) c.peer = std::make_unique<PeerIdentity>(*c.mux->peer());
  if (c.kind == Conn::Kind::Association) {
    c.tmeta.source = c.mux->peerAddress();
    c.tmeta.local = c.mux->localAddress();
  }
  c.tmeta.alpn = c.mux->alpn();
  onConnReady(c);
}

void MeshWorker::onMuxClosed(Conn& c, Errc reason, const std::string& detail) {
  if (c.state == Conn::State::Closed) return;
  if (c.state != Conn::State::Ready) {  // the dial failed: its waiting opens hear why
    failConn(c, reason, detail);
    return;
  }
  onConnClosed(c, reason, detail);
}

void MeshWorker::startClientTls(Conn& c, const UpstreamTlsConfig& t) {
  const TlsProviderPtr& tls = worker_.tls();
  if (!tls) {
    failConn(c, Errc::AuthFailed, "mesh: no TLS credentials loaded");
    return;
  }
  c.state = Conn::State::Handshaking;
  const uint64_t h = c.handle;
  HandshakingStreamPtr hs = tls->client(
      t, t.sni, t.sni + "@" + c.tmeta.upstreamAddr.str(), std::move(c.tcp), worker_.reactor(),
      cfg().tls.handshakeTimeout, [this, h](TlsOutcome&& o) {
        auto it = conns_.find(h);
        if (it == conns_.end()) return;
        Conn& cc = *it->second;
        if (!o.ok) {
          failConn(cc, o.timedOut ? Errc::HandshakeTimeout : Errc::AuthFailed,
                   "mesh TLS to " + cc.target.str() + ": " + o.failure + ": " + o.detail);
          return;
        }
        if (std::string why = pinMismatch(cc, o.peer.get()); !why.empty()) {
          failConn(cc, Errc::AuthFailed, "mesh TLS to " + why);
          return;
        }
        cc.peer = std::move(o.peer);
        onConnReady(cc);
      });
  if (!hs) {
    failConn(c, Errc::AuthFailed,
             c.direct ? std::string("mesh: a neighbour's certificate cannot be verified: this node trusts no one "
                                    "(tls.trustedIds or a CA)")
                      : std::string("mesh: no TLS context for these settings (reload in progress?)"));
    return;
  }
  HandshakingStream* raw = hs.get();
  c.tls = std::move(hs);
  raw->start();
}

void MeshWorker::onConnReady(Conn& c) {
  if (c.timer) c.timer->disable();
  c.state = Conn::State::Ready;
  c.idleSince = worker_.reactor().now();
  if (!c.mux) {
    const bool server = c.kind == Conn::Kind::Association || c.kind == Conn::Kind::MeshServer;
    c.h2 = http::H2Connection::create(worker_.reactor(), std::move(c.tls),
                                      server ? http::H2Connection::Role::Server : http::H2Connection::Role::Client,
                                      h2Options(), c);
    c.h2->start();
  }
  if (c.kind == Conn::Kind::Association) {
    bump(shared_.counters.associationsUp);
    c.listener = "upstream:" + c.upstream;
    assoc_.onUp(c.upstream, c.peer ? c.peer->nodeId : std::string());
    spdlog::info("mesh: association to gateway {} ({}, {}) is up; it may now send us streams", c.target.str(),
                 c.peer ? c.peer->nodeId : "?", c.transportName());
  }
  dialer_.onConnReady(c);
}

void MeshWorker::failConn(Conn& c, Errc reason, const std::string& detail) {
  if (c.state == Conn::State::Closed) return;
  if (worker_.logBudget()) spdlog::warn("mesh: {}: {}", errcReason(reason), detail);
  c.closeWhy = std::string(errcReason(reason)) + ": " + detail;
  dialer_.onConnFailed(c, reason, detail);
  removeConn(c);
}

void MeshWorker::removeConn(Conn& c) {
  c.state = Conn::State::Closed;
  if (c.timer) c.timer->disable();
  c.dns.reset();
  if (c.registered) {
    shared_.nodes.remove(c.nodeId, c.handle);
    c.registered = false;
    spdlog::info("mesh: node {} unregistered", c.nodeId);
  }
  dialer_.onConnRemoved(c);
  if (c.kind == Conn::Kind::Association) {
    assoc_.onGone(c.upstream, c.handle, c.closeWhy, c.autoFallback);
  }
  if (c.h2 && !c.h2->closed()) c.h2->close();
  if (c.mux && !c.mux->closed()) c.mux->close();
  if (c.tls) c.tls->close(true);
  if (c.tcp) c.tcp->close(true);
  auto it = conns_.find(c.handle);
  if (it != conns_.end()) {
    std::unique_ptr<Conn> owned = std::move(it->second);
    conns_.erase(it);
    worker_.reactor().deferredDelete(std::move(owned));
  }
}

void MeshWorker::onConnClosed(Conn& c, Errc reason, const std::string& detail) {
  if (c.kind == Conn::Kind::Association || c.kind == Conn::Kind::NodeHeld) {
    spdlog::info("mesh: {} with {} closed: {}: {}", c.kind == Conn::Kind::Association ? "association" : "node association",
                 c.kind == Conn::Kind::Association ? c.target.str() : c.nodeId, errcReason(reason), detail);
  } else if ((reason == Errc::ProtocolError || reason == Errc::IdleTimeout) && worker_.logBudget()) {
    // A peer that broke HTTP/2 or stopped answering PINGs: say who and why.
    spdlog::warn("mesh: connection {} {} ({}) closed: {}: {}", c.kind == Conn::Kind::Pool ? "to" : "from",
                 c.kind == Conn::Kind::Pool ? c.target.str() : c.tmeta.source.str(), c.peer ? c.peer->nodeId : "?",
                 errcReason(reason), detail);
  }
  c.closeWhy = std::string(errcReason(reason)) + ": " + detail;
  removeConn(c);
}

// ---------------------------------------------------------------------------------------------
// The worker's mesh lifecycle: each config (the association role follows it), housekeeping, drain.
namespace {
constexpr Duration kHousekeeping{5000};
}  // namespace

// After each config: the housekeeping timer, and the association role follows the new upstreams.
void MeshWorker::configApplied(const Config&) {
  if (!housekeeping_) {
    housekeeping_ = worker_.reactor().createTimer([this] { housekeeping(); });
    housekeeping_->enable(kHousekeeping);
  }
  assoc_.apply();
}

void MeshWorker::housekeeping() {
  housekeeping_->enable(kHousekeeping);
  const MonotonicTime now = worker_.reactor().now();
  std::vector<Conn*> idle;
  for (auto& [h, c] : conns_) {
    if (c->kind != Conn::Kind::Pool || !c->ready()) continue;
    if (c->activeStreams() > 0) {
      c->idleSince = now;
    } else if (now - c->idleSince > meshConfig(cfg()).idleConnectionTimeout) {
      idle.push_back(c.get());
    }
  }
  for (Conn* c : idle) c->goAway();
}

void MeshWorker::drain() {
  draining_ = true;
  assoc_.drain();
  for (auto& [h, c] : conns_) c->goAway();
}

// ---------------------------------------------------------------------------------------------
void MeshModule::registerKinds(ListenerKindRegistry& kinds) {
  ListenerKindSpec spec;
  spec.name = "mesh";
  spec.streamKind = StreamKind::H2;
  spec.dialsRequested = true;
  auto tls = std::make_shared<ListenerTlsConfig>();
  tls->requireClientCert = true;
  tls->alpn = {std::string(kMeshAlpn), std::string(kMeshReverseAlpn)};
  spec.fixedTls = tls;
  spec.acceptConnection = [shared = &shared_](WorkerContext& w, const ListenerConfig& l, int fd, StreamMeta meta) {
    const auto i = static_cast<size_t>(w.index());
    MeshWorker* m = i < shared->workers.size() ? shared->workers[i] : nullptr;
    if (m == nullptr) {
      closeAbort(fd);
      return;
    }
    m->server().accept(l, fd, std::move(meta));
  };
  kinds.add(std::move(spec));
  // The mesh over QUIC: connections a `quic` listener accepted with ALPN ugate/ugater come here.
  muxTransports().setAcceptor([shared = &shared_](WorkerContext& w, const std::string& listener, MuxConnectionPtr c) {
    const auto i = static_cast<size_t>(w.index());
    MeshWorker* m = i < shared->workers.size() ? shared->workers[i] : nullptr;
    if (m != nullptr) m->server().acceptMux(listener, std::move(c));  // else dropped: it closes
  });
}

ModuleWorkerPtr MeshModule::newWorker(WorkerContext& w) {
  const auto i = static_cast<size_t>(w.index());
  while (shared_.h2.size() <= i) shared_.h2.emplace_back();  // a deque: no element moves
  auto m = std::make_unique<MeshWorker>(w, shared_, shared_.h2[i]);
  if (shared_.workers.size() <= i) shared_.workers.resize(i + 1, nullptr);
  shared_.workers[i] = m.get();
  return m;
}

}  // namespace ugate::mesh
