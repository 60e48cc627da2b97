#include "core/proxy_session.h"

#include "core/handover.h"

#include <sys/socket.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/ambient.h>
#include <ugate/config.h>
#include "core/prefix_stream.h"
#include "core/proxy_protocol.h"
#include <ugate/socket_util.h>

namespace ugate {

namespace {
constexpr Duration kFdRetry{100};  // out of descriptors: how often a session retries its socket
}  // namespace

ProxySession::ProxySession(WorkerContext& w, ListenerStats& stats, StreamPtr client,
                           StreamMeta meta, FrontDoorPtr frontDoor, Timeouts t,
                           bool acceptProxyProtocol, bool countAccepted)
    : worker_(w),
      stats_(stats),
      client_(std::move(client)),
      meta_(std::move(meta)),
      frontDoor_(std::move(frontDoor)),
      timeouts_(t),
      acceptProxyProtocol_(acceptProxyProtocol) {
  if (countAccepted) stats_.accepted.add();  // not again for a connection adopted in an upgrade
  stats_.active.inc();
}

const char* ProxySession::phaseName(Phase p) {
  switch (p) {
    case Phase::Accepted: return "accepted";
    case Phase::ProxyHeader: return "proxy_header";
    case Phase::ServerTls: return "server_tls";
    case Phase::Sniff: return "sniff";
    case Phase::Service: return "service";
    case Phase::Route: return "route";
    case Phase::Resolve: return "resolve";
    case Phase::Tunnel: return "tunnel";
    case Phase::Connect: return "connect";
    case Phase::WaitFd: return "wait_fd";
    case Phase::UpstreamTls: return "upstream_tls";
    case Phase::Splice: return "splice";
    case Phase::Closed: return "closed";
  }
  return "?";
}

uint64_t ProxySession::microsSince(MonotonicTime t) const {
  const auto d = worker_.reactor().now() - t;
  return d.count() > 0 ? static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) : 0;
}

ProxySession::~ProxySession() {
  if (!closed()) {
    // Destroyed without close() (worker teardown): still account for it.
    phase_ = Phase::Closed;
    stats_.active.dec();
  }
}

void ProxySession::start() {
  timer_ = worker_.reactor().createTimer([this] { onTimer(); });
  // Kinds that accept connections themselves (mesh) or serve datagrams (QUIC) terminated TLS
  // already: their sessions carry tunnelled streams.
  if (const ListenerConfig* l = worker_.config().findListener(meta_.listener);
      l && l->tls && !(l->spec && (l->spec->acceptConnection || l->spec->datagram))) {
    serverTls_ = l->tls;
  }
  if (serverTls_ && !acceptProxyProtocol_) {
    startServerTls();
    return;
  }
  if (!frontDoor_ && !acceptProxyProtocol_) {
    if (forced_) meta_.route = "forced";
    routeAndDial(forced_ ? &*forced_ : nullptr);
    return;
  }
  // The client speaks first (a PROXY header, a front door's handshake): read it under the sniff
  // deadline.
  phase_ = acceptProxyProtocol_ ? Phase::ProxyHeader : Phase::Sniff;
  timer_->enable(timeouts_.sniff);
  client_->setCallbacks(this);
  readHandshake();
}

void ProxySession::onStreamReadable(Stream&) {
  if (phase_ == Phase::Service) {
    readControl();
  } else {
    readHandshake();
  }
}

void ProxySession::readHandshake() {
  while (!closed() && client_->readReady()) {
    const size_t cap =
        phase_ == Phase::ProxyHeader ? kProxyV2DefaultMaxBytes : frontDoor_->maxSniffBytes();
    uint8_t buf[4096];
    size_t want = std::min(sizeof(buf), cap - std::min(cap, sniffed_.size()) + 1);
    IoResult r = client_->read(buf, want);
    if (r.wouldBlock()) return;
    if (!r.ok()) {
      close(errcFromErrno(r.err), "client: " + std::string(strerror(r.err)), true);
      return;
    }
    if (r.value == 0) {
      close(Errc::ProtocolError, "client closed during the handshake", false);
      return;
    }
    sniffed_.append(reinterpret_cast<char*>(buf), static_cast<size_t>(r.value));
    if (phase_ == Phase::ProxyHeader) {
      if (!proxyHeaderPhase()) return;
      if (phase_ == Phase::ProxyHeader) continue;  // header incomplete
      // Bytes after the header may hold the whole handshake: look at them now, the edge is spent.
      if (sniffed_.empty()) continue;
    }
    if (!frontDoorPhase()) return;
  }
}

