#include "xds/ads_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/peer_directory.h>
#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>
#include <ugate/worker_context.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/ads_resources.h"
#include "xds/message_convert.h"
#include "xds/messages.h"
#include "xds/xds_config.h"

namespace ugate::xds {

namespace discovery = envoy::service::discovery::v3;

namespace {

int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(realTimeSource().systemTime().time_since_epoch()).count();
}

std::atomic<uint64_t>& at(XdsCounters::PerType& v, std::string_view typeUrl) {
  return v[static_cast<size_t>(xdsTypeOf(typeUrl))];
}

void count(XdsCounters& c, std::string_view typeUrl, ads::Verdict v) {
  at(c.requests, typeUrl).fetch_add(1, std::memory_order_relaxed);
  switch (v) {
    case ads::Verdict::Ack: at(c.acks, typeUrl).fetch_add(1, std::memory_order_relaxed); break;
    case ads::Verdict::Nack: at(c.nacks, typeUrl).fetch_add(1, std::memory_order_relaxed); break;
    case ads::Verdict::Stale: at(c.stale, typeUrl).fetch_add(1, std::memory_order_relaxed); break;
    case ads::Verdict::Initial:
    case ads::Verdict::Refused: break;
  }
}

void packResource(const std::string& typeUrl, const ads::Resource& r, google::protobuf::Any& any) {
  any.set_type_url(typeUrl);
  any.set_value(r.bytes);
}

}  // namespace

/**
 * AdsCall: one ADS call (either API): parses requests, feeds its stream state, sends what it
 * answers, and is told of new snapshots by the server.
 */
class AdsCall : public grpc::CallHandler {
 public:
  AdsCall(AdsServer& s, std::atomic<uint64_t>& open) : server_(s), peer_(s.requestPeer()), open_(open) {
    server_.attach(this);
    open_.fetch_add(1, std::memory_order_relaxed);
    server_.counters().streamsTotal.fetch_add(1, std::memory_order_relaxed);
  }
  ~AdsCall() override { detachOnce(); }
  /** push: a new snapshot; sends what changed for this client. */
  virtual void push(const ads::SnapshotPtr& s) = 0;
  /** end finishes the call (drain, server off). */
  void end(grpc::Status st) {
    if (call_) call_->finish(std::move(st));
  }
  /** onHalfClose: the client will ask for nothing more: the stream ends (OK), as go-control-plane's do. */
  void onHalfClose(grpc::ServerCall& call) override { call.finish({}); }
  void onDone(grpc::ServerCall&, const grpc::Status& st) override {
    SPDLOG_DEBUG("xds: ADS stream of {} ended: {} {}", node_, grpc::codeName(st.code), st.message);
    call_ = nullptr;
    detachOnce();
  }

 protected:
  /**
   * parseRequest: `m` as a Req (DiscoveryRequest or DeltaDiscoveryRequest) with a type URL; else
   * the call ends INVALID_ARGUMENT and it returns false. Notes the client's node.
   */
  template <class Req>
  bool parseRequest(grpc::ServerCall& call, const std::string& m, Req& req, std::string_view what) {
    if (!parseMessage(m, req)) {
      call.finish({grpc::Code::InvalidArgument, "not a " + std::string(what)});
      return false;
    }
    if (req.type_url().empty()) {
      call.finish({grpc::Code::InvalidArgument, "type_url is required on an aggregated stream"});
      return false;
    }
    noteNode(req.node());
    return true;
  }
  /**
   * counted: a request's verdict on /stats; a NACK is logged with the version the client keeps, a
   * request over the stream's limits ends the call RESOURCE_EXHAUSTED.
   */
  void counted(const std::string& typeUrl, ads::Verdict v, const std::string& version, const std::string& why) {
    count(server_.counters(), typeUrl, v);
    if (v == ads::Verdict::Nack) logNack(typeUrl, version, why);
    if (v == ads::Verdict::Refused) {
      const ads::StreamLimits l;
      server_.warning("xds: node '" + node_ + "': a request over the stream's limits (" + std::to_string(l.maxTypes) +
                      " types, " + std::to_string(l.maxNamesPerType) + " names per type): stream ended");
      end({grpc::Code::ResourceExhausted, "over the limits of an ADS stream (" + std::to_string(l.maxTypes) +
                                              " types, " + std::to_string(l.maxNamesPerType) + " names per type)"});
    }
  }
  void noteNode(const envoy::config::core::v3::Node& n) {
    if (!node_.empty() || n.id().empty()) return;
    node_ = n.id();
    spdlog::info("xds: ADS stream from node '{}' ({} {})", node_, n.user_agent_name(), n.user_agent_version());
  }
  void logNack(const std::string& typeUrl, const std::string& version, const std::string& why) {
    server_.warning("xds: node '" + node_ + "' NACKed " + typeUrl + " (keeps version '" + version + "'): " + why);
  }
  void sent(const std::string& typeUrl) {
    at(server_.counters().pushes, typeUrl).fetch_add(1, std::memory_order_relaxed);
  }

