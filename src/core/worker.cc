#include "core/worker.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "core/dns_resolver.h"
#include "core/proxy_session.h"
#include <ugate/intrusive_list.h>
#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>

namespace ugate {

namespace {
constexpr int kAcceptBatch = 64;  // accepts per wake-up before yielding to other fds
constexpr Duration kAcceptBackoff{100};
constexpr Duration kPauseLogInterval{10'000};  // at most one "pausing accepts" line per listener
// Memory goes back to the OS once at least this many sessions were open at once and three quarters
// of them have closed, a second after the last of those closes (one malloc_trim per burst).
constexpr size_t kReleaseMinSessions = 1024;
constexpr Duration kReleaseDelay{1000};
}  // namespace

// ---------------------------------------------------------------------------------------------
Listener::Listener(Worker& w, const ListenerConfig* cfg, int fd)
    : worker_(w), cfg_(cfg), fd_(fd), bound_(localAddress(fd)), stats_(w.stats(cfg->name)) {
  backoff_ = worker_.reactor().createTimer([this] { resume(); });
  worker_.reactor().addFd(fd_, this, EPOLLIN);
}

Listener::~Listener() {
  worker_.reactor().removeFd(fd_, this);
  ::close(fd_);
}

void Listener::onIoEvent(uint32_t) {
  if (backoff_->enabled()) return;  // paused: the backoff timer resumes accepting
  acceptLoop();
}

void Listener::pause(const std::string& why) {
  if (!paused_) {
    paused_ = true;
    pausedSince_ = worker_.reactor().now();
    if (lastPauseLog_ == MonotonicTime{} || pausedSince_ - lastPauseLog_ >= kPauseLogInterval) {
      lastPauseLog_ = pausedSince_;
      pauseLogged_ = true;
      spdlog::warn(
          "listener {}: {}; pausing accepts until descriptors are free (retrying every {} ms)",
          cfg_->name, why, kAcceptBackoff.count());
    }
  }
  backoff_->enable(kAcceptBackoff);
}

void Listener::resume() {
  // Sessions already accepted and waiting for a descriptor get the freed ones first.
  if (worker_.fdWaiters() > 0) {
    backoff_->enable(kAcceptBackoff);
    return;
  }
  worker_.reactor().modFd(fd_, this, EPOLLIN);
  acceptLoop();
}

void Listener::acceptLoop() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
      worker_.acceptErrors().add();
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        // Out of descriptors: pause this listener instead of spinning on the ready fd.
        pause(std::string("accept: ") + strerror(e));
        return;
      }
      spdlog::warn("listener {}: accept: {}", cfg_->name, strerror(e));
      return;
    }
    if (paused_) {
      paused_ = false;
      if (pauseLogged_) {
        pauseLogged_ = false;
        auto paused = std::chrono::duration_cast<Duration>(worker_.reactor().now() - pausedSince_);
        spdlog::info("listener {}: accepting again after {} ms", cfg_->name, paused.count());
      }
    }
    if (worker_.atConnectionLimit()) {
      stats_.overLimit.add();
      closeAbort(fd);
      worker_.overLimit();
      continue;
    }
    StreamMeta meta;
    meta.id = worker_.nextStreamId();
    meta.kind = cfg_->streamKind;
    meta.listener = cfg_->name;
    meta.source = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    meta.local = bound_.isAny() ? localAddress(fd) : bound_;
    meta.start = worker_.reactor().now();
    if (cfg_->to.type == Target::Type::HostPort) {
      meta.host = cfg_->to.hostPort.host;
      meta.port = cfg_->to.hostPort.port;
    }
    if (cfg_->spec && cfg_->spec->onAccept) {
      Result<void> ok = cfg_->spec->onAccept(fd, *cfg_, meta);
      if (!ok) {
        refuse(fd, std::move(meta), ok.error());
        continue;
      }
    }
    if (cfg_->spec && cfg_->spec->acceptConnection) {
      cfg_->spec->acceptConnection(worker_, *cfg_, fd, std::move(meta));
      continue;
    }
    const LimitsConfig& lim = worker_.config().limits;
    FrontDoorPtr fd2 = cfg_->spec && cfg_->spec->newFrontDoor ? cfg_->spec->newFrontDoor(*cfg_) : nullptr;
    ProxySession::Timeouts t{cfg_->connectTimeout.value_or(lim.connectTimeout),
                             cfg_->idleTimeout.value_or(lim.idleTimeout),
                             cfg_->sniffTimeout.value_or(lim.sniffTimeout)};
    auto s = std::make_unique<ProxySession>(worker_, stats_,
                                            std::make_unique<TcpStream>(worker_.reactor(), fd),
                                            std::move(meta), std::move(fd2), t,
                                            cfg_->acceptProxyProtocol);
    ProxySession* raw = s.get();
    worker_.addSession(std::move(s));
    raw->start();
  }
  // Batch exhausted with more possibly pending: re-arming makes epoll report the fd again next turn,
  // after the other fds had theirs.
  worker_.reactor().modFd(fd_, this, EPOLLIN);
}