bool ProxySession::proxyHeaderPhase() {
  ProxyParseResult p = parseProxyHeader({reinterpret_cast<const uint8_t*>(sniffed_.data()), sniffed_.size()});
  if (p.status == ProxyStatus::NeedMore) return true;
  if (p.status == ProxyStatus::Error) {
    close(Errc::ProtocolError, "PROXY header: " + std::string(proxyErrorName(p.error)), true);
    return false;
  }
  // LOCAL (health checks) and UNKNOWN keep the real endpoints.
  if (!p.header.local && !p.header.unknown && p.header.source.valid()) {
    meta_.source = p.header.source;
    meta_.originalDst = p.header.destination;
  }
  sniffed_.erase(0, p.consumed);
  if (serverTls_) {
    startServerTls();  // bytes after the header are the start of the ClientHello
    return false;
  }
  if (!frontDoor_) {
    handshakeDone();  // bytes after the header go upstream first
    return false;
  }
  phase_ = Phase::Sniff;
  return true;
}

bool ProxySession::frontDoorPhase() {
  const size_t cap = frontDoor_->maxSniffBytes();
  for (;;) {
    FrontDoorResult res = frontDoor_->onClientBytes(
        {reinterpret_cast<const uint8_t*>(sniffed_.data()), sniffed_.size()}, meta_);
    switch (res.action) {
      case FrontDoorResult::Action::NeedMore:
        if (sniffed_.size() > cap) {
          close(Errc::TooLarge, "handshake larger than " + std::to_string(cap) + " bytes", true);
          return false;
        }
        return true;
      case FrontDoorResult::Action::Reply:
        sniffed_.erase(0, res.consumed);
        if (!sendToClient(res.reply)) return false;
        if (!sniffed_.empty()) continue;  // pipelined bytes: let the front door look again
        return true;
      case FrontDoorResult::Action::Close:
        if (!res.reply.empty()) sendToClient(res.reply);
        close(res.reason, res.detail, /*abort=*/res.reply.empty());
        return false;
      case FrontDoorResult::Action::Route:
        sniffed_.replace(0, res.consumed, res.forward);
        handshakeDone(res.dial ? &*res.dial : nullptr);
        return false;
      case FrontDoorResult::Action::Serve:
        sniffed_.erase(0, res.consumed);
        startService();
        return false;
    }
  }
}

void ProxySession::startServerTls() {
  phase_ = Phase::ServerTls;
  client_->setCallbacks(nullptr);
  timer_->disable();  // the TLS stream keeps its own deadline (tls.handshakeTimeout)
  const TlsProviderPtr& tls = worker_.tls();
  if (!tls) {
    close(Errc::AuthFailed, "TLS: no credentials loaded (see the startup log)", true);
    return;
  }
  StreamPtr inner = std::move(client_);
  if (!sniffed_.empty()) {
    inner = std::make_unique<PrefixStream>(std::move(inner), std::move(sniffed_));
    std::string().swap(sniffed_);
  }
  HandshakingStreamPtr hs = tls->server(*serverTls_, std::move(inner), worker_.reactor(),
                                        worker_.config().tls.handshakeTimeout,
                                        [this](TlsOutcome&& o) { onServerTls(std::move(o)); });
  if (!hs) {
    close(Errc::AuthFailed, "TLS: no context for this listener's settings (reload in progress?)", true);
    return;
  }
  HandshakingStream* raw = hs.get();
  client_ = std::move(hs);
  raw->start();  // may complete (or fail) at once with bytes already read
}

