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

namespace {

const std::string* metaHeader(const StreamMeta& m, std::string_view name) {
  if (!m.headers) return nullptr;
  for (const auto& [k, v] : *m.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

}  // namespace

int errcToStatus(Errc e) {
  switch (e) {
    case Errc::Ok: return 200;
    case Errc::RouteRejected:
    case Errc::NotExposed:
    case Errc::AuthFailed: return 403;
    case Errc::NoRoute: return 404;
    case Errc::ConnectTimeout:
    case Errc::HandshakeTimeout: return 504;
    case Errc::LoopDetected: return 508;
    case Errc::Shutdown:
    case Errc::ResourceExhausted: return 503;
    default: return 502;
  }
}

Errc statusToErrc(int status, const std::string& reason) {
  // The gateway names its reason in x-ugate-error; keep it when it is one of ours.
  for (size_t i = 1; i < static_cast<size_t>(Errc::Io) + 1; ++i) {
    if (reason == errcReason(static_cast<Errc>(i))) return static_cast<Errc>(i);
  }
  switch (status) {
    case 403: return Errc::RouteRejected;
    case 404: return Errc::NoRoute;
    case 504: return Errc::ConnectTimeout;
    case 508: return Errc::LoopDetected;
    case 503: return Errc::ResourceExhausted;
    case 0: return Errc::Reset;
    default: return Errc::ConnectRefused;
  }
}

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
  bridged_.clear();
  for (auto& [h, c] : conns_) {
    if (c->registered) shared_.nodes.remove(c->nodeId, c->handle);
    if (c->h2) c->h2->close();
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

http::Headers MeshWorker::tunnelHeaders(const StreamMeta& meta) const {
  http::Headers h;
  for (std::string_view k : {std::string_view("baggage"), std::string_view("traceparent"),
                             std::string_view("tracestate")}) {
    if (const std::string* v = metaHeader(meta, k)) h.emplace_back(std::string(k), *v);
  }
  std::string hops;
  if (const std::string* v = metaHeader(meta, kHopsHeader)) hops = *v;
  std::string self = selfId();
  if (!self.empty()) hops = hops.empty() ? self : hops + "," + self;
  if (!hops.empty()) h.emplace_back(std::string(kHopsHeader), hops);
  if (meta.peer) {
    const std::string& id = meta.peer->spiffe.empty() ? meta.peer->nodeId : meta.peer->spiffe;
    if (!id.empty()) h.emplace_back(std::string(kPeerHeader), id);
    if (!meta.peer->spiffe.empty() && !meta.peer->nodeId.empty()) {
      h.emplace_back(std::string(kPeerIdHeader), meta.peer->nodeId);
    }
  }
  return h;
}

bool MeshWorker::handles(const HostPort& target, const std::string& via) const {
  return !via.empty() || isMeshHost(cfg(), target.host);
}

// ---------------------------------------------------------------------------------------------
// Outbound: a session asks for a stream to a mesh target.
TunnelRequestPtr MeshWorker::open(const StreamMeta& meta, const HostPort& target, const std::string& via,
                                  Done done) {
  const uint64_t id = ++nextPending_;
  auto p = std::make_unique<Pending>(*this, id, std::move(done));
  pending_[id] = p.get();
  p->authority = target.str();
  p->headers = tunnelHeaders(meta);

  std::string node;
  if (isMeshHost(cfg(), target.host, &node)) {
    if (isSelf(node)) {
      openLocal(*p, target.port);
      return p;
    }
    if (auto e = shared_.nodes.find(node)) {
      if (e->worker == worker_.index()) {
        auto it = conns_.find(e->handle);
        if (it == conns_.end() || !it->second->ready()) {
          completePending(id, makeError(Errc::NoRoute, "the association of node " + e->id + " is closing"));
        } else {
          openOnConn(*p, *it->second);
        }
        return p;
      }
      // Held by another worker: open the stream there and bridge it to us.
      MeshWorker* other = nullptr;
      const auto& r = shared_.workers;
      if (e->worker >= 0 && static_cast<size_t>(e->worker) < r.size()) other = r[static_cast<size_t>(e->worker)];
      if (other == nullptr) {
        completePending(id, makeError(Errc::NoRoute, "node " + e->id + ": its worker is gone"));
        return p;
      }
      auto [near, far] = makeStreamBridge(worker_.reactor(), other->worker_.reactor());
      p->bridgeNear = std::move(near);
      auto farHolder = std::make_shared<StreamPtr>(std::move(far));
      Reactor* mine = &worker_.reactor();
      auto reply = [mine, self = this, id](Errc err, std::string detail) {
        mine->post([self, id, err, detail] {
          auto it = self->pending_.find(id);
          if (it == self->pending_.end()) return;
          if (err == Errc::Ok) {
            self->completePending(id, std::move(it->second->bridgeNear));
          } else {
            self->completePending(id, makeError(err, detail));
          }
        });
      };
      other->worker_.reactor().post([other, handle = e->handle, auth = p->authority, hdrs = p->headers, farHolder,
                                     reply]() mutable {
        other->openForPeer(handle, auth, std::move(hdrs), std::move(*farHolder), reply);
      });
      return p;
    }
  }
  // Through a gateway: the route's `via`, else this node's first upstream.
  std::string gwName = via;
  if (gwName.empty() && !meshConfig(cfg()).upstreams.empty()) gwName = meshConfig(cfg()).upstreams[0].name;
  if (gwName.empty()) {
    completePending(id, makeError(Errc::NoRoute, "mesh node '" + node +
                                                     "' has no association here and no gateway is configured"));
    return p;
  }
  for (const auto& u : meshConfig(cfg()).upstreams) {
    if (u.name == gwName) {
      openViaGateway(*p, u.address, u.id);
      return p;
    }
  }
  auto hp = HostPort::parse(gwName);
  if (!hp) {
    completePending(id, makeError(Errc::NoRoute, "via '" + gwName + "' names no upstream"));
    return p;
  }
  openViaGateway(*p, *hp, "");
  return p;
}

void MeshWorker::completePending(uint64_t id, Result<StreamPtr> r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  if (!p.done) return;
  bump(r ? shared_.counters.tunnelsOpened : shared_.counters.tunnelsFailed);
  Done d = std::move(p.done);
  p.done = nullptr;
  d(std::move(r));  // may hand p to deferred deletion: do not touch it after this
}

void MeshWorker::openLocal(Pending& p, uint16_t port) {
  // "<self>.mesh:port": the port on our own loopback, like ssh -R.
  auto a = SocketAddress::fromIp("127.0.0.1", port);
  auto fd = startConnect(*a);
  if (!fd) {
    completePending(p.id, fd.error());
    return;
  }
  const uint64_t id = p.id;
  p.localPort = port;
  p.local = std::make_unique<TcpStream>(worker_.reactor(), *fd, [this, id](int err) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    if (err != 0) {
      Pending& q = *it->second;
      deleteLater(worker_.reactor(), std::move(q.local));  // inside its callback: destroyed after it
      completePending(id, makeError(errcFromErrno(err), "local port " + std::to_string(q.localPort) + ": " +
                                                           strerror(err)));
      return;
    }
    completePending(id, std::move(it->second->local));
  });
}

void MeshWorker::openOnConn(Pending& p, Conn& c) {
  const uint64_t id = p.id;
  http::H2StreamPtr s = c.h2->connect(p.authority, p.headers, [this, id](http::H2Stream& st) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    int status = st.status();
    if (status >= 200 && status < 300) {
      completePending(id, StreamPtr(std::move(it->second->stream)));
      return;
    }
    std::string why = st.header(kErrorHeader);
    completePending(id, makeError(statusToErrc(status, why),
                                  status == 0 ? "tunnel reset by the peer (code " + std::to_string(st.resetCode()) + ")"
                                              : "the gateway answered " + std::to_string(status) +
                                                    (why.empty() ? "" : " (" + why + ")")));
  });
  if (!s) {
    completePending(id, makeError(Errc::ResourceExhausted, "no stream available on the mesh connection"));
    return;
  }
  p.stream = std::move(s);
}

MeshWorker::Conn* MeshWorker::poolConnection(const HostPort& gw, const std::string& pinnedId) {
  const std::string key = gw.str() + "|" + pinnedId;
  auto& handles = pools_[key];
  for (uint64_t h : handles) {
    auto it = conns_.find(h);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    if (c.ready() && c.h2->canOpenStream()) return &c;
    if ((c.state == Conn::State::Dialling || c.state == Conn::State::Handshaking) &&
        c.waiting.size() < meshConfig(cfg()).maxStreamsPerConnection) {
      return &c;
    }
  }
  const uint64_t h = shared_.nodes.nextHandle();
  auto c = std::make_unique<Conn>(*this, Conn::Kind::Pool, h);
  c->target = gw;
  c->pinnedId = pinnedId;
  c->poolKey = key;
  Conn* raw = c.get();
  conns_[h] = std::move(c);
  handles.push_back(h);
  bump(shared_.counters.poolConnections);
  dialConn(*raw);
  return conns_.count(h) ? raw : nullptr;
}

void MeshWorker::openViaGateway(Pending& p, const HostPort& gw, const std::string& pinnedId) {
  Conn* c = poolConnection(gw, pinnedId);
  if (c == nullptr) {
    completePending(p.id, makeError(Errc::ConnectRefused, "gateway " + gw.str() + " unreachable"));
    return;
  }
  if (c->ready()) {
    openOnConn(p, *c);
  } else {
    c->waiting.push_back(p.id);
  }
}

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

// onConnTcp: err -1 = start the next address; 0 = connected; else the connect failed.
void MeshWorker::onConnTcp(Conn& c, int err) {
  if (err == 0) {
    if (c.kind == Conn::Kind::Association && c.tcp->spliceFd() >= 0) {
      // Streams the gateway sends us come from it: they log its address as their source.
      c.tmeta.source = c.tmeta.upstreamAddr;
      c.tmeta.local = localAddress(c.tcp->spliceFd());
    }
    UpstreamTlsConfig t;
    if (c.kind == Conn::Kind::Association) {
      for (const auto& u : meshConfig(cfg()).upstreams) {
        if (u.name == c.upstream) t = meshUpstreamTls(u, kMeshReverseAlpn);
      }
    } else {
      if (!c.pinnedId.empty()) t.peerIds = {c.pinnedId};
      t.alpn = {std::string(kMeshAlpn)};
      if (!SocketAddress::fromIp(c.target.host, c.target.port)) t.sni = c.target.host;
    }
    startClientTls(c, t);
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
        cc.peer = std::move(o.peer);
        onConnReady(cc);
      });
  if (!hs) {
    failConn(c, Errc::AuthFailed, "mesh: no TLS context for these settings (reload in progress?)");
    return;
  }
  HandshakingStream* raw = hs.get();
  c.tls = std::move(hs);
  raw->start();
}