void Listener::refuse(int fd, StreamMeta meta, const Error& why) {
  stats_.accepted.add();
  stats_.closes[static_cast<size_t>(why.code)].add();
  if (worker_.logBudget()) {
    spdlog::warn("stream {} listener={} src={}: refused: {}: {}", meta.id, cfg_->name,
                 meta.source.str(), why.reason(), why.detail);
  }
  meta.closeReason = why.code;
  meta.closeDetail = why.detail;
  worker_.accessLog().log(meta);
  closeAbort(fd);
}

// ---------------------------------------------------------------------------------------------
Duration Worker::connectTimeout(const ListenerConfig& l) const {
  return l.connectTimeout.value_or(cfg_->limits.connectTimeout);
}

Duration Worker::idleTimeout(const ListenerConfig& l) const {
  return l.idleTimeout.value_or(cfg_->limits.idleTimeout);
}

Worker::Worker(int index, ConfigPtr cfg, uint32_t maxConnections, int accessLogFd, TimeSource& ts)
    : index_(index),
      reactor_(newReactor(ts, index)),
      cfg_(std::move(cfg)),
      router_(std::make_unique<RouteTable>(cfg_)),
      clusters_(static_cast<size_t>(index),
                [this](const std::string& cluster, const ClusterEndpoint& e) {
                  if (ejectHook_) ejectHook_(cluster, e);
                }),
      pipes_(cfg_->limits.pipeBytes, 256),
      accessLog_(*reactor_, accessLogFd),
      maxConnections_(maxConnections) {
  releaseTimer_ = reactor_->createTimer([this] { releaseMemory(); });
  ResolverOptions ro;
  ro.servers = cfg_->dns.servers;
  ro.queryTimeout = cfg_->dns.timeout;
  ro.minCacheTtl = cfg_->dns.minTtl;
  ro.maxCacheTtl = cfg_->dns.maxTtl;
  ro.negativeTtl = cfg_->dns.negativeTtl;
  resolver_ = newResolver(*reactor_, ro);
  scratch_.reset(new uint8_t[cfg_->limits.copyBufferBytes]);
  spliceCtx_.reset(new SpliceContext{*reactor_, pipes_, scratch_.get(), cfg_->limits.copyBufferBytes});
  const std::string& m = cfg_->limits.splice;
  spliceCtx_->mode = m == "always"  ? SpliceContext::Mode::Always
                     : m == "never" ? SpliceContext::Mode::Never
                                    : SpliceContext::Mode::Auto;
}

Worker::~Worker() {
  join();
  // Sessions reference the reactor and resolver: end them first.
  while (sessions_) {
    ProxySession* s = sessions_;
    removeSession(s);
    delete s;
  }
  // Datagram handlers next (a QUIC endpoint kept for the drain closes its connections now): what
  // they serve may call into the modules' state (the push service, the mesh), which is still there.
  drainingDatagram_.clear();
  datagramListeners_.clear();
  // Then the modules' state, while everything it may use (stats, access log, reactor) still exists.
  tunnels_ = nullptr;
  modules_.clear();
  listeners_.clear();
  accessLog_.flush();
}

void Worker::startThread() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), ("ugate-w" + std::to_string(index_)).c_str());
    reactor_->run();
  });
}

void Worker::join() {
  if (thread_.joinable()) {
    reactor_->exit();
    thread_.join();
  }
}

ListenerStats& Worker::stats(const std::string& listener) {
  auto& p = stats_[listener];
  if (!p) p = std::make_unique<ListenerStats>();
  return *p;
}