void ProxySession::onServerTls(TlsOutcome&& o) {
  if (closed()) return;
  if (!o.ok) {
    close(o.timedOut ? Errc::HandshakeTimeout : Errc::AuthFailed,
          "TLS from client: " + o.failure + ": " + o.detail, true);
    return;
  }
  meta_.peer = std::move(o.peer);
  if (meta_.sni.empty()) meta_.sni = std::move(o.sni);
  if (!o.alpn.empty()) meta_.alpn = std::move(o.alpn);
  if (meta_.kind == StreamKind::Tcp) meta_.kind = StreamKind::Tls;
  if (!frontDoor_) {
    routeAndDial();
    return;
  }
  // The front door's handshake runs inside TLS. The TLS stream reports readable right after this
  // callback returns (records may already be buffered), which starts readHandshake().
  phase_ = Phase::Sniff;
  timer_->enable(timeouts_.sniff);
  client_->setCallbacks(this);
}

void ProxySession::handshakeDone(const HostPort* forced) {
  client_->setCallbacks(nullptr);
  timer_->disable();
  routeAndDial(forced);
}

bool ProxySession::sendToClient(const std::string& bytes) {
  if (bytes.empty()) return true;
  // Handshake replies are tiny and the connection is fresh, so the socket buffer takes them whole;
  // a client that cannot take a few hundred bytes at this point is not worth buffering for.
  IoResult w = client_->write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!w.ok() || static_cast<size_t>(w.value) != bytes.size()) {
    close(Errc::Io, "client did not take the handshake reply", true);
    return false;
  }
  return true;
}

void ProxySession::fail(Errc reason, std::string detail) {
  if (resultHook_) {
    auto hook = std::move(resultHook_);
    hook(reason, meta_);  // the client's protocol answers (e.g. a :status), then a clean close
    close(reason, std::move(detail), /*abort=*/false);
    return;
  }
  if (frontDoor_) {
    std::string reply = frontDoor_->onUpstreamResult(meta_, reason);
    if (!reply.empty() && !closed()) {
      IoResult w = client_->write(reinterpret_cast<const uint8_t*>(reply.data()), reply.size());
      (void)w;  // best effort: we are closing anyway
      close(reason, std::move(detail), /*abort=*/false);
      return;
    }
  }
  close(reason, std::move(detail), /*abort=*/true);
}

void ProxySession::routeAndDial(const HostPort* forced) {
  phase_ = Phase::Route;
  RouteDecision d;
  if (forced) {
    d.action = RouteDecision::Action::Dial;
    d.target = *forced;  // meta_.route is the front door's name for its choice
  } else {
    d = worker_.router().route(meta_);
    meta_.route = routeLogName(d, meta_.listener);
    meta_.peerMatchedSpiffe = meta_.peer && !d.identity.empty() && d.identity == meta_.peer->spiffe;
  }
  if (dialStart_ == MonotonicTime{}) {
    dialStart_ = worker_.reactor().now();
    if (!meta_.route.empty()) routeLatency_ = &stats_.route(meta_.route);
  }
  sendProxyHeader_ = d.proxyProtocol;
  upstreamTls_ = std::move(d.upstreamTls);
  via_ = std::string(d.via);
  switch (d.action) {
    case RouteDecision::Action::Reject:
      fail(Errc::RouteRejected, "rejected by route " + meta_.route);
      return;
    case RouteDecision::Action::NoRoute:
      fail(Errc::NoRoute, "no route matched and the listener has no target");
      return;
    case RouteDecision::Action::DialOriginal:
      if (ambientRedirect(d)) {
        if (d.action != RouteDecision::Action::Dial) return;  // failed: no endpoint
        meta_.upstream = d.target.str();
        break;
      }
      meta_.upstream = meta_.originalDst.str();
      candidates_ = {meta_.originalDst};
      break;
    case RouteDecision::Action::Dial:
      meta_.upstream = d.target.str();
      if (!SocketAddress::fromIp(d.target.host, d.target.port)) dialHost_ = d.target.host;
      break;
    case RouteDecision::Action::DialCluster: {
      meta_.upstream = "cluster:" + std::string(d.cluster);
      ClusterDialer* cd = worker_.clusters();
      cluster_ = cd ? cd->find(d.cluster) : nullptr;
      if (!cluster_) {
        fail(Errc::NoRoute, "cluster " + std::string(d.cluster) + " is not loaded on this worker");
        return;
      }
      break;
    }
  }
  timer_->enable(timeouts_.connect);
  if (d.action == RouteDecision::Action::Dial) {
    dial(d.target);
  } else if (cluster_) {
    dialCluster();
  } else {
    connectNext();
  }
}