  /**
   * ownMailboxes: a Message request of a client with an identity names only its own mailbox and
   * topics (mailboxNamesFor); what it may not read is left out, logged and counted as refused.
   */
  std::vector<std::string> ownMailboxes(const std::string& typeUrl, std::vector<std::string> names, bool emptyIsWildcard) {
    if (peer_.empty() || typeUrl != kMessageType) return names;
    std::vector<std::string> refused;
    std::vector<std::string> out = mailboxNamesFor(peer_, names, emptyIsWildcard, refused);
    if (!refused.empty()) {
      server_.counters().mailboxesRefused.fetch_add(refused.size(), std::memory_order_relaxed);
      server_.warning("xds: node '" + node_ + "' (" + peer_ + ") may read only its own mailbox: left out " +
                      std::to_string(refused.size()) + " name(s), e.g. '" + refused[0].substr(0, 64) + "'");
    }
    return out;
  }

  AdsServer& server_;
  grpc::ServerCall* call_{nullptr};
  std::string node_;
  const std::string peer_;  // the client certificate's node ID ("" for h2c / none)

 private:
  void detachOnce() {
    if (attached_) {
      attached_ = false;
      server_.detach(this);
      open_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  std::atomic<uint64_t>& open_;
  bool attached_{true};
};

namespace {

class SotwCall final : public AdsCall {
 public:
  SotwCall(AdsServer& s, grpc::ServerCall& c) : AdsCall(s, s.counters().sotwStreams), state_(s.snapshot()) {
    call_ = &c;
  }
  void onMessage(grpc::ServerCall& call, std::string m) override {
    discovery::DiscoveryRequest req;
    if (!parseRequest(call, m, req, "DiscoveryRequest")) return;
    ads::SotwRequest r;
    r.typeUrl = req.type_url();
    r.versionInfo = req.version_info();
    r.names = ownMailboxes(r.typeUrl, {req.resource_names().begin(), req.resource_names().end()}, true);
    r.nonce = req.response_nonce();
    r.hasError = req.has_error_detail();
    r.error = req.error_detail().message();
    std::vector<ads::SotwResponse> out;
    counted(r.typeUrl, state_.onRequest(r, out), r.versionInfo, r.error);
    send(out);
  }
  void push(const ads::SnapshotPtr& s) override {
    std::vector<ads::SotwResponse> out;
    state_.onSnapshot(s, out);
    send(out);
  }

 private:
  void send(const std::vector<ads::SotwResponse>& out) {
    for (const ads::SotwResponse& r : out) {
      discovery::DiscoveryResponse resp;
      resp.set_version_info(r.versionInfo);
      resp.set_type_url(r.typeUrl);
      resp.set_nonce(r.nonce);
      resp.mutable_control_plane()->set_identifier("ugated");
      for (const ads::Resource& res : r.resources) packResource(r.typeUrl, res, *resp.add_resources());
      if (call_ && call_->send(serializeDeterministic(resp))) sent(r.typeUrl);
    }
  }
  ads::SotwStream state_;
};

class DeltaCall final : public AdsCall {
 public:
  DeltaCall(AdsServer& s, grpc::ServerCall& c) : AdsCall(s, s.counters().deltaStreams), state_(s.snapshot()) {
    call_ = &c;
  }
  void onMessage(grpc::ServerCall& call, std::string m) override {
    discovery::DeltaDiscoveryRequest req;
    if (!parseRequest(call, m, req, "DeltaDiscoveryRequest")) return;
    ads::DeltaRequest r;
    r.typeUrl = req.type_url();
    // A first request naming nothing (the legacy wildcard) becomes the client's own mailbox too.
    const bool first = req.response_nonce().empty() && req.resource_names_unsubscribe().empty();
    r.subscribe = ownMailboxes(r.typeUrl, {req.resource_names_subscribe().begin(), req.resource_names_subscribe().end()},
                               first);
    r.unsubscribe.assign(req.resource_names_unsubscribe().begin(), req.resource_names_unsubscribe().end());
    for (const auto& [k, v] : req.initial_resource_versions()) r.initialVersions.emplace(k, v);
    r.nonce = req.response_nonce();
    r.hasError = req.has_error_detail();
    r.error = req.error_detail().message();
    std::vector<ads::DeltaResponse> out;
    counted(r.typeUrl, state_.onRequest(r, out), "", r.error);
    send(out);
  }
  void push(const ads::SnapshotPtr& s) override {
    std::vector<ads::DeltaResponse> out;
    state_.onSnapshot(s, out);
    send(out);
  }

 private:
  void send(const std::vector<ads::DeltaResponse>& out) {
    for (const ads::DeltaResponse& r : out) {
      discovery::DeltaDiscoveryResponse resp;
      resp.set_system_version_info(r.systemVersion);
      resp.set_type_url(r.typeUrl);
      resp.set_nonce(r.nonce);
      resp.mutable_control_plane()->set_identifier("ugated");
      for (const ads::Resource& res : r.resources) {
        auto* d = resp.add_resources();
        d->set_name(res.name);
        d->set_version(res.version);
        packResource(r.typeUrl, res, *d->mutable_resource());
      }
      for (const std::string& n : r.removed) resp.add_removed_resources(n);
      if (call_ && call_->send(serializeDeterministic(resp))) sent(r.typeUrl);
    }
  }
  ads::DeltaStream state_;
};

}  // namespace

AdsServer::AdsServer(WorkerContext& w, XdsCounters& counters)
    : w_(w), counters_(counters), snap_(std::make_shared<ads::Snapshot>()) {
  server_ = std::make_unique<grpc::Server>(w_.reactor());
  server_->addMethod(std::string(kStreamAdsPath),
                     [this](grpc::ServerCall& c) { return std::make_unique<SotwCall>(*this, c); });
  server_->addMethod(std::string(kDeltaAdsPath),
                     [this](grpc::ServerCall& c) { return std::make_unique<DeltaCall>(*this, c); });
  nodesTimer_ = w_.reactor().createTimer([this] { checkNodes(); });
  // Messages posted or acknowledged (webpush, any worker) reach subscribed clients now, not at the next poll.
  link_ = std::make_shared<ReactorLink>(w_.reactor());
  messageBox().setOnChange([link = link_, queued = wakeQueued_, this] {
    if (queued->exchange(true)) return;
    link->post([link, queued, this] {
      queued->store(false);
      if (link->alive()) checkNodes();
    });
  });
  bindRetry_ = w_.reactor().createTimer([this] {
    if (!draining_ && listenFd_ < 0 && xdsConfig(w_.config()).serverEnabled) listen(xdsConfig(w_.config()).serverAddress);
  });
}

AdsServer::~AdsServer() {
  messageBox().setOnChange(nullptr);
  link_->cut();
  stopListening();
  server_.reset();  // resets the calls (their handlers detach) before their connections go
  conns_.clear();
  handshakes_.clear();
}

void AdsServer::configApplied(const Config& cfg) {
  const XdsConfig& x = xdsConfig(cfg);
  tls_ = x.serverTls;
  handshakeTimeout_ = cfg.tls.handshakeTimeout;
  if (!x.serverEnabled || draining_) {
    stopListening();
  } else if (listenFd_ < 0 || !(bound_ == x.serverAddress)) {
    stopListening();
    bindTries_ = 0;
    listen(x.serverAddress);
  }
  rebuild(cfg, x.serverEnabled);
  if (x.serverEnabled && !draining_) nodesTimer_->enable(Duration(1000));
}

std::string AdsServer::selfId() const {
  const TlsProviderPtr& t = w_.tls();
  return t ? t->nodeId() : std::string();
}

void AdsServer::checkNodes() {
  if (draining_ || !xdsConfig(w_.config()).serverEnabled) return;
  nodesTimer_->enable(Duration(1000));
  // Also without open streams: the next stream must not start from nodes that are gone.
  if (!snap_) return;
  ads::Snapshot nodes;
  ads::addNodes(nodes, w_.config(), selfId(), peerDirectory().list(), associationDirectory().list());
  // Messages too (ugate.v1.Message): posted by other modules, expiring with their TTL.
  ads::addMessages(nodes, messageBox().list(nowUnixMs()));
  if (nodes.ofType(kNodeType) != snap_->ofType(kNodeType) || nodes.ofType(kMessageType) != snap_->ofType(kMessageType)) {
    rebuild(w_.config(), false);
  }
}

void AdsServer::rebuild(const Config& cfg, bool logSkipped) {
  std::vector<std::string> skipped;
  auto s = std::make_shared<ads::Snapshot>(ads::buildSnapshot(cfg, ++generation_, &skipped));
  ads::addNodes(*s, cfg, selfId(), peerDirectory().list(), associationDirectory().list());
  std::vector<std::string> badMessages;
  ads::addMessages(*s, messageBox().list(nowUnixMs()), &badMessages);
  for (const std::string& why : badMessages) spdlog::warn("xds: not published: {}", why);  // once per change
  if (logSkipped) {
    for (const std::string& why : skipped) spdlog::info("xds: route {}", why);
  }
  for (size_t i = 0; i < counters_.resources.size(); ++i) counters_.resources[i].store(0, std::memory_order_relaxed);
  for (const auto& [typeUrl, rs] : s->types) at(counters_.resources, typeUrl).fetch_add(rs.size(), std::memory_order_relaxed);
  snap_ = std::move(s);
  // A call may end while pushing (its send fails): iterate over a copy.
  const std::vector<AdsCall*> calls(calls_.begin(), calls_.end());
  for (AdsCall* c : calls) {
    if (calls_.count(c)) c->push(snap_);
  }
}

void AdsServer::drain() {
  draining_ = true;
  nodesTimer_->disable();
  stopListening();
  const std::vector<AdsCall*> calls(calls_.begin(), calls_.end());
  for (AdsCall* c : calls) {
    if (calls_.count(c)) c->end({grpc::Code::Unavailable, "ugated is shutting down"});
  }
  for (auto& [p, c] : conns_) c->goAway();
}

void AdsServer::warning(const std::string& line) {
  uint64_t left = 0;
  if (!warnLog_.allow(w_.reactor().now(), left)) return;
  spdlog::warn("{}{}", line, left ? " (and " + std::to_string(left) + " more NACKs or refused requests since the last such line)" : "");
}

void AdsServer::listen(const SocketAddress& a) {
  auto fd = openListenSocket(a, 128, false);
  if (!fd && fd.error().code == Errc::AlreadyExists && bindTries_ < 120) {
    // Held by another process: after an upgrade, the old one until it starts draining.
    if (bindTries_++ == 0) {
      spdlog::warn("xds: the ADS server's address {} is in use; retrying every 0.5 s for a minute", a.str());
    }
    bindRetry_->enable(Duration(500));
    return;
  }
  if (!fd) {
    counters_.bindErrors.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("xds: the ADS server cannot listen on {}: {}", a.str(), fd.error().detail);
    return;
  }
  if (bindTries_ > 0) spdlog::info("xds: the ADS server's address {} is free now", a.str());
  bindTries_ = 0;
  if (!w_.reactor().addFd(*fd, this, EPOLLIN)) {
    counters_.bindErrors.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("xds: the ADS server cannot watch its socket on {}", a.str());
    ::close(*fd);
    return;
  }
  listenFd_ = *fd;
  bound_ = a;
  counters_.listening.store(1, std::memory_order_relaxed);
  spdlog::info("xds: ADS server listening on {} (h2c)", localAddress(listenFd_).str());
}

void AdsServer::stopListening() {
  bindRetry_->disable();
  if (listenFd_ < 0) return;
  w_.reactor().removeFd(listenFd_, this);
  ::close(listenFd_);
  listenFd_ = -1;
  counters_.listening.store(0, std::memory_order_relaxed);
}

void AdsServer::onIoEvent(uint32_t) {
  for (int i = 0; i < 64 && listenFd_ >= 0; ++i) {
    const int fd = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        SPDLOG_DEBUG("xds: accept: {}", strerror(errno));
      }
      return;
    }
    setNoDelay(fd);
    counters_.connectionsTotal.fetch_add(1, std::memory_order_relaxed);
    if (tls_) {
      handshake(fd);
    } else {
      serve(std::make_unique<TcpStream>(w_.reactor(), fd));
    }
  }
}