void Worker::applyConfig(ConfigPtr cfg, std::vector<ListenSocket> sockets) {
  cfg_ = std::move(cfg);
  router_ = std::make_unique<RouteTable>(cfg_);
  // Listeners that are gone (or changed socket) close; the others point at the new snapshot.
  auto keep = [&](const std::string& name) -> const ListenerConfig* {
    for (const auto& s : sockets) {
      if (s.name == name) return nullptr;  // replaced by a new socket
    }
    return cfg_->findListener(name);
  };
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    const ListenerConfig* l = keep(it->first);
    if (!l) {
      it = listeners_.erase(it);
    } else {
      it->second->setConfig(l);
      ++it;
    }
  }
  for (auto it = datagramListeners_.begin(); it != datagramListeners_.end();) {
    const ListenerConfig* l = keep(it->first);
    if (!l) {
      datagramFds_.erase(it->first);
      it = datagramListeners_.erase(it);
    } else {
      it->second->setConfig(*l);
      ++it;
    }
  }
  for (auto& s : sockets) {
    const ListenerConfig* l = cfg_->findListener(s.name);
    if (!l) {
      ::close(s.fd);
      continue;
    }
    if (l->spec && l->spec->datagram) {
      if (!l->spec->newDatagramHandler) {
        spdlog::error("listener {}: kind {} has no datagram handler", l->name, l->kind);
        ::close(s.fd);
        continue;
      }
      datagramListeners_[s.name] = l->spec->newDatagramHandler(*this, *l, s.fd);
      datagramFds_[s.name] = s.fd;
    } else {
      listeners_[s.name] = std::make_unique<Listener>(*this, l, s.fd);
    }
  }
  for (auto& [owner, m] : modules_) m->configApplied(*cfg_);
}

void Worker::startSession(StreamPtr client, StreamMeta meta, SessionStart s) {
  startModuleSession(*this, std::move(client), std::move(meta), std::move(s));
}

void Worker::addModuleWorker(const Module& owner, ModuleWorkerPtr m) {
  if (!m) return;
  if (!tunnels_) tunnels_ = m->tunnelDialer();
  modules_.emplace_back(&owner, std::move(m));
}

ModuleWorker* Worker::moduleWorker(const Module& m) const {
  for (const auto& [owner, w] : modules_) {
    if (owner == &m) return w.get();
  }
  return nullptr;
}

void Worker::drain(bool socketsMove) {
  if (!socketsMove) {
    for (auto& [name, h] : datagramListeners_) {
      if (h && h->drainsInPlace()) drainingDatagram_.push_back(std::move(h));
    }
  }
  stopListening();
  for (auto& [owner, m] : modules_) m->drain();
}

void Worker::stopListening() {
  listeners_.clear();
  datagramListeners_.clear();  // datagram flows have no connection to drain: they end here
  datagramFds_.clear();
}

std::vector<ListenSocket> Worker::listenSockets() const {
  std::vector<ListenSocket> out;
  auto add = [&](const std::string& name, int fd, bool datagram) {
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (d < 0) {
      spdlog::error("upgrade: worker {}: listener {}: dup: {}", index_, name, strerror(errno));
      return;
    }
    out.push_back(ListenSocket{name, d, datagram});
  };
  for (const auto& [name, l] : listeners_) add(name, l->fd(), false);
  for (const auto& [name, fd] : datagramFds_) add(name, fd, true);
  return out;
}

std::vector<HandedSession> Worker::handOver(const std::set<std::string, std::less<>>& listeners) {
  std::vector<HandedSession> out;
  for (ProxySession* s = sessions_; s != nullptr;) {
    ProxySession* next = s->next;  // a session handed over unlinks itself
    if (listeners.count(s->meta().listener)) {
      HandedSession h;
      if (s->handOver(h.rec, h.fds)) out.push_back(std::move(h));
    }
    s = next;
  }
  return out;
}

bool Worker::adopt(HandedSession&& h) {
  const ListenerConfig* l = cfg_->findListener(h.rec.listener);
  if (!l) {
    spdlog::warn("upgrade: stream {} of listener {}: no such listener here; closing it", h.rec.id, h.rec.listener);
    for (int fd : h.fds) ::close(fd);
    return false;
  }
  ProxySession::adopt(*this, stats(l->name),
                      ProxySession::Timeouts{connectTimeout(*l), idleTimeout(*l), connectTimeout(*l)},
                      std::move(h.rec), std::move(h.fds));
  return true;
}