bool ProxySession::ambientRedirect(RouteDecision& d) {
  // Istio ambient (ugate/ambient.h): a captured connection to a service VIP or a workload IP goes
  // to the endpoint workload the control plane names, over HBONE (`via` its :15008) or plain TCP.
  if (meta_.kind != StreamKind::Redirect && meta_.kind != StreamKind::Tproxy) return false;
  AmbientDirectory& dir = ambientDirectory();
  std::shared_ptr<const AmbientSnapshot> snap = dir.current();
  if (!snap) return false;
  std::optional<AmbientDial> a = ambientOutbound(*snap, meta_.originalDst, meta_.id);
  if (!a) return false;
  if (a->target.host.empty()) {
    dir.outboundNoEndpoint.fetch_add(1, std::memory_order_relaxed);
    d.action = RouteDecision::Action::NoRoute;
    fail(Errc::NoRoute, "ambient: " + a->why);
    return true;
  }
  dir.outboundRedirected.fetch_add(1, std::memory_order_relaxed);
  SPDLOG_DEBUG("ambient: {} -> {} ({}{})", meta_.originalDst.str(), a->target.str(), a->why,
               a->via.empty() ? "" : ", HBONE via " + a->via);
  d.action = RouteDecision::Action::Dial;
  d.target = std::move(a->target);
  via_ = std::move(a->via);
  meta_.upstreamSpiffe = std::move(a->identity);
  return true;
}

void ProxySession::dialCluster() {
  ClusterDialer& cd = *worker_.clusters();
  const size_t slot = cd.statsSlot();
  endpoint_ = cd.pick(*cluster_, meta_.source, tried_, worker_.reactor().now());
  if (endpoint_ < 0) {
    cluster_->stats->noEndpoint(slot).add();
    fail(Errc::NoRoute, meta_.upstream + ": no endpoint (names not resolved yet?)");
    return;
  }
  const ClusterEndpoint& e = cluster_->endpoints[static_cast<size_t>(endpoint_)];
  tried_.push_back(e.address);
  lease_ = EndpointLease(e.stats, slot);
  // The upstream TLS server name: the endpoint's configured name when it is one.
  auto hp = HostPort::parse(e.name);
  dialHost_ = hp && !SocketAddress::fromIp(hp->host, hp->port) ? hp->host : std::string();
  candidates_ = {e.address};
  nextCandidate_ = 0;
  connectNext();
}

void ProxySession::clusterAttemptFailed() {
  ClusterDialer& cd = *worker_.clusters();
  if (endpoint_ >= 0) cd.connectResult(*cluster_, static_cast<size_t>(endpoint_), false);
  lease_.release();
  endpoint_ = -1;
  if (tried_.size() > cluster_->connectRetries) {
    fail(lastConnectError_.code, meta_.upstream + ": " + std::to_string(tried_.size()) +
                                     " endpoint(s) tried, last: " + lastConnectError_.detail);
    return;
  }
  // The client sees nothing of this: its front door answers only once an upstream is ready.
  cluster_->stats->retries(cd.statsSlot()).add();
  if (upstream_) {
    upstream_->close(true);
    deleteLater(worker_.reactor(), std::move(upstream_));
  }
  timer_->enable(timeouts_.connect);  // a fresh deadline for each attempt, as Envoy's connect_timeout
  dialCluster();
}

void ProxySession::dial(const HostPort& hp) {
  if (TunnelDialer* t = worker_.tunnels(); t && t->handles(hp, via_)) {
    if (upstreamTls_) {
      fail(Errc::InvalidArgument, "upstreamTls does not apply to mesh targets (tunnels are mTLS already)");
      return;
    }
    // The callback may run inline (a cached association that is ready).
    phase_ = Phase::Tunnel;
    tunnel_ = t->open(meta_, hp, via_, [this](Result<StreamPtr> r) { onTunnel(std::move(r)); });
    return;
  }
  // The callback may run inline (literal IP or cached answer).
  phase_ = Phase::Resolve;
  dns_ = worker_.resolver().resolve(hp.host, hp.port, [this](Result<std::vector<SocketAddress>> r) {
    dns_.reset();
    if (!r) {
      fail(Errc::DnsFailure, r.error().detail);
      return;
    }
    candidates_ = std::move(r.value());
    connectNext();
  });
}

