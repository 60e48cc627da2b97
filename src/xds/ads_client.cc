#include "xds/ads_client.h"

#include <algorithm>
#include <fstream>

#include <spdlog/spdlog.h>

#include <ugate/message_box.h>

#include <ugate/ambient.h>
#include <ugate/config_store.h>
#include <ugate/json_writer.h>
#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>
#include <ugate/worker_context.h>

#include "xds/messages.h"

namespace ugate::xds {

namespace {

// wantedClusters: the clusters routes and listeners target that the config does not define
// (asked of CDS).
std::set<std::string> wantedClusters(const Config& cfg) {
  std::set<std::string> out;
  auto add = [&](const Target& t) {
    if (t.type == Target::Type::Cluster && !cfg.findCluster(t.cluster)) out.insert(t.cluster);
  };
  for (const RouteConfig& r : cfg.routes) add(r.to);
  for (const ListenerConfig& l : cfg.listeners) add(l.to);
  return out;
}

// readToken: the bearer token in `path` (a projected service account token: small, local), trimmed.
Result<std::string> readToken(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return makeError(Errc::InvalidArgument, "cannot read the token file " + path);
  std::string t(16 * 1024 + 1, '\0');
  f.read(t.data(), static_cast<std::streamsize>(t.size()));
  t.resize(static_cast<size_t>(f.gcount()));
  if (t.size() > 16 * 1024) return makeError(Errc::InvalidArgument, "the token file " + path + " is over 16 KiB");
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(0, 1);
  if (t.empty()) return makeError(Errc::InvalidArgument, "the token file " + path + " is empty");
  for (char ch : t) {
    if (static_cast<unsigned char>(ch) < 0x21 || ch == 0x7f) {
      return makeError(Errc::InvalidArgument, "the token file " + path + " holds a control byte or a space");
    }
  }
  return t;
}

bool sameTls(const std::shared_ptr<const UpstreamTlsConfig>& a, const std::shared_ptr<const UpstreamTlsConfig>& b) {
  if (!a || !b) return !a && !b;
  return a->sni == b->sni && a->peerIds == b->peerIds && a->alpn == b->alpn;
}

AdsClientOptions optionsFor(const XdsClientConfig& k, const Config& cfg, const std::string& selfId) {
  AdsClientOptions o;
  if (k.messages) {
    // This node's mailbox (named by its node ID, as the ADS server publishes it) and its topics.
    if (!selfId.empty()) o.mailboxes.insert(selfId);
    for (const std::string& t : k.messageTopics) o.mailboxes.insert("topic:" + t);
  }
  o.delta = k.delta;
  o.nodeId = k.nodeId;
  o.nodeCluster = k.nodeCluster;
  o.metadata = k.metadata;
  o.wildcard = k.wildcard;
  o.ambient = k.ambient;
  if (!k.wildcard) o.clusters = wantedClusters(cfg);
  return o;
}

}  // namespace

AdsClient::AdsClient(WorkerContext& w, XdsModule& m)
    : w_(w),
      module_(m),
      counters_(m.counters()),
      rng_(std::random_device{}()),
      link_(std::make_shared<ReactorLink>(w.reactor())) {
  timer_ = w_.reactor().createTimer([this] {
    if (connecting_ || query_) {
      retry(connecting_ ? "connect timed out" : "resolving timed out");
      return;
    }
    connect();
  });
}

AdsClient::~AdsClient() {
  link_->cut();  // a decode in flight posts nothing back now (and what it posted finds the link cut)
  query_.reset();  // cancels its callback
  call_.reset();   // cancels without calling back
  conn_.reset();
  handshaking_.reset();
  connecting_.reset();
}

void AdsClient::configApplied(const Config& cfg) {
  const XdsConfig& x = xdsConfig(cfg);
  // The topics whose mailboxes arrive here: webpush binds local subscriptions only to those.
  messageBox().setReadTopics(x.client && x.client->messages ? x.client->messageTopics : std::vector<std::string>{});
  if (!x.client) {
    if (cfg_) {
      spdlog::info("xds: client off; the clusters it defined are removed");
      stop();
      state_.reset();
      publish();
      publishAmbient();
    }
    cfg_ = nullptr;
    return;
  }
  AdsClientOptions o = optionsFor(*x.client, cfg, w_.tls() ? w_.tls()->nodeId() : std::string());
  const bool restart = !cfg_ || cfg_->address.str() != x.client->address.str() || !sameTls(cfg_->tls, x.client->tls) ||
                       !state_ || state_->restartNeeded(o);
  cfg_ = x.client;
  handshakeTimeout_ = cfg.tls.handshakeTimeout;
  if (draining_) return;
  if (restart) {
    stop();
    state_ = std::make_unique<AdsClientState>(std::move(o));
    if (!cfg_->ambient && ambientDirectory().current()) publishAmbient();  // ambient turned off: withdrawn
    // pushed_ stays: core keeps serving it until the new stream's first answers replace it.
    backoff_ = Duration(0);
    connect();
    return;
  }
  bool changed = false;
  std::vector<std::string> reqs = state_->setOptions(std::move(o), changed);
  if (call_) send(reqs);
  if (changed) publish();
}

void AdsClient::drain() {
  draining_ = true;
  stop();
}

void AdsClient::stop() {
  timer_->disable();
  closeConnection();
  if (state_) state_->streamEnded();
  counters_.clientConnected.store(0, std::memory_order_relaxed);
}

void AdsClient::closeConnection() {
  // The stream's responses still to apply are dropped with it (a decode in flight comes back stale).
  ++generation_;
  decoding_ = false;
  waiting_.clear();
  query_.reset();
  if (call_) w_.reactor().deferredDelete(std::move(call_));
  if (conn_) {
    conn_->close();
    w_.reactor().deferredDelete(std::move(conn_));
  }
  if (connecting_) {
    connecting_->close(true);
    deleteLater(w_.reactor(), std::move(connecting_));
  }
  if (handshaking_) {
    handshaking_->close(true);
    deleteLater(w_.reactor(), std::move(handshaking_));
  }
}

void AdsClient::connect() {
  if (!cfg_ || draining_) return;
  ++attempt_;
  gotResponse_ = false;
  if (auto ip = SocketAddress::fromIp(cfg_->address.host, cfg_->address.port)) {
    connectTo(*ip);
    return;
  }
  // A name: resolved at each attempt (the answer is cached by its TTL); the attempts rotate
  // through its addresses. May answer inline.
  const uint64_t a = attempt_;
  timer_->enable(cfg_->connectTimeout);
  query_ = w_.resolver().resolve(cfg_->address.host, cfg_->address.port,
                                 [this, a](Result<std::vector<SocketAddress>> r) {
                                   if (a != attempt_) return;
                                   if (query_) deleteLater(w_.reactor(), std::move(query_));
                                   if (!r || r->empty()) {
                                     retry("resolving " + cfg_->address.host + ": " +
                                           (r ? std::string("no addresses") : r.error().detail));
                                     return;
                                   }
                                   connectTo((*r)[a % r->size()]);
                                 });
}

std::string AdsClient::serverName() const {
  if (!cfg_->tls->sni.empty()) return cfg_->tls->sni;
  return SocketAddress::fromIp(cfg_->address.host, 1) ? std::string() : cfg_->address.host;
}

void AdsClient::connectTo(const SocketAddress& addr) {
  auto fd = startConnect(addr);
  if (!fd) {
    retry("connect to " + addr.str() + ": " + fd.error().detail);
    return;
  }
  const uint64_t a = attempt_;
  connecting_ = std::make_unique<TcpStream>(w_.reactor(), *fd, [this, a](int err) { onConnected(a, err); });
  timer_->enable(cfg_->connectTimeout);
}

void AdsClient::onConnected(uint64_t attempt, int err) {
  if (attempt != attempt_ || !connecting_) return;
  timer_->disable();
  if (err != 0) {
    retry(std::string("connect: ") + strerror(err));
    return;
  }
  if (cfg_->tls) {
    startTls(attempt);
  } else {
    startH2(std::move(connecting_));
  }
}

void AdsClient::startTls(uint64_t attempt) {
  const TlsProviderPtr& tls = w_.tls();
  if (tls) {
    handshaking_ = tls->client(*cfg_->tls, serverName(), cfg_->address.str(), std::move(connecting_), w_.reactor(),
                               handshakeTimeout_, [this, attempt](TlsOutcome&& o) {
                                 if (attempt != attempt_ || !handshaking_) return;
                                 if (!o.ok) {
                                   counters_.tlsFailures.fetch_add(1, std::memory_order_relaxed);
                                   retry("TLS: " + o.failure + ": " + o.detail);
                                   return;
                                 }
                                 SPDLOG_DEBUG("xds: control plane authenticated as {}", o.peer ? o.peer->nodeId : "?");
                                 startH2(std::move(handshaking_));
                               });
  }
  if (!handshaking_) {
    counters_.tlsFailures.fetch_add(1, std::memory_order_relaxed);
    retry("no TLS context for xds.client.tls (credentials not loaded?)");
    return;
  }
  handshaking_->start();
}

void AdsClient::startH2(StreamPtr transport) {
  conn_ = http::H2Connection::create(w_.reactor(), std::move(transport), http::H2Connection::Role::Client, {}, *this);
  conn_->start();  // may fail at once (a peer that reset): then retry() has taken conn_ already
  if (conn_) openCall();
}

void AdsClient::openCall() {
  grpc::ClientCallOptions o;
  o.authority = cfg_->tls && !cfg_->tls->sni.empty() ? cfg_->tls->sni : cfg_->address.str();  // host:port
  if (cfg_->tls) o.scheme = "https";
  // As ztunnel: the service account token (read again at each connect: it is rotated) and the cluster.
  if (!cfg_->tokenFile.empty()) {
    auto t = readToken(cfg_->tokenFile);
    if (!t) {
      retry(t.error().detail);
      return;
    }
    o.metadata.emplace_back("authorization", "Bearer " + *t);
  }
  if (!cfg_->clusterId.empty()) o.metadata.emplace_back("clusterid", cfg_->clusterId);
  call_ = grpc::ClientCall::start(w_.reactor(), *conn_, cfg_->delta ? kDeltaAdsPath : kStreamAdsPath, o, *this);
  if (!call_) {
    retry("the control plane accepts no stream");
    return;
  }
  spdlog::info("xds: client connected to {} ({}, {}), node '{}'", cfg_->address.str(), cfg_->tls ? "mTLS" : "h2c",
               cfg_->delta ? "delta" : "sotw", cfg_->nodeId);
  counters_.clientConnected.store(1, std::memory_order_relaxed);
  send(state_->streamStarted());
  publishStatus();
}

void AdsClient::send(const std::vector<std::string>& requests) {
  for (const std::string& r : requests) {
    if (!call_ || !call_->send(r)) return;
  }
}

void AdsClient::retry(const std::string& why) {
  closeConnection();
  if (state_) state_->streamEnded();
  counters_.clientConnected.store(0, std::memory_order_relaxed);
  if (!cfg_ || draining_) return;
  counters_.clientReconnects.fetch_add(1, std::memory_order_relaxed);
  if (gotResponse_) backoff_ = Duration(0);
  backoff_ = backoff_.count() == 0 ? cfg_->backoffMin : std::min(cfg_->backoffMax, backoff_ * 2);
  // Full jitter over the upper half: clients that lost one control plane do not return in step.
  const int64_t half = backoff_.count() / 2;
  const Duration delay(half + static_cast<int64_t>(rng_() % static_cast<uint64_t>(half + 1)));
  uint64_t left = 0;
  if (warnLog_.allow(w_.reactor().now(), left)) {
    spdlog::warn("xds: client: control plane {}: {}; retrying in {} ms", cfg_->address.str(), why, delay.count());
  }
  timer_->enable(delay);
  publishStatus();
}

void AdsClient::onRequest(http::H2Connection&, http::H2StreamPtr) {}  // a client connection: none

void AdsClient::onConnectionClosed(http::H2Connection& c, Errc, const std::string& detail) {
  if (&c != conn_.get()) return;
  retry("connection closed: " + detail);
}

void AdsClient::onMessage(grpc::ClientCall& call, std::string message) {
  if (!state_ || &call != call_.get()) return;
  counters_.clientResponses.fetch_add(1, std::memory_order_relaxed);
  gotResponse_ = true;
  if (decoding_) {
    waiting_.push_back(std::move(message));  // in order, after the one being decoded
    return;
  }
  process(std::move(message));
}

void AdsClient::process(std::string message) {
  // Below this a response (~130 endpoints) decodes in under 0.1 ms here, about what the hop to the
  // DecodeThread and back costs; 1 000 endpoints (29 KB) already hold the loop ~0.5 ms
  // (docs/BENCHMARKS.md, issue 19 §5).
  constexpr size_t kDecodeInline = 4 * 1024;
  const bool delta = state_->options().delta;
  if (message.size() < kDecodeInline) {
    applyResponse(AdsClientState::decode(delta, message));
    return;
  }
  decoding_ = true;
  module_.decodeThread().run([link = link_, gen = generation_, delta, m = std::move(message), this] {
    auto d = std::make_shared<DecodedResponse>(AdsClientState::decode(delta, m));
    // `this` is used only back on worker 0, and only while the link is not cut (its destructor cuts it there).
    link->post([link, gen, d, this] {
      if (link->alive()) onDecoded(gen, std::move(*d));
    });
  });
}

void AdsClient::onDecoded(uint64_t gen, DecodedResponse d) {
  if (gen != generation_ || !state_) return;  // the stream it came on has ended
  decoding_ = false;
  applyResponse(std::move(d));
  while (!decoding_ && !waiting_.empty()) {  // applyResponse may end the stream: then waiting_ is empty
    std::string next = std::move(waiting_.front());
    waiting_.pop_front();
    process(std::move(next));
  }
}

void AdsClient::applyResponse(DecodedResponse d) {
  ClientOutcome o = state_->onDecoded(std::move(d));
  switch (o.verdict) {
    case ClientVerdict::Ack:
      counters_.clientAcks.fetch_add(1, std::memory_order_relaxed);
      SPDLOG_DEBUG("xds: client ACKs {} version {}", o.typeUrl, state_->version(o.typeUrl));
      break;
    case ClientVerdict::Nack: {
      counters_.clientNacks.fetch_add(1, std::memory_order_relaxed);
      uint64_t left = 0;
      if (warnLog_.allow(w_.reactor().now(), left)) {
        spdlog::warn("xds: client NACKs {} (keeps version '{}'): {}", o.typeUrl, state_->version(o.typeUrl), o.error);
      }
      break;
    }
    case ClientVerdict::Invalid:
      counters_.clientNacks.fetch_add(1, std::memory_order_relaxed);
      retry("a bad response: " + o.error);
      return;
  }
  send(o.requests);
  if (!o.messages.empty()) deliverMessages(std::move(o.messages));
  if (o.changed || o.verdict == ClientVerdict::Ack) publish();
  if (o.ambientChanged) publishAmbient();
}

void AdsClient::deliverMessages(std::vector<Mailbox> boxes) {
  std::vector<BoxedMessage> out;
  for (Mailbox& b : boxes) {
    for (RelayEnvelope& e : b.envelopes) {
      out.push_back({b.recipient, std::move(e.id), std::move(e.ciphertext), e.ttlSeconds, std::move(e.urgency),
                     e.createdUnixMs});
    }
  }
  const size_t n = out.size();
  counters_.clientMessages.fetch_add(n, std::memory_order_relaxed);
  if (messageBox().deliver(std::move(out))) {
    spdlog::info("xds: client: {} new message(s) in the mailbox, handed to the inbox", n);
    return;
  }
  counters_.clientMessagesDropped.fetch_add(n, std::memory_order_relaxed);
  uint64_t left = 0;
  if (warnLog_.allow(w_.reactor().now(), left)) {
    spdlog::warn("xds: client: {} message(s) arrived but no module takes them (a push listener on this node "
                 "stores them): not delivered here, left at the server",
                 n);
  }
}

void AdsClient::publishAmbient() {
  std::shared_ptr<const AmbientSnapshot> s = state_ ? state_->ambient() : nullptr;
  counters_.clientAmbientResources.store(state_ ? state_->ambientResources() : 0, std::memory_order_relaxed);
  if (s) {
    spdlog::info("xds: ambient state {}: {} workloads, {} services, {} policies", s->version, s->workloads.size(),
                 s->services.size(), s->policies.size());
  }
  ambientDirectory().publish(std::move(s));
  publishStatus();
}

void AdsClient::onDone(grpc::ClientCall& call, const grpc::Status& st) {
  if (&call != call_.get()) return;
  retry("the ADS call ended: " + std::string(grpc::codeName(st.code)) + (st.message.empty() ? "" : " " + st.message));
}

void AdsClient::publish() {
  syncClusters();
  publishStatus();
}

void AdsClient::syncClusters() {
  std::map<std::string, DynamicCluster> now = state_ ? state_->clusters() : std::map<std::string, DynamicCluster>{};
  // A warming cluster (its assignment not here yet) keeps what core has of it.
  for (const std::string& name : state_ ? state_->warming() : std::set<std::string>{}) {
    if (auto it = pushed_.find(name); it != pushed_.end()) now.emplace(name, it->second);
  }
  ClusterUpdater* u = w_.clusterUpdater();
  size_t refused = 0;
  if (u) {
    for (const auto& [name, d] : pushed_) {
      if (!now.count(name)) u->removeCluster(name);
    }
    for (const auto& [name, d] : now) {
      auto it = pushed_.find(name);
      if (it != pushed_.end() && it->second == d) continue;
      if (!u->setCluster(d)) {
        ++refused;
        spdlog::warn("xds: cluster {} from the control plane is ignored: the config defines it", name);
      }
    }
    pushed_ = now;
  }
  counters_.clientClusters.store(now.size() - std::min(refused, now.size()), std::memory_order_relaxed);
}

void AdsClient::publishStatus() {
  // /xds: the client's view (main thread reads it).
  std::string o;
  JsonFields f(o, false, ", ", ": ");
  f.str("address", cfg_ ? cfg_->address.str() : "")
      .str("api", cfg_ && cfg_->delta ? "delta" : "sotw")
      .str("node", cfg_ ? cfg_->nodeId : "");
  o += ", \"connected\": ";
  o += call_ ? "true" : "false";
  if (state_) {
    JsonFields(o, true, ", ", ": ")
        .str("cdsVersion", state_->version(kClusterType))
        .str("edsVersion", state_->version(kClusterLoadAssignmentType));
  }
  if (std::shared_ptr<const AmbientSnapshot> a = cfg_ && cfg_->ambient ? ambientDirectory().current() : nullptr) {
    o += ", \"ambient\": {";
    JsonFields(o, false, ", ", ": ")
        .str("addressVersion", state_ ? state_->version(kAddressType) : "")
        .str("authorizationVersion", state_ ? state_->version(kAuthorizationType) : "")
        .unum("workloads", a->workloads.size())
        .unum("services", a->services.size())
        .unum("policies", a->policies.size());
    o += "}";
  }
  o += ", \"clusters\": [";
  bool first = true;
  for (const auto& [name, d] : pushed_) {
    o += first ? "{" : ", {";
    first = false;
    JsonFields(o, false, ", ", ": ").str("name", name).str("version", d.version).unum("endpoints", d.endpoints.size());
    o += "}";
  }
  o += "]";
  module_.setClientStatus("{" + o + "}");
  publishSource();
}

void AdsClient::publishSource() {
  // The config store's "xds" source: the clusters handed to core, each with its "cds V, eds W".
  if (!state_ || !cfg_) {
    configStore().withdraw("xds");
    return;
  }
  SourceView v{"xds", cfg_->address.str(),
               "cds " + state_->version(kClusterType) + ", eds " + state_->version(kClusterLoadAssignmentType), {}, 0};
  for (const auto& [name, d] : pushed_) v.resources.push_back({"cluster", name, d.version});
  configStore().publish(std::move(v));
}

}  // namespace ugate::xds