void Worker::pauseAccepting(const std::string& why) {
  for (auto& [name, l] : listeners_) l->pause(why);
}

void Worker::overLimit() {
  if (capLogged_) return;
  capLogged_ = true;
  spdlog::warn(
      "worker {}: connection cap {} reached (limits.maxConnectionsPerWorker); resetting new "
      "connections until streams close",
      index_, maxConnections_);
}

void Worker::closeAll(Errc reason) {
  while (sessions_) sessions_->close(reason, "forced close", /*abort=*/true);
}

bool Worker::logBudget() {
  MonotonicTime now = reactor_->now();
  if (now - logWindow_ >= std::chrono::seconds(1)) {
    if (logsSuppressed_ > 0) {
      spdlog::warn("worker {}: {} similar messages suppressed", index_, logsSuppressed_);
    }
    logWindow_ = now;
    logsInWindow_ = 0;
    logsSuppressed_ = 0;
  }
  if (logsInWindow_ < 20) {
    ++logsInWindow_;
    return true;
  }
  ++logsSuppressed_;
  return false;
}

void Worker::addSession(std::unique_ptr<ProxySession> s) {
  listPushFront(sessions_, s.release());
  ++activeCount_;
  highWater_ = std::max(highWater_, activeCount_);
}

void Worker::removeSession(ProxySession* s) {
  listUnlink(sessions_, s);
  --activeCount_;
  if (capLogged_ && activeCount_ < maxConnections_) capLogged_ = false;
  if (highWater_ >= kReleaseMinSessions && activeCount_ <= highWater_ / 4) {
    releaseTimer_->enable(kReleaseDelay);  // re-armed by every close: runs once the burst is over
  }
}

void Worker::releaseMemory() {
  if (highWater_ >= kReleaseMinSessions && activeCount_ <= highWater_ / 4) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    spdlog::info("worker {}: {} of {} sessions closed; freed memory returned to the OS", index_,
                 highWater_ - activeCount_, highWater_);
  }
  highWater_ = activeCount_;
}

void Worker::snapshotStats(WorkerStatsSnapshot& out) const {
  for (const auto& [name, st] : stats_) out.listeners[name].add(*st);
  out.activeStreams = static_cast<int64_t>(activeCount_);
  for (const DatagramHandlerPtr& h : drainingDatagram_) out.activeStreams += static_cast<int64_t>(h->openFlows());
  out.pipesCreated = pipes_.created();
  out.pipesPooled = pipes_.pooled();
  out.acceptErrors = acceptErrors_.value();
}

void ListenerStatsValues::add(const ListenerStats& s) {
  accepted += s.accepted.value();
  active += s.active.value();
  bytesIn += s.bytesIn.value();
  bytesOut += s.bytesOut.value();
  spliced += s.spliced.value();
  overLimit += s.overLimit.value();
  packetsIn += s.packetsIn.value();
  packetsOut += s.packetsOut.value();
  for (size_t i = 0; i < kNumErrc; ++i) {
    closes[i] += s.closes[i].value();
    drops[i] += s.drops[i].value();
  }
  connectTime.add(s.connectTime);
  duration.add(s.duration);
  for (const auto& [name, r] : s.routes) {
    RouteLatencyValues& v = routes[name];
    v.connect.add(r->connect);
    v.duration.add(r->duration);
  }
}

void ListenerStatsValues::add(const ListenerStatsValues& s) {
  accepted += s.accepted;
  active += s.active;
  bytesIn += s.bytesIn;
  bytesOut += s.bytesOut;
  spliced += s.spliced;
  overLimit += s.overLimit;
  packetsIn += s.packetsIn;
  packetsOut += s.packetsOut;
  for (size_t i = 0; i < kNumErrc; ++i) {
    closes[i] += s.closes[i];
    drops[i] += s.drops[i];
  }
  connectTime.add(s.connectTime);
  duration.add(s.duration);
  for (const auto& [name, r] : s.routes) {
    RouteLatencyValues& v = routes[name];
    v.connect.add(r.connect);
    v.duration.add(r.duration);
  }
}

}  // namespace ugate