void ProxySession::onTunnel(Result<StreamPtr> r) {
  if (tunnel_) worker_.reactor().deferredDelete(std::move(tunnel_));  // we are inside its callback
  if (closed()) return;
  if (!r) {
    fail(r.error().code, r.error().detail);
    return;
  }
  upstream_ = std::move(*r);
  startSplice();
}

void ProxySession::connectNext() {
  phase_ = Phase::Connect;
  // The listener kind may ask for socket options on its upstreams (SO_MARK, source address).
  const ListenerConfig* l = worker_.config().findListener(meta_.listener);
  const ListenerKindSpec* spec = l ? l->spec : nullptr;
  while (nextCandidate_ < candidates_.size()) {
    const SocketAddress& a = candidates_[nextCandidate_++];
    ConnectOptions opts;
    if (spec && spec->upstreamOptions) spec->upstreamOptions(*l, meta_, a, opts);
    auto fd = startConnect(a, opts);
    if (!fd) {
      if (fd.error().code == Errc::ResourceExhausted && waitForFd(fd.error())) {
        --nextCandidate_;  // the same address again
        return;
      }
      lastConnectError_ = fd.error();
      continue;
    }
    meta_.upstreamAddr = a;
    upstream_ = std::make_unique<TcpStream>(worker_.reactor(), *fd, [this](int err) { onConnected(err); });
    return;
  }
  if (cluster_) {
    clusterAttemptFailed();
  } else if (candidates_.empty()) {
    fail(Errc::DnsFailure, meta_.upstream + ": no addresses");
  } else {
    fail(lastConnectError_.code, lastConnectError_.detail);
  }
}

bool ProxySession::waitForFd(const Error& e) {
  // A reset client would be a lost client: keep it (one descriptor) and retry, with no more
  // accepts meanwhile, so the descriptors that other streams free go to it.
  if (Duration(kFdRetry.count() * fdRetries_) >= timeouts_.connect) return false;
  ++fdRetries_;
  phase_ = Phase::WaitFd;  // connectNext() left Connect: one wait at a time
  worker_.addFdWaiter(1);
  worker_.pauseAccepting("upstream " + e.detail);
  timer_->enable(kFdRetry);
  return true;
}

void ProxySession::onConnected(int err) {
  if (closed()) return;
  if (err != 0) {
    lastConnectError_ = makeError(errcFromErrno(err),
                                  "connect " + meta_.upstreamAddr.str() + ": " + strerror(err));
    upstream_->close(false);
    // Keep the failed stream alive until the end of the turn: we are inside its callback.
    deleteLater(worker_.reactor(), std::move(upstream_));
    connectNext();
    return;
  }
  if (cluster_ && endpoint_ >= 0) worker_.clusters()->connectResult(*cluster_, static_cast<size_t>(endpoint_), true);
  if (upstreamTls_) {
    startClientTls();
    return;
  }
  startSplice();
}

void ProxySession::startClientTls() {
  phase_ = Phase::UpstreamTls;
  const TlsProviderPtr& tls = worker_.tls();
  if (!tls) {
    fail(Errc::AuthFailed, "upstream TLS: no credentials loaded (see the startup log)");
    return;
  }
  const std::string& sni = upstreamTls_->sni.empty() ? dialHost_ : upstreamTls_->sni;
  std::string sessionKey = sni + "@" + meta_.upstreamAddr.str();
  // The connect timer keeps running: connect plus handshake must fit in connectTimeout.
  HandshakingStreamPtr hs = tls->client(*upstreamTls_, sni, sessionKey, std::move(upstream_),
                                        worker_.reactor(), worker_.config().tls.handshakeTimeout,
                                        [this](TlsOutcome&& o) { onClientTls(std::move(o)); });
  if (!hs) {
    fail(Errc::AuthFailed, "upstream TLS: no context for this route's settings (reload in progress?)");
    return;
  }
  HandshakingStream* raw = hs.get();
  upstream_ = std::move(hs);
  raw->start();
}

