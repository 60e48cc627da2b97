// The dialer role (mesh_dialer.h): streams to mesh targets for this worker's sessions, and for
// other workers on the associations held here.
#include "mesh/mesh_dialer.h"

#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/peer_directory.h>
#include <ugate/socket_util.h>
#include <ugate/stream_bridge.h>
#include <ugate/tcp_stream.h>

#include "mesh/mesh_conn.h"
#include "mesh/mesh_module.h"
#include "mesh/mesh_stats.h"

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

MeshDialer::MeshDialer(MeshWorker& hub, WorkerContext& w, MeshShared& shared)
    : hub_(hub), worker_(w), shared_(shared) {}

MeshDialer::~MeshDialer() = default;

void MeshDialer::closeBridged() { bridged_.clear(); }

const Config& MeshDialer::cfg() const { return hub_.cfg(); }

http::Headers MeshDialer::tunnelHeaders(const StreamMeta& meta) const {
  http::Headers h;
  for (std::string_view k : {std::string_view("baggage"), std::string_view("traceparent"),
                             std::string_view("tracestate")}) {
    if (const std::string* v = metaHeader(meta, k)) h.emplace_back(std::string(k), *v);
  }
  std::string hops;
  if (const std::string* v = metaHeader(meta, kHopsHeader)) hops = *v;
  std::string self = hub_.selfId();
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

bool MeshDialer::handles(const HostPort& target, const std::string& via) const {
  return !via.empty() || isMeshHost(cfg(), target.host);
}

// ---------------------------------------------------------------------------------------------
// Outbound: a session asks for a stream to a mesh target.
TunnelRequestPtr MeshDialer::open(const StreamMeta& meta, const HostPort& target, const std::string& via,
                                  Done done) {
  const uint64_t id = ++nextPending_;
  auto p = std::make_unique<Pending>(*this, id, std::move(done));
  pending_[id] = p.get();
  p->authority = target.str();
  p->headers = tunnelHeaders(meta);
  p->via = via;
  p->spiffe = meta.upstreamSpiffe;
  if (isMeshHost(cfg(), target.host, &p->node)) {
    if (hub_.isSelf(p->node)) {
      openLocal(*p, target.port);
      return p;
    }
    // A neighbour found on a link (ugate/peer_directory.h): straight to it, before any gateway.
    if (auto d = peerDirectory().find(p->node)) {
      openDirect(*p, *d);
      return p;
    }
  }
  openRouted(*p);
  return p;
}

void MeshDialer::openRouted(Pending& p) {
  const uint64_t id = p.id;
  if (!p.node.empty()) {
    if (auto e = shared_.nodes.find(p.node)) {
      if (e->worker == worker_.index()) {
        auto it = hub_.conns().find(e->handle);
        if (it == hub_.conns().end() || !it->second->ready()) {
          completePending(id, makeError(Errc::NoRoute, "the association of node " + e->id + " is closing"));
        } else {
          openOnConn(p, *it->second);
        }
        return;
      }
      // Held by another worker: open the stream there and bridge it to us.
      MeshWorker* other = nullptr;
      const auto& r = shared_.workers;
      if (e->worker >= 0 && static_cast<size_t>(e->worker) < r.size()) other = r[static_cast<size_t>(e->worker)];
      if (other == nullptr) {
        completePending(id, makeError(Errc::NoRoute, "node " + e->id + ": its worker is gone"));
        return;
      }
      auto [near, far] = makeStreamBridge(worker_.reactor(), other->worker().reactor());
      p.bridgeNear = std::move(near);
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
      other->worker().reactor().post([other, handle = e->handle, auth = p.authority, hdrs = p.headers, farHolder,
                                     reply]() mutable {
        other->dialer().openForPeer(handle, auth, std::move(hdrs), std::move(*farHolder), reply);
      });
      return;
    }
  }
  // Through a gateway: the route's `via`, else this node's first upstream.
  std::string gwName = p.via;
  if (gwName.empty() && !meshConfig(cfg()).upstreams.empty()) gwName = meshConfig(cfg()).upstreams[0].name;
  if (gwName.empty()) {
    completePending(id, makeError(Errc::NoRoute, "mesh node '" + p.node +
                                                     "' has no association here and no gateway is configured"));
    return;
  }
  for (const auto& u : meshConfig(cfg()).upstreams) {
    if (u.name == gwName) {
      openViaGateway(p, u.transport == MeshTransport::H2 ? u.address : u.quicAddress, u.id, &u);
      return;
    }
  }
  auto hp = HostPort::parse(gwName);
  if (!hp) {
    completePending(id, makeError(Errc::NoRoute, "via '" + gwName + "' names no upstream"));
    return;
  }
  openViaGateway(p, *hp, "");
}

bool MeshDialer::hasRoutedPath(const Pending& p) const {
  return shared_.nodes.find(p.node) || !p.via.empty() || !meshConfig(cfg()).upstreams.empty();
}

void MeshDialer::openDirect(Pending& p, const DirectPeer& d) {
  p.direct = true;
  if (!p.directQuicFailed) bump(shared_.counters.directOpens);
  // One pooled connection per neighbour, pinned to the node ID it announced (and its certificate
  // carries), dialled at the addresses it was heard from and announced: over QUIC when it announced
  // a mesh QUIC port (and that did not just fail), else over TCP.
  p.directQuic = !d.meshQuic.empty() && !p.directQuicFailed && muxTransports().find("quic") != nullptr;
  const std::vector<SocketAddress>& addrs = p.directQuic ? d.meshQuic : d.meshTcp;
  const SocketAddress& first = addrs.front();
  Conn* c = poolConnection(HostPort{first.ip(), first.port()}, d.id, &addrs,
                           p.directQuic ? MeshTransport::Quic : MeshTransport::H2);
  if (c == nullptr) {
    directFailed(p, Errc::ConnectRefused, "neighbour " + d.id + " unreachable at " + first.str());
  } else if (c->ready()) {
    openOnConn(p, *c);
  } else {
    c->waiting.push_back(p.id);
  }
}

void MeshDialer::directFailed(Pending& p, Errc reason, const std::string& detail) {
  if (p.directQuic && !p.directQuicFailed) {
    // The neighbour's QUIC port failed: its TCP mesh port next (still direct).
    p.directQuicFailed = true;
    if (auto d = peerDirectory().find(p.node); d && !d->meshTcp.empty()) {
      bump(shared_.counters.autoFallbacks);
      if (worker_.logBudget()) {
        spdlog::warn("mesh: QUIC to neighbour {} failed ({}); trying its TCP mesh port", p.node, detail);
      }
      openDirect(p, *d);
      return;
    }
  }
  if (!hasRoutedPath(p)) {
    completePending(p.id, makeError(reason, detail));
    return;
  }
  // The direct path is only preferred: the association or the gateway may still reach the node.
  bump(shared_.counters.directFallbacks);
  if (worker_.logBudget()) {
    spdlog::warn("mesh: direct path to {} failed ({}); trying the association or gateway", p.node, detail);
  }
  p.direct = false;
  openRouted(p);
}

void MeshDialer::completePending(uint64_t id, Result<StreamPtr> r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  if (!p.done) return;
  bump(r ? shared_.counters.tunnelsOpened : shared_.counters.tunnelsFailed);
  if (r && p.overQuic) bump(shared_.counters.quicTunnelsOpened);
  Done d = std::move(p.done);
  p.done = nullptr;
  d(std::move(r));  // may hand p to deferred deletion: do not touch it after this
}

void MeshDialer::openLocal(Pending& p, uint16_t port) {
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

void MeshDialer::answered(uint64_t id, int status, const MuxFields& fields, uint64_t resetCode) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (status >= 200 && status < 300) {
    completePending(id, std::move(it->second->stream));
    return;
  }
  std::string why = muxField(fields, kErrorHeader);
  completePending(id, makeError(tunnelErrc(status, why),
                                status == 0 ? "tunnel reset by the peer (code " + std::to_string(resetCode) + ")"
                                            : "the gateway answered " + std::to_string(status) +
                                                  (why.empty() ? "" : " (" + why + ")")));
}

void MeshDialer::openOnConn(Pending& p, Conn& c) {
  const uint64_t id = p.id;
  StreamPtr s;
  if (c.mux) {
    p.overQuic = true;
    s = c.mux->open(p.authority, p.headers,
                    [this, id](int status, const MuxFields& fields) { answered(id, status, fields, 0); });
  } else {
    s = c.h2->connect(p.authority, p.headers, [this, id](http::H2Stream& st) {
      answered(id, st.status(), st.headers(), st.resetCode());
    });
  }
  if (!s) {
    completePending(id, makeError(Errc::ResourceExhausted, "no stream available on the mesh connection"));
    return;
  }
  p.stream = std::move(s);
}

MeshDialer::Conn* MeshDialer::poolConnection(const HostPort& gw, const std::string& pinnedId,
                                             const std::vector<SocketAddress>* addrs, MeshTransport transport,
                                             const std::string& spiffe) {
  // A neighbour's pool is its node ID's (its addresses may change); a gateway's, its address's and
  // transport's (under auto, QUIC and HTTP/2 connections share one pool: whichever is ready serves).
  const std::string key = addrs ? "direct|" + pinnedId
                                : gw.str() + "|" + pinnedId + "|" + std::string(transportName(transport)) +
                                      (spiffe.empty() ? "" : "|" + spiffe);
  auto& handles = pools_[key];
  for (uint64_t h : handles) {
    auto it = hub_.conns().find(h);
    if (it == hub_.conns().end()) continue;
    Conn& c = *it->second;
    if (c.ready() && c.canOpenStream()) return &c;
    if ((c.state == Conn::State::Dialling || c.state == Conn::State::Handshaking) &&
        c.waiting.size() < meshConfig(cfg()).maxStreamsPerConnection) {
      return &c;
    }
  }
  const uint64_t h = shared_.nodes.nextHandle();
  auto c = std::make_unique<Conn>(hub_, Conn::Kind::Pool, h);
  c->target = gw;
  c->pinnedId = pinnedId;
  c->pinnedSpiffe = spiffe;
  c->poolKey = key;
  if (transport != MeshTransport::H2) {
    c->transport = MeshTransport::Quic;  // auto tries QUIC first, each new connection
    c->autoFallback = transport == MeshTransport::Auto;
    bump(shared_.counters.quicConnections);
  }
  if (addrs) {
    c->addrs = *addrs;  // dialled as they are, no DNS
    c->direct = true;
  }
  Conn* raw = &hub_.addConn(std::move(c));
  handles.push_back(h);
  bump(shared_.counters.poolConnections);
  hub_.dialConn(*raw);
  return hub_.conns().count(h) ? raw : nullptr;
}

void MeshDialer::openViaGateway(Pending& p, const HostPort& gw, const std::string& pinnedId, const UpstreamConfig* u) {
  Conn* c = poolConnection(gw, pinnedId, nullptr, u ? u->transport : MeshTransport::H2, p.spiffe);
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

void MeshDialer::openForPeer(uint64_t handle, std::string authority, http::Headers headers, StreamPtr far,
                             std::function<void(Errc, std::string)> reply) {
  auto it = hub_.conns().find(handle);
  if (it == hub_.conns().end() || !it->second->ready()) {
    reply(Errc::NoRoute, "the node's association closed");
    return;
  }
  auto b = std::make_unique<Bridged>(*this, std::move(far));
  Bridged* raw = b.get();
  raw->reply = std::move(reply);
  bridged_[raw] = std::move(b);
  auto onAnswer = [this, raw](int status, const MuxFields& fields) {
    if (!bridged_.count(raw)) return;
    auto rep = std::move(raw->reply);
    if (status >= 200 && status < 300) {
      raw->start();
      rep(Errc::Ok, "");
      return;
    }
    std::string why = muxField(fields, kErrorHeader);
    rep(tunnelErrc(status, why), "the node answered " + std::to_string(status));
    raw->finish(true);
  };
  Conn& c = *it->second;
  if (c.mux) {
    raw->stream = c.mux->open(authority, headers, onAnswer);
  } else {
    raw->stream = c.h2->connect(authority, headers,
                                [onAnswer](http::H2Stream& st) { onAnswer(st.status(), st.headers()); });
  }
  if (!raw->stream) {
    auto rep = std::move(raw->reply);
    rep(Errc::ResourceExhausted, "no stream available on the node's association");
    raw->finish(true);
  }
}

void MeshDialer::onConnReady(Conn& c) {
  auto waiting = std::move(c.waiting);
  for (uint64_t id : waiting) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    if (c.canOpenStream()) {
      openOnConn(*it->second, c);
    } else {
      completePending(id, makeError(Errc::ResourceExhausted, "the gateway's stream limit is reached"));
    }
  }
}

bool MeshDialer::autoFallback(Conn& c, Errc reason, const std::string& detail) {
  if (!c.autoFallback || c.poolKey.empty()) return false;
  const UpstreamConfig* up = nullptr;
  for (const auto& u : meshConfig(cfg()).upstreams) {
    if (u.quicAddress.str() == c.target.str() && u.id == c.pinnedId && u.transport == MeshTransport::Auto) up = &u;
  }
  if (up == nullptr) return false;  // the config changed meanwhile: fail as usual
  bump(shared_.counters.autoFallbacks);
  spdlog::warn("mesh: upstream {}: QUIC to {} failed ({}: {}); transport auto falls back to HTTP/2 at {}", up->name,
               c.target.str(), errcReason(reason), detail, up->address.str());
  // The HTTP/2 connection joins the auto pool, so later opens reuse it while it lives.
  auto waiting = std::move(c.waiting);
  c.waiting.clear();
  Conn* h2 = nullptr;
  auto& handles = pools_[c.poolKey];
  for (uint64_t h : handles) {
    Conn* o = hub_.findConn(h);
    if (o != nullptr && o != &c && !o->mux && o->transport == MeshTransport::H2 && o->state != Conn::State::Closed) h2 = o;
  }
  if (h2 == nullptr) {
    const uint64_t h = shared_.nodes.nextHandle();
    auto n = std::make_unique<Conn>(hub_, Conn::Kind::Pool, h);
    n->target = up->address;
    n->pinnedId = up->id;
    n->poolKey = c.poolKey;
    h2 = &hub_.addConn(std::move(n));
    handles.push_back(h);
    bump(shared_.counters.poolConnections);
    hub_.dialConn(*h2);
    if (!hub_.findConn(h)) h2 = nullptr;
  }
  for (uint64_t id : waiting) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    if (h2 == nullptr) {
      completePending(id, makeError(reason, detail + "; and HTTP/2 to " + up->address.str() + " failed at once"));
    } else if (h2->ready()) {
      openOnConn(*it->second, *h2);
    } else {
      h2->waiting.push_back(id);
    }
  }
  return true;
}

void MeshDialer::onConnFailed(Conn& c, Errc reason, const std::string& detail) {
  if (autoFallback(c, reason, detail)) return;
  auto waiting = std::move(c.waiting);
  for (uint64_t id : waiting) {
    auto it = pending_.find(id);
    if (it != pending_.end() && it->second->direct) {
      directFailed(*it->second, reason, detail);
    } else {
      completePending(id, makeError(reason, detail));
    }
  }
}

void MeshDialer::onConnRemoved(const Conn& c) {
  if (c.poolKey.empty()) return;
  auto& v = pools_[c.poolKey];
  v.erase(std::remove(v.begin(), v.end(), c.handle), v.end());
  if (v.empty()) pools_.erase(c.poolKey);
}

}  // namespace ugate::mesh