void MeshWorker::onConnReady(Conn& c) {
  if (c.timer) c.timer->disable();
  const bool server = c.kind == Conn::Kind::Association || c.kind == Conn::Kind::MeshServer;
  c.h2 = http::H2Connection::create(worker_.reactor(), std::move(c.tls),
                                    server ? http::H2Connection::Role::Server : http::H2Connection::Role::Client,
                                    h2Options(), c);
  c.state = Conn::State::Ready;
  c.idleSince = worker_.reactor().now();
  c.h2->start();
  if (c.kind == Conn::Kind::Association) {
    bump(shared_.counters.associationsUp);
    c.listener = "upstream:" + c.upstream;
    assoc_.onUp(c.upstream, c.peer ? c.peer->nodeId : std::string());
    spdlog::info("mesh: association to gateway {} ({}) is up; it may now send us streams", c.target.str(),
                 c.peer ? c.peer->nodeId : "?");
  }
  auto waiting = std::move(c.waiting);
  for (uint64_t id : waiting) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    if (c.h2->canOpenStream()) {
      openOnConn(*it->second, c);
    } else {
      completePending(id, makeError(Errc::ResourceExhausted, "the gateway's stream limit is reached"));
    }
  }
}

void MeshWorker::failConn(Conn& c, Errc reason, const std::string& detail) {
  if (c.state == Conn::State::Closed) return;
  if (worker_.logBudget()) spdlog::warn("mesh: {}: {}", errcReason(reason), detail);
  c.closeWhy = std::string(errcReason(reason)) + ": " + detail;
  auto waiting = std::move(c.waiting);
  for (uint64_t id : waiting) completePending(id, makeError(reason, detail));
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
  if (!c.poolKey.empty()) {
    auto& v = pools_[c.poolKey];
    v.erase(std::remove(v.begin(), v.end(), c.handle), v.end());
    if (v.empty()) pools_.erase(c.poolKey);
  }
  if (c.kind == Conn::Kind::Association) assoc_.onGone(c.upstream, c.handle, c.closeWhy);
  if (c.h2 && !c.h2->closed()) c.h2->close();
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

void MeshWorker::openForPeer(uint64_t handle, std::string authority, http::Headers headers, StreamPtr far,
                             std::function<void(Errc, std::string)> reply) {
  auto it = conns_.find(handle);
  if (it == conns_.end() || !it->second->ready()) {
    reply(Errc::NoRoute, "the node's association closed");
    return;
  }
  auto b = std::make_unique<Bridged>(*this, std::move(far));
  Bridged* raw = b.get();
  raw->reply = std::move(reply);
  bridged_[raw] = std::move(b);
  raw->stream = it->second->h2->connect(authority, headers, [this, raw](http::H2Stream& st) {
    if (!bridged_.count(raw)) return;
    int status = st.status();
    auto rep = std::move(raw->reply);
    if (status >= 200 && status < 300) {
      raw->start();
      rep(Errc::Ok, "");
      return;
    }
    std::string why = st.header(kErrorHeader);
    rep(statusToErrc(status, why), "the node answered " + std::to_string(status));
    raw->finish(true);
  });
  if (!raw->stream) {
    auto rep = std::move(raw->reply);
    rep(Errc::ResourceExhausted, "no stream available on the node's association");
    raw->finish(true);
  }
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