void ProxySession::onClientTls(TlsOutcome&& o) {
  if (closed()) return;
  if (!o.ok) {
    fail(o.timedOut ? Errc::HandshakeTimeout : Errc::AuthFailed,
         "TLS to " + meta_.upstreamAddr.str() + ": " + o.failure + ": " + o.detail);
    return;
  }
  if (o.peer) {
    spdlog::debug("stream {}: upstream {} is node {} {}", meta_.id, meta_.upstreamAddr.str(),
                  o.peer->nodeId, o.peer->spiffe);
  }
  startSplice();
}

void ProxySession::startSplice() {
  phase_ = Phase::Splice;
  if (dialStart_ != MonotonicTime{}) {
    const uint64_t us = microsSince(dialStart_);
    stats_.connectTime.observe(us);
    if (routeLatency_) routeLatency_->connect.observe(us);
  }
  splicer_ = std::make_unique<Splicer>(worker_.spliceContext(), *client_, *upstream_,
                                       static_cast<SplicerCallbacks&>(*this));
  splicer_->setByteCounters(&stats_.bytesIn, &stats_.bytesOut);
  if (resultHook_) {
    auto hook = std::move(resultHook_);
    hook(Errc::Ok, meta_);
  }
  if (frontDoor_) {
    std::string reply = frontDoor_->onUpstreamResult(meta_, Errc::Ok);
    splicer_->setPrefix(1, reinterpret_cast<const uint8_t*>(reply.data()), reply.size());
    frontDoor_.reset();  // its work is done: free it while the stream lives on
  }
  if (sendProxyHeader_) {
    // Tell the upstream who the client is: the address it came from and the one it reached.
    const SocketAddress& dst = meta_.originalDst.valid() ? meta_.originalDst : meta_.local;
    std::string header;
    if (sendProxyHeader_ == 1) {
      header = encodeProxyV1(meta_.source, dst);
    } else {
      ProxyV2Tlvs tlvs;
      tlvs.authority = meta_.sni;
      tlvs.alpn = meta_.alpn.substr(0, meta_.alpn.find(','));
      header = encodeProxyV2(meta_.source, dst, tlvs);
    }
    sniffed_.insert(0, header);
  }
  // Bytes read before routing (a peeked ClientHello, bytes after a PROXY header) go upstream first.
  splicer_->setPrefix(0, reinterpret_cast<const uint8_t*>(sniffed_.data()), sniffed_.size());
  std::string().swap(sniffed_);
  timer_->enable(timeouts_.idle);
  splicer_->start();
}

void ProxySession::onTimer() {
  switch (phase_) {
    case Phase::Accepted:
    case Phase::ServerTls:  // the TLS stream has its own deadline
    case Phase::Closed:
      return;
    case Phase::WaitFd:
      worker_.addFdWaiter(-1);
      timer_->enable(timeouts_.connect);
      connectNext();
      return;
    case Phase::ProxyHeader:
    case Phase::Sniff:
      close(Errc::HandshakeTimeout,
            "no complete handshake within " + std::to_string(timeouts_.sniff.count()) + " ms",
            true);
      return;
    case Phase::Service:
      serviceTimer();
      return;
    case Phase::Connect:
      if (cluster_) {  // this endpoint did not answer: the next one may
        lastConnectError_ = makeError(Errc::ConnectTimeout, "connect " + meta_.upstreamAddr.str() + ": no answer within " +
                                                                std::to_string(timeouts_.connect.count()) + " ms");
        clusterAttemptFailed();
        return;
      }
      [[fallthrough]];
    case Phase::Route:
    case Phase::Resolve:
    case Phase::Tunnel:
    case Phase::UpstreamTls:
      fail(Errc::ConnectTimeout,
           "connect " + (meta_.upstreamAddr.valid() ? meta_.upstreamAddr.str() : meta_.upstream) +
               ": no answer within " + std::to_string(timeouts_.connect.count()) + " ms");
      return;
    case Phase::Splice:
      break;
  }
  // Idle check: activity does not re-arm the timer; we compare against the last activity here.
  MonotonicTime deadline = splicer_->lastActivity() + timeouts_.idle;
  if (deadline > worker_.reactor().now()) {
    timer_->enableAt(deadline);
    return;
  }
  close(Errc::IdleTimeout, "no bytes for " + std::to_string(timeouts_.idle.count()) + " ms", false);
}

