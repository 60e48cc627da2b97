#include "mesh/mesh_worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>

#include <spdlog/spdlog.h>

#include "core/listener_kind.h"
#include "core/proxy_session.h"
#include "core/socket_util.h"
#include "core/splicer.h"
#include "core/stream_bridge.h"
#include "core/tcp_stream.h"
#include "core/tls_provider.h"
#include "core/worker.h"
#include "mesh/mesh_stats.h"
#include "mesh/node_table.h"
#include "mesh/trace_context.h"

namespace ugate::mesh {

namespace {

constexpr std::string_view kHopsHeader = "x-ugate-hops";  // node IDs that forwarded this stream
constexpr std::string_view kPeerHeader = "x-ugate-peer";  // the originating authenticated identity
constexpr std::string_view kErrorHeader = "x-ugate-error";
constexpr Duration kHousekeeping{5000};


// The workers' mesh halves, indexed by worker: for reaching an association held by another worker.
std::vector<MeshWorker*>& registry() {
  static std::vector<MeshWorker*> r;
  return r;
}
std::mutex gRegistryMu;

int errcToStatus(Errc e) {
  switch (e) {
    case Errc::Ok: return 200;
    case Errc::RouteRejected:
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

const std::string* metaHeader(const StreamMeta& m, std::string_view name) {
  if (!m.headers) return nullptr;
  for (const auto& [k, v] : *m.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

// wallMs: wall-clock time for the admin endpoint (Unix milliseconds).
int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// assertableIdentity: an x-ugate-peer value names a node ID (52 base32 characters) or a SPIFFE ID.
bool assertableIdentity(const std::string& v) {
  if (v.rfind("spiffe://", 0) == 0) return v.size() > 9;
  return v.size() == 52 && std::all_of(v.begin(), v.end(), [](char ch) {
           char u = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
           return (u >= 'A' && u <= 'Z') || (u >= '2' && u <= '7');
         });
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

// ---------------------------------------------------------------------------------------------
// Conn: one mutual-TLS HTTP/2 connection of this worker.
struct MeshWorker::Conn final : public DeferredDeletable, public http::H2ConnectionCallbacks {
  enum class Kind : uint8_t {
    MeshServer,     // accepted on a mesh listener, ALPN h2: the peer sends us CONNECTs
    NodeHeld,       // accepted, ALPN h2r: a node's association; we send it CONNECTs
    Pool,           // dialled, ALPN h2: our CONNECTs to a gateway
    Association,    // dialled to our upstream gateway, ALPN h2r: it sends us CONNECTs
  };
  enum class State : uint8_t { Dialling, Handshaking, Ready, Closed };

  Conn(MeshWorker& m, Kind k, uint64_t h) : mw(m), kind(k), handle(h) {}
  void onRequest(http::H2Connection&, http::H2StreamPtr s) override { mw.onTunnelRequest(*this, std::move(s)); }
  void onConnectionClosed(http::H2Connection&, Errc r, const std::string& d) override { mw.onConnClosed(*this, r, d); }
  bool ready() const { return state == State::Ready && h2 && !h2->closed(); }

  MeshWorker& mw;
  Kind kind;
  uint64_t handle;
  State state{State::Dialling};
  std::string listener;  // meta.listener of the sessions it starts
  StreamMeta tmeta;      // the transport's source and local address
  std::unique_ptr<PeerIdentity> peer;
  HostPort target;       // dialled: the gateway
  std::string pinnedId;  // dialled: the gateway's node ID when pinned
  std::string poolKey;
  std::string upstream;  // Association: the upstream's name
  std::vector<SocketAddress> addrs;
  size_t nextAddr{0};
  DnsQueryPtr dns;
  StreamPtr tcp;
  StreamPtr tls;  // until the handshake completes; then owned by h2
  http::H2ConnectionPtr h2;
  TimerPtr timer;
  std::vector<uint64_t> waiting;  // pending opens waiting for Ready
  MonotonicTime idleSince{};
  std::string nodeId;    // NodeHeld: the registered node
  bool registered{false};
  std::string closeWhy;  // why it failed or closed (reason: detail), for the upstream's status
};

struct MeshWorker::Pending final : public TunnelRequest {
  Pending(MeshWorker& m, uint64_t i, Done d) : mw(m), id(i), done(std::move(d)) {}
  ~Pending() override { mw.pending_.erase(id); }
  MeshWorker& mw;
  uint64_t id;
  Done done;
  std::string authority;
  http::Headers headers;
  http::H2StreamPtr stream;   // awaiting the response
  StreamPtr local;            // connecting to our own loopback
  StreamPtr bridgeNear;       // cross-worker: our end of the bridge
  uint16_t localPort{0};
};

struct MeshWorker::Upstream {
  UpstreamConfig cfg;
  uint64_t conn{0};
  int attempts{0};  // failed attempts since the association was last up for 30 s
  TimerPtr timer;
  MonotonicTime upSince{};
  std::string gatewayId;  // learned from the gateway's certificate
  std::string lastError;
};

// Bridged: a stream opened here for another worker, spliced to that worker's bridge end.
struct MeshWorker::Bridged final : private SplicerCallbacks {
  Bridged(MeshWorker& m, StreamPtr f) : mw(m), far(std::move(f)) {}
  ~Bridged() override {
    if (splicer) splicer->stop();
  }
  void onSpliceDone() override { finish(false); }
  void onSpliceError(Errc, bool) override { finish(true); }
  void start() {
    splicer = std::make_unique<Splicer>(mw.worker_.spliceContext(), *far, *stream, static_cast<SplicerCallbacks&>(*this));
    splicer->start();
  }
  void finish(bool abort) {
    if (far) far->close(abort);
    if (stream) stream->close(abort);
    auto self = std::move(mw.bridged_[this]);
    mw.bridged_.erase(this);
    struct Holder : DeferredDeletable {
      std::unique_ptr<Bridged> b;
    };
    auto h = std::make_unique<Holder>();
    h->b = std::move(self);
    mw.worker_.reactor().deferredDelete(std::move(h));
  }
  MeshWorker& mw;
  StreamPtr far;
  http::H2StreamPtr stream;
  std::unique_ptr<Splicer> splicer;
  std::function<void(Errc, std::string)> reply;
};

// ---------------------------------------------------------------------------------------------
MeshWorker::MeshWorker(Worker& w) : worker_(w), h2Stats_(workerH2Stats(w.index())) {
  std::lock_guard<std::mutex> l(gRegistryMu);
  auto& r = registry();
  if (r.size() <= static_cast<size_t>(w.index())) r.resize(static_cast<size_t>(w.index()) + 1, nullptr);
  r[static_cast<size_t>(w.index())] = this;
}

MeshWorker::~MeshWorker() {
  {
    std::lock_guard<std::mutex> l(gRegistryMu);
    auto& r = registry();
    if (static_cast<size_t>(worker_.index()) < r.size()) r[static_cast<size_t>(worker_.index())] = nullptr;
  }
  bridged_.clear();
  for (const auto& [name, u] : upstreams_) UpstreamTable::instance().remove(name);
  for (auto& [h, c] : conns_) {
    if (c->registered) NodeTable::instance().remove(c->nodeId, c->handle);
    if (c->h2) c->h2->close();
  }
  conns_.clear();
}

MeshWorker* MeshWorker::of(Worker& w) { return static_cast<MeshWorker*>(w.tunnels()); }

const Config& MeshWorker::cfg() const { return worker_.config(); }

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
  const MeshConfig& m = cfg().mesh;
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
  }
  return h;
}

bool MeshWorker::handles(const HostPort& target, const std::string& via) const {
  return !via.empty() || cfg().isMeshHost(target.host);
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
  if (cfg().isMeshHost(target.host, &node)) {
    if (isSelf(node)) {
      openLocal(*p, target.port);
      return p;
    }
    if (auto e = NodeTable::instance().find(node)) {
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
      {
        std::lock_guard<std::mutex> l(gRegistryMu);
        auto& r = registry();
        if (e->worker >= 0 && static_cast<size_t>(e->worker) < r.size()) other = r[static_cast<size_t>(e->worker)];
      }
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
  if (gwName.empty() && !cfg().mesh.upstreams.empty()) gwName = cfg().mesh.upstreams[0].name;
  if (gwName.empty()) {
    completePending(id, makeError(Errc::NoRoute, "mesh node '" + node +
                                                     "' has no association here and no gateway is configured"));
    return p;
  }
  for (const auto& u : cfg().mesh.upstreams) {
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
  bump(r ? meshCounters().tunnelsOpened : meshCounters().tunnelsFailed);
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
      auto holder = std::move(q.local);  // inside its callback: defer its destruction
      struct H : DeferredDeletable {
        StreamPtr s;
      };
      auto h = std::make_unique<H>();
      h->s = std::move(holder);
      worker_.reactor().deferredDelete(std::move(h));
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
        c.waiting.size() < cfg().mesh.maxStreamsPerConnection) {
      return &c;
    }
  }
  const uint64_t h = NodeTable::instance().nextHandle();
  auto c = std::make_unique<Conn>(*this, Conn::Kind::Pool, h);
  c->target = gw;
  c->pinnedId = pinnedId;
  c->poolKey = key;
  Conn* raw = c.get();
  conns_[h] = std::move(c);
  handles.push_back(h);
  bump(meshCounters().poolConnections);
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
      for (const auto& u : cfg().mesh.upstreams) {
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
    struct H : DeferredDeletable {
      StreamPtr s;
    };
    auto holder = std::make_unique<H>();
    holder->s = std::move(c.tcp);
    worker_.reactor().deferredDelete(std::move(holder));
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
    bump(meshCounters().associationsUp);
    c.listener = "upstream:" + c.upstream;
    if (auto it = upstreams_.find(c.upstream); it != upstreams_.end()) {
      // attempts start over only once the association has stayed up a while (scheduleUpstream),
      // so a gateway that accepts and drops at once still gets exponential backoff.
      Upstream& u = *it->second;
      u.upSince = worker_.reactor().now();
      u.gatewayId = c.peer ? c.peer->nodeId : std::string();
      publish(u, UpstreamStatus::State::Connected);
    }
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
    NodeTable::instance().remove(c.nodeId, c.handle);
    c.registered = false;
    spdlog::info("mesh: node {} unregistered", c.nodeId);
  }
  if (!c.poolKey.empty()) {
    auto& v = pools_[c.poolKey];
    v.erase(std::remove(v.begin(), v.end(), c.handle), v.end());
    if (v.empty()) pools_.erase(c.poolKey);
  }
  if (c.kind == Conn::Kind::Association) {
    if (auto it = upstreams_.find(c.upstream); it != upstreams_.end() && it->second->conn == c.handle) {
      it->second->conn = 0;
      scheduleUpstream(*it->second, c.closeWhy.empty() ? "closed" : c.closeWhy);
    }
  }
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

// ---------------------------------------------------------------------------------------------
// Inbound: the mesh listener.
void MeshWorker::accept(const ListenerConfig& l, int fd, StreamMeta meta) {
  const TlsProviderPtr& tls = worker_.tls();
  if (!tls || !l.tls || draining_) {
    closeAbort(fd);
    return;
  }
  const uint64_t h = NodeTable::instance().nextHandle();
  auto c = std::make_unique<Conn>(*this, Conn::Kind::MeshServer, h);
  c->listener = l.name;
  c->tmeta = std::move(meta);
  c->state = Conn::State::Handshaking;
  Conn* raw = c.get();
  conns_[h] = std::move(c);
  HandshakingStreamPtr hs = tls->server(*l.tls, std::make_unique<TcpStream>(worker_.reactor(), fd), worker_.reactor(),
                                        cfg().tls.handshakeTimeout, [this, h](TlsOutcome&& o) {
                                          auto it = conns_.find(h);
                                          if (it == conns_.end()) return;
                                          Conn& cc = *it->second;
                                          if (!o.ok) {
                                            if (worker_.logBudget()) {
                                              spdlog::warn("mesh: {} from {}: TLS: {}: {}", cc.listener,
                                                           cc.tmeta.source.str(), o.failure, o.detail);
                                            }
                                            removeConn(cc);
                                            return;
                                          }
                                          cc.peer = std::move(o.peer);
                                          cc.tmeta.alpn = o.alpn;
                                          onTlsAccepted(cc);
                                        });
  if (!hs) {
    removeConn(*raw);
    return;
  }
  HandshakingStream* s = hs.get();
  raw->tls = std::move(hs);
  s->start();
}

bool MeshWorker::authorizeAssociation(Conn& c, std::string& why) const {
  if (!c.peer || c.peer->nodeId.empty()) {
    why = "no authenticated node identity";
    return false;
  }
  for (const auto& id : cfg().mesh.reverseAccept) {
    if (id == upper(c.peer->nodeId)) return true;
  }
  const std::string& td = cfg().node.trustDomain;
  if (cfg().mesh.reverseAcceptTrustDomain && !td.empty() &&
      c.peer->spiffe.rfind("spiffe://" + td + "/", 0) == 0) {
    return true;
  }
  why = "node " + c.peer->nodeId + " is not in authorize.reverseAccept" +
        (td.empty() ? std::string() : " and has no spiffe://" + td + "/ identity");
  return false;
}

void MeshWorker::onTlsAccepted(Conn& c) {
  if (c.tmeta.alpn != kMeshReverseAlpn) {
    onConnReady(c);  // MeshServer: the peer sends CONNECTs
    return;
  }
  // A node registers its association: we become the HTTP/2 client on its connection.
  std::string why;
  if (!authorizeAssociation(c, why)) {
    bump(meshCounters().associationsRefused);
    spdlog::warn("mesh: association from {} refused: {}", c.tmeta.source.str(), why);
    removeConn(c);
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
  auto added = NodeTable::instance().add(e);
  if (!added) {
    bump(meshCounters().associationsRefused);
    spdlog::warn("mesh: association of node {} from {} refused: {}", e.id, c.tmeta.source.str(),
                 added.error().detail);
    removeConn(c);
    return;
  }
  c.kind = Conn::Kind::NodeHeld;
  c.nodeId = e.id;
  c.registered = true;
  bump(meshCounters().associationsRegistered);
  spdlog::info("mesh: node {} ({}) registered from {}", e.id, e.name.empty() ? "no name" : e.name,
               c.tmeta.source.str());
  if (uint64_t old = *added; old != 0) {
    // The newest association of a node wins; the older one drains wherever it lives.
    bump(meshCounters().associationsReplaced);
    std::lock_guard<std::mutex> l(gRegistryMu);
    for (MeshWorker* m : registry()) {
      if (m) m->worker_.reactor().post([m, old] { m->goAwayAssociation(old); });
    }
  }
  onConnReady(c);
}

void MeshWorker::goAwayAssociation(uint64_t handle) {
  auto it = conns_.find(handle);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  c.registered = false;  // the table already points at the newer association
  if (c.h2 && !c.h2->closed()) c.h2->goAway();
}

bool MeshWorker::mayAssertIdentity(const Conn& c) const {
  if (!c.peer) return false;
  if (c.kind == Conn::Kind::Association) return true;  // the gateway we dialled (pinned or CA-verified)
  const std::string id = upper(c.peer->nodeId);
  for (const auto& g : cfg().mesh.trustedGateways) {
    if (g == id || (!c.peer->spiffe.empty() && g == c.peer->spiffe)) return true;
  }
  return false;
}

std::unique_ptr<PeerIdentity> MeshWorker::originIdentity(const Conn& c, const http::H2Stream& s) {
  const std::string asserted = s.header(kPeerHeader);
  if (!asserted.empty()) {
    const char* why = !mayAssertIdentity(c)            ? "the peer is not a trusted gateway (mesh.trustedGateways)"
                      : !assertableIdentity(asserted) ? "neither a node ID nor a spiffe:// ID"
                                                      : nullptr;
    if (why == nullptr) {
      auto p = std::make_unique<PeerIdentity>();
      if (asserted.rfind("spiffe://", 0) == 0) {
        p->spiffe = asserted;
      } else {
        p->nodeId = upper(asserted);
      }
      return p;
    }
    bump(meshCounters().identityIgnored);
    if (worker_.logBudget()) {
      spdlog::warn("mesh: {} from {} ({}): ignored {} '{}': {}; the stream carries the peer's own identity",
                   s.authority(), c.tmeta.source.str(), c.peer ? c.peer->nodeId : "?", kPeerHeader, asserted, why);
    }
  }
  return c.peer ? std::make_unique<PeerIdentity>(*c.peer) : nullptr;
}

void MeshWorker::takeCarriedHeaders(const Conn& c, const http::H2Stream& s, StreamMeta& meta) {
  auto keep = [&meta](std::string_view k, std::string v) {
    if (!meta.headers) meta.headers = std::make_unique<http::Headers>();  // most streams carry none
    meta.headers->emplace_back(std::string(k), std::move(v));
  };
  auto drop = [&](std::string_view k, const std::string& v, const char* why) {
    bump(meshCounters().traceHeadersDropped);
    if (worker_.logBudget()) {
      spdlog::warn("mesh: {} from {}: dropped {} ({}): {}", s.authority(), c.tmeta.source.str(), k, why,
                   v.substr(0, 128));
    }
  };
  std::string tp = s.header("traceparent");
  const char* tpError = tp.empty() ? "absent" : traceparentError(tp);
  if (!tp.empty()) {
    if (tpError) {
      drop("traceparent", tp, tpError);
    } else {
      keep("traceparent", std::move(tp));
    }
  }
  if (std::string ts = s.header("tracestate"); !ts.empty()) {
    // A tracestate means nothing without a valid traceparent (Trace Context 3.3).
    const char* e = tpError ? "no valid traceparent" : tracestateError(ts);
    if (e) {
      drop("tracestate", ts, e);
    } else {
      keep("tracestate", std::move(ts));
    }
  }
  if (std::string bg = s.header("baggage"); !bg.empty()) {
    if (const char* e = baggageError(bg)) {
      drop("baggage", bg, e);
    } else {
      keep("baggage", std::move(bg));
    }
  }
  if (std::string hops = s.header(kHopsHeader); !hops.empty()) keep(kHopsHeader, std::move(hops));
}

void MeshWorker::onTunnelRequest(Conn& c, http::H2StreamPtr s) {
  auto refuse = [&](int status, Errc why, const std::string& detail) {
    bump(meshCounters().streamsRefused);
    if (worker_.logBudget()) {
      spdlog::warn("mesh: {} from {} ({}): {} {}", s->authority(), c.tmeta.source.str(),
                   c.peer ? c.peer->nodeId : "?", status, detail);
    }
    s->respond(status, {{std::string(kErrorHeader), std::string(errcReason(why))}}, detail + "\n");
  };
  if (draining_) return refuse(503, Errc::Shutdown, "draining");
  if (s->method() != "CONNECT") return refuse(405, Errc::NotSupported, "only CONNECT is served here");
  auto hp = HostPort::parse(s->authority());
  if (!hp) return refuse(400, Errc::ProtocolError, "bad :authority '" + s->authority() + "'");
  std::vector<std::string> hops = splitHops(s->header(kHopsHeader));
  const std::string self = selfId();
  // The hop list is believed from every peer: it can only get the peer's own stream refused, and
  // ignoring it would let a loop through a gateway we do not trust go on forever.
  if (std::find(hops.begin(), hops.end(), self) != hops.end()) {
    bump(meshCounters().loopsRefused);
    return refuse(508, Errc::LoopDetected, "loop: this node already forwarded the stream");
  }
  if (hops.size() >= cfg().mesh.maxHops) {
    bump(meshCounters().hopsExceeded);
    return refuse(508, Errc::LoopDetected,
                  "circuit too long: " + std::to_string(hops.size()) + " gateways already forwarded the stream, mesh.maxHops=" +
                      std::to_string(cfg().mesh.maxHops));
  }

  StreamMeta meta;
  meta.id = worker_.nextStreamId();
  meta.kind = StreamKind::H2;
  meta.listener = c.listener;
  meta.source = c.tmeta.source;
  meta.local = c.tmeta.local;
  meta.host = hp->host;
  meta.port = hp->port;
  if (auto a = SocketAddress::fromIp(hp->host, hp->port)) meta.originalDst = *a;
  meta.start = worker_.reactor().now();
  meta.alpn = c.tmeta.alpn;
  meta.peer = originIdentity(c, *s);
  takeCarriedHeaders(c, *s, meta);
  // Over our association, our gateway may only reach our own loopback ports.
  std::string node;
  const bool own = cfg().isMeshHost(hp->host, &node) && isSelf(node);
  if (c.kind == Conn::Kind::Association && !own) {
    return refuse(403, Errc::RouteRejected, "this node serves only its own ports (" + hp->str() + ")");
  }
  // A mesh stream to a non-mesh host needs an explicit route (the mesh is not an open proxy).
  if (!cfg().isMeshHost(hp->host) && c.kind == Conn::Kind::MeshServer) {
    RouteDecision d = worker_.router().route(meta);
    if (d.route.empty()) {
      return refuse(403, Errc::RouteRejected, "no route allows " + hp->str() + " from the mesh");
    }
  }
  bump(meshCounters().streamsAccepted);
  const ListenerConfig* l = cfg().findListener(c.listener);
  const LimitsConfig& lim = cfg().limits;
  ProxySession::Timeouts t{l ? worker_.connectTimeout(*l) : lim.connectTimeout,
                           l ? worker_.idleTimeout(*l) : lim.idleTimeout, lim.sniffTimeout};
  http::H2Stream* hs = s.get();
  const HostPort target = *hp;
  auto session = std::make_unique<ProxySession>(worker_, worker_.stats(meta.listener), std::move(s),
                                                std::move(meta), nullptr, t, false);
  if (c.kind == Conn::Kind::Association) session->setForcedTarget(target);
  session->setResultHook([hs](Errc e, const StreamMeta& m) {
    if (e == Errc::Ok) {
      hs->respond(200);
    } else {
      hs->respond(errcToStatus(e), {{std::string(kErrorHeader), std::string(errcReason(e))}},
                  m.closeDetail.empty() ? std::string() : m.closeDetail + "\n");
    }
  });
  ProxySession* raw = session.get();
  worker_.addSession(std::move(session));
  raw->start();
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
// Upstream associations: this node keeps one connection to each of its gateways, spread over the
// workers; the gateway sends us CONNECTs over it.
void MeshWorker::configure() {
  if (!housekeeping_) {
    housekeeping_ = worker_.reactor().createTimer([this] { housekeeping(); });
    housekeeping_->enable(kHousekeeping);
  }
  size_t nworkers;
  {
    std::lock_guard<std::mutex> l(gRegistryMu);
    nworkers = std::max<size_t>(1, registry().size());
  }
  std::map<std::string, const UpstreamConfig*> want;
  const auto& ups = cfg().mesh.upstreams;
  for (size_t i = 0; i < ups.size(); ++i) {
    if (i % nworkers == static_cast<size_t>(worker_.index())) want[ups[i].name] = &ups[i];
  }
  for (auto it = upstreams_.begin(); it != upstreams_.end();) {
    auto w = want.find(it->first);
    bool same = w != want.end() && w->second->address.str() == it->second->cfg.address.str() &&
                w->second->id == it->second->cfg.id;
    if (same) {
      ++it;
      continue;
    }
    if (auto c = conns_.find(it->second->conn); c != conns_.end() && c->second->h2) c->second->h2->goAway();
    UpstreamTable::instance().remove(it->first);
    it = upstreams_.erase(it);
  }
  if (draining_) return;
  for (const auto& [name, u] : want) {
    if (upstreams_.count(name)) continue;
    auto up = std::make_unique<Upstream>();
    up->cfg = *u;
    Upstream* raw = up.get();
    upstreams_[name] = std::move(up);
    dialUpstream(*raw);
  }
}

void MeshWorker::dialUpstream(Upstream& u) {
  if (draining_) return;
  bump(meshCounters().associationDials);
  const uint64_t h = NodeTable::instance().nextHandle();
  auto c = std::make_unique<Conn>(*this, Conn::Kind::Association, h);
  c->target = u.cfg.address;
  c->pinnedId = u.cfg.id;
  c->upstream = u.cfg.name;
  u.conn = h;
  publish(u, UpstreamStatus::State::Connecting);
  Conn* raw = c.get();
  conns_[h] = std::move(c);
  dialConn(*raw);
}

void MeshWorker::scheduleUpstream(Upstream& u, const std::string& why) {
  if (draining_) return;
  const MeshConfig& m = cfg().mesh;
  // An association that stayed up a while starts over at the minimum delay.
  if (u.upSince != MonotonicTime{} && worker_.reactor().now() - u.upSince > std::chrono::seconds(30)) u.attempts = 0;
  u.upSince = {};
  double delay = static_cast<double>(m.reconnectMin.count()) * std::pow(2.0, std::min(u.attempts, 20));
  static thread_local std::mt19937 rng{std::random_device{}()};
  delay *= std::uniform_real_distribution<double>(0.8, 1.2)(rng);  // jitter: nodes do not stampede
  delay = std::min(delay, static_cast<double>(m.reconnectMax.count()));
  ++u.attempts;
  if (!u.timer) {
    const std::string name = u.cfg.name;
    u.timer = worker_.reactor().createTimer([this, name] {
      if (auto it = upstreams_.find(name); it != upstreams_.end() && it->second->conn == 0) dialUpstream(*it->second);
    });
  }
  auto d = Duration(static_cast<int64_t>(delay));
  u.lastError = why;
  publish(u, UpstreamStatus::State::BackingOff, d);
  if (worker_.logBudget()) {
    spdlog::info("mesh: reconnecting to gateway {} in {} ms (attempt {}; {})", u.cfg.address.str(), d.count(),
                 u.attempts, why);
  }
  u.timer->enable(d);
}

void MeshWorker::publish(const Upstream& u, UpstreamStatus::State state, Duration retryIn) {
  UpstreamStatus st;
  st.name = u.cfg.name;
  st.address = u.cfg.address.str();
  st.gatewayId = u.gatewayId.empty() ? u.cfg.id : upper(u.gatewayId);
  st.state = state;
  st.sinceUnixMs = wallMs();
  st.attempts = u.attempts;
  if (state == UpstreamStatus::State::BackingOff) st.nextRetryUnixMs = st.sinceUnixMs + retryIn.count();
  st.lastError = u.lastError;
  UpstreamTable::instance().set(st);
}

void MeshWorker::housekeeping() {
  housekeeping_->enable(kHousekeeping);
  const MonotonicTime now = worker_.reactor().now();
  std::vector<Conn*> idle;
  for (auto& [h, c] : conns_) {
    if (c->kind != Conn::Kind::Pool || !c->ready()) continue;
    if (c->h2->activeStreams() > 0) {
      c->idleSince = now;
    } else if (now - c->idleSince > cfg().mesh.idleConnectionTimeout) {
      idle.push_back(c.get());
    }
  }
  for (Conn* c : idle) c->h2->goAway();
}

void MeshWorker::drain() {
  draining_ = true;
  for (auto& [name, u] : upstreams_) {
    if (u->timer) u->timer->disable();
  }
  for (auto& [h, c] : conns_) {
    if (c->h2 && !c->h2->closed()) c->h2->goAway();
  }
}

// ---------------------------------------------------------------------------------------------
void registerMeshModule() {
  ListenerKindSpec spec;
  spec.name = "mesh";
  spec.streamKind = StreamKind::H2;
  spec.dialsRequested = true;
  auto tls = std::make_shared<ListenerTlsConfig>();
  tls->requireClientCert = true;
  tls->alpn = {std::string(kMeshAlpn), std::string(kMeshReverseAlpn)};
  spec.fixedTls = tls;
  spec.acceptConnection = [](Worker& w, const ListenerConfig& l, int fd, StreamMeta meta) {
    MeshWorker* m = MeshWorker::of(w);
    if (m == nullptr) {
      closeAbort(fd);
      return;
    }
    m->accept(l, fd, std::move(meta));
  };
  listenerKinds().add(std::move(spec));
}

}  // namespace ugate::mesh