void AdsServer::serve(StreamPtr transport, std::string peerId) {
  auto c = http::H2Connection::create(w_.reactor(), std::move(transport), http::H2Connection::Role::Server, {}, *this);
  http::H2Connection* p = c.get();
  if (!peerId.empty()) connPeer_[p] = std::move(peerId);
  c->start();
  conns_.emplace(p, std::move(c));
}

void AdsServer::handshake(int fd) {
  const TlsProviderPtr& tls = w_.tls();
  auto tcp = std::make_unique<TcpStream>(w_.reactor(), fd);
  const SocketAddress peer = peerAddress(fd);
  auto key = std::make_shared<HandshakingStream*>(nullptr);  // the stream, once known (the callback may run later)
  HandshakingStreamPtr hs;
  if (tls) {
    hs = tls->server(*tls_, std::move(tcp), w_.reactor(), handshakeTimeout_, [this, peer, key](TlsOutcome&& o) {
      auto it = handshakes_.find(*key);
      if (it == handshakes_.end()) return;
      HandshakingStreamPtr done = std::move(it->second);
      handshakes_.erase(it);
      if (!o.ok) {
        counters_.tlsFailures.fetch_add(1, std::memory_order_relaxed);
        warning("xds: TLS handshake from " + peer.str() + " failed: " + o.failure + ": " + o.detail);
        done->close(true);
        deleteLater(w_.reactor(), std::move(done));
        return;
      }
      SPDLOG_DEBUG("xds: ADS client {} authenticated as {}", peer.str(), o.peer ? o.peer->nodeId : "(no certificate)");
      serve(std::move(done), o.peer ? o.peer->nodeId : std::string());
    });
  }
  if (!hs) {
    counters_.tlsFailures.fetch_add(1, std::memory_order_relaxed);
    warning("xds: no TLS context for xds.server.tls (credentials not loaded?): connection from " + peer.str() +
            " closed");
    return;  // tcp (or the provider's refusal) closed the socket
  }
  HandshakingStream* raw = hs.get();
  *key = raw;
  handshakes_.emplace(raw, std::move(hs));
  raw->start();
}

void AdsServer::onRequest(http::H2Connection& c, http::H2StreamPtr s) {
  // The call is made inside handle(): it takes the connection's identity from requestPeer().
  auto it = connPeer_.find(&c);
  requestPeer_ = it == connPeer_.end() ? std::string() : it->second;
  server_->handle(std::move(s));
  requestPeer_.clear();
}

void AdsServer::onConnectionClosed(http::H2Connection& c, Errc, const std::string& detail) {
  SPDLOG_DEBUG("xds: ADS connection closed: {}", detail);
  connPeer_.erase(&c);
  auto it = conns_.find(&c);
  if (it == conns_.end()) return;
  w_.reactor().deferredDelete(std::move(it->second));
  conns_.erase(it);
}

}  // namespace ugate::xds