void ProxySession::onSpliceDone() { close(Errc::Ok, "", false); }

void ProxySession::onSpliceError(Errc reason, bool clientSide) {
  close(reason, clientSide ? "client side" : "upstream side", /*abort=*/true);
}

void ProxySession::syncBytes() {
  if (!splicer_) return;
  meta_.bytesFromClient = splicer_->bytesAtoB();
  meta_.bytesToClient = splicer_->bytesBtoA();
}

void ProxySession::close(Errc reason, std::string detail, bool abort) {
  if (closed()) return;
  closedIn_ = phase_;
  phase_ = Phase::Closed;
  syncBytes();
  meta_.closeReason = reason;
  meta_.closeDetail = std::move(detail);
  if (meta_.start != MonotonicTime{}) {
    const uint64_t us = microsSince(meta_.start);
    stats_.duration.observe(us);
    if (routeLatency_) routeLatency_->duration.observe(us);
  }
  if (splicer_) {
    if (splicer_->usedSplice()) stats_.spliced.add();
    splicer_->stop();
  }
  dns_.reset();
  tunnel_.reset();
  lease_.release();
  if (closedIn_ == Phase::WaitFd) worker_.addFdWaiter(-1);
  if (timer_) timer_->disable();
  if (client_) client_->close(abort);
  if (upstream_) upstream_->close(abort);
  stats_.active.dec();
  stats_.closes[static_cast<size_t>(reason)].add();
  if (reason != Errc::Ok && reason != Errc::IdleTimeout && reason != Errc::Shutdown) {
    // Failures to reach the upstream are the operator's business; resets mid-stream are routine.
    bool upstreamFailure = !splicer_ && reason != Errc::RouteRejected && !meta_.upstream.empty();
    bool authFailure = reason == Errc::AuthFailed || (reason == Errc::HandshakeTimeout && serverTls_);
    if ((upstreamFailure || authFailure) && worker_.logBudget()) {
      spdlog::warn("stream {} listener={} src={} upstream={}: {}: {}", meta_.id, meta_.listener,
                   meta_.source.str(), meta_.upstream, errcReason(reason), meta_.closeDetail);
    } else {
      spdlog::debug("stream {} listener={} src={} upstream={}: {}: {}", meta_.id, meta_.listener,
                    meta_.source.str(), meta_.upstream, errcReason(reason), meta_.closeDetail);
    }
  }
  worker_.accessLog().log(meta_);
  worker_.removeSession(this);
  worker_.reactor().deferredDelete(std::unique_ptr<DeferredDeletable>(this));
}

bool ProxySession::handOver(handover::SessionRecord& rec, std::vector<int>& fds) {
  if (phase_ != Phase::Splice || !splicer_) return false;
  auto* c = dynamic_cast<TcpStream*>(client_.get());
  auto* u = dynamic_cast<TcpStream*>(upstream_.get());
  if (!c || !u || c->fd() < 0 || u->fd() < 0 || splicer_->parkedBytes() > handover::kMaxParked) return false;
  syncBytes();
  Splicer::InFlight f[2];
  splicer_->detach(f);
  rec.id = meta_.id;
  rec.kind = meta_.kind;
  rec.listener = meta_.listener;
  rec.source = meta_.source;
  rec.local = meta_.local;
  rec.originalDst = meta_.originalDst;
  rec.upstreamAddr = meta_.upstreamAddr;
  rec.host = meta_.host;
  rec.port = meta_.port;
  rec.sni = meta_.sni;
  rec.alpn = meta_.alpn;
  rec.route = meta_.route;
  rec.upstream = meta_.upstream;
  if (meta_.headers) rec.headers = *meta_.headers;
  rec.ageMicros = meta_.start != MonotonicTime{} ? microsSince(meta_.start) : 0;
  fds.push_back(c->release());
  fds.push_back(u->release());
  for (int i = 0; i < 2; ++i) {
    auto& d = rec.dir[i];
    d.bytes = f[i].bytes;
    d.finished = f[i].finished;
    d.parked = std::move(f[i].parked);
    d.hasPipe = f[i].pipe.valid();
    d.inPipe = static_cast<uint32_t>(f[i].inPipe);
    if (d.hasPipe) {
      fds.push_back(f[i].pipe.r);
      fds.push_back(f[i].pipe.w);
    }
  }
  // Gone from this process: no close, no access-log line, no close counted (the new one does that).
  closedIn_ = phase_;
  phase_ = Phase::Closed;
  if (splicer_->usedSplice()) stats_.spliced.add();
  if (timer_) timer_->disable();
  lease_.release();
  stats_.active.dec();
  worker_.removeSession(this);
  worker_.reactor().deferredDelete(std::unique_ptr<DeferredDeletable>(this));
  return true;
}

void ProxySession::adopt(WorkerContext& w, ListenerStats& stats, Timeouts t, handover::SessionRecord&& rec,
                         std::vector<int>&& fds) {
  StreamMeta meta;
  meta.id = rec.id;
  meta.kind = rec.kind;
  meta.listener = std::move(rec.listener);
  meta.source = rec.source;
  meta.local = rec.local;
  meta.originalDst = rec.originalDst;
  meta.upstreamAddr = rec.upstreamAddr;
  meta.host = std::move(rec.host);
  meta.port = rec.port;
  meta.sni = std::move(rec.sni);
  meta.alpn = std::move(rec.alpn);
  meta.route = std::move(rec.route);
  meta.upstream = std::move(rec.upstream);
  if (!rec.headers.empty()) {
    meta.headers = std::make_unique<std::vector<std::pair<std::string, std::string>>>(std::move(rec.headers));
  }
  meta.start = w.reactor().now() - std::chrono::duration_cast<MonotonicTime::duration>(
                                        std::chrono::microseconds(rec.ageMicros));
  auto session = std::make_unique<ProxySession>(w, stats, std::make_unique<TcpStream>(w.reactor(), fds[0]),
                                                std::move(meta), nullptr, t, false, /*countAccepted=*/false);
  ProxySession* s = session.get();
  s->upstream_ = std::make_unique<TcpStream>(w.reactor(), fds[1]);
  Splicer::InFlight f[2];
  size_t next = 2;
  for (int i = 0; i < 2; ++i) {
    f[i].bytes = rec.dir[i].bytes;
    f[i].finished = rec.dir[i].finished;
    f[i].parked = std::move(rec.dir[i].parked);
    if (rec.dir[i].hasPipe) {
      f[i].pipe = Pipe{fds[next], fds[next + 1]};
      f[i].inPipe = rec.dir[i].inPipe;
      next += 2;
    }
  }
  if (!s->meta_.route.empty()) s->routeLatency_ = &stats.route(s->meta_.route);
  w.addSession(std::move(session));
  s->timer_ = w.reactor().createTimer([s] { s->onTimer(); });
  s->phase_ = Phase::Splice;
  s->splicer_ = std::make_unique<Splicer>(w.spliceContext(), *s->client_, *s->upstream_,
                                          static_cast<SplicerCallbacks&>(*s));
  s->splicer_->setByteCounters(&stats.bytesIn, &stats.bytesOut);
  s->splicer_->restore(f);
  s->timer_->enable(t.idle);
  s->splicer_->start();
}

void startModuleSession(WorkerContext& w, StreamPtr client, StreamMeta meta, SessionStart s) {
  ListenerStats& st = w.stats(meta.listener);
  auto session = std::make_unique<ProxySession>(
      w, st, std::move(client), std::move(meta), nullptr,
      ProxySession::Timeouts{s.connectTimeout, s.idleTimeout, s.sniffTimeout}, false);
  if (s.forcedTarget) session->setForcedTarget(std::move(*s.forcedTarget));
  if (s.onResult) session->setResultHook(std::move(s.onResult));
  ProxySession* raw = session.get();
  w.addSession(std::move(session));
  raw->start();
}

}  // namespace ugate
