#include "udp/udp_forwarder.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/socket_util.h>

namespace ugate::udp {
namespace {

constexpr int kBatchesPerWake = 8;          // then re-arm, so other fds get their turn
constexpr size_t kMaxPending = 64;          // datagrams a flow holds while its upstream resolves
constexpr size_t kMaxPendingBytes = 256 * 1024;
constexpr size_t kMaxExpiredPerRun = 4096;  // flows closed per timer run; the rest next turn

const UdpOptions& defaultOptions() {
  static const UdpOptions o;
  return o;
}

std::string ms(Duration d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

// ---------------------------------------------------------------------------------------------
/** Flow: one client (and original destination) and its connected upstream socket. */
class UdpForwarder::Flow final : public FlowEntry, public DeferredDeletable, private IoWatcher {
 public:
  Flow(UdpForwarder& fw, StreamMeta meta) : fw_(fw), meta_(std::move(meta)) {}
  ~Flow() override { closeFds(); }

  StreamMeta& meta() { return meta_; }
  bool ready() const { return upFd_ >= 0; }
  bool closed() const { return closed_; }
  int upFd() const { return upFd_; }

  /** resolve dials target (inline for literal IPs and cached names). */
  void resolve(const HostPort& target) {
    dns_ = fw_.worker_.resolver().resolve(target.host, target.port,
                                          [this](Result<std::vector<SocketAddress>> r) { onResolved(std::move(r)); });
  }
  /** dialAddress connects the upstream socket; false when the flow closed. */
  bool dialAddress(const SocketAddress& a) {
    meta_.upstreamAddr = a;
    int fd = socket(a.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      int e = errno;
      fw_.closeFlow(this, errcFromErrno(e), std::string("upstream socket: ") + strerror(e));
      return false;
    }
    if (connect(fd, a.sa(), a.len()) != 0) {
      int e = errno;
      ::close(fd);
      fw_.closeFlow(this, errcFromErrno(e), "connect " + a.str() + ": " + strerror(e));
      return false;
    }
    upFd_ = fd;
    fw_.worker_.reactor().addFd(upFd_, this, EPOLLIN);
    return true;
  }
  /** openReplySocket: TPROXY replies leave from a transparent socket bound to the original destination. */
  bool openReplySocket() {
    const SocketAddress& dst = meta_.originalDst;
    int fd = socket(dst.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    std::string why;
    int e = 0;
    if (fd < 0) {
      e = errno;
      why = std::string("socket: ") + strerror(e);
    } else {
      int one = 1;
      // Several flows (clients) share one original destination: each binds it with SO_REUSEADDR.
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (dst.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      // Nothing is read from it: keep its receive queue minimal.
      int small = 1;
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
      auto t = setTransparent(fd, dst.family());
      if (!t) {
        e = EPERM;
        why = t.error().detail;
      } else if (bind(fd, dst.sa(), dst.len()) != 0) {
        e = errno;
        why = "bind " + dst.str() + ": " + strerror(e);
      }
    }
    if (!why.empty()) {
      if (fd >= 0) ::close(fd);
      fw_.closeFlow(this, errcFromErrno(e), "reply socket: " + why);
      return false;
    }
    replyFd_ = fd;
    return true;
  }
  /** queue keeps a copy of a datagram while the upstream resolves. */
  bool queue(const uint8_t* data, size_t len) {
    if (pending_.size() >= kMaxPending || pendingBytes_ + len > kMaxPendingBytes) return false;
    pending_.emplace_back(reinterpret_cast<const char*>(data), len);
    pendingBytes_ += len;
    return true;
  }
  /** shutdown releases sockets and the lookup (the flow is deleted at the end of the turn). */
  void shutdown() {
    closed_ = true;
    dns_.reset();
    if (!pending_.empty()) fw_.drop(meta_.closeReason, pending_.size());
    pending_.clear();
    closeFds();
  }

 private:
  void closeFds() {
    if (upFd_ >= 0) {
      fw_.worker_.reactor().forgetFd(this);
      ::close(upFd_);
      upFd_ = -1;
    }
    if (replyFd_ >= 0) {
      ::close(replyFd_);
      replyFd_ = -1;
    }
  }

  void onResolved(Result<std::vector<SocketAddress>> r) {
    dns_.reset();
    if (closed_) return;
    if (!r || r->empty()) {
      fw_.closeFlow(this, Errc::DnsFailure, r ? meta_.upstream + ": no addresses" : r.error().detail);
      return;
    }
    if (!dialAddress(r->front())) return;
    if (pending_.empty()) return;
    for (const auto& p : pending_) {
      if (fw_.sendBatch_.full()) fw_.sendUpstream(this);
      fw_.sendBatch_.add(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
    fw_.sendUpstream(this);
    pending_.clear();
    pendingBytes_ = 0;
  }

  // ugate::IoWatcher (the upstream socket): replies go back to the client.
  void onIoEvent(uint32_t) override {
    RecvBatch& batch = recvBatch();
    const int out = replyFd_ >= 0 ? replyFd_ : fw_.fd_;
    const SocketAddress from = fw_.pktInfo_ ? meta_.local : SocketAddress{};
    for (int b = 0; b < kBatchesPerWake && !closed_; ++b) {
      IoResult r = batch.recv(upFd_, 0);
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        // An ICMP error for a datagram sent earlier (port unreachable, ...): that one was lost.
        fw_.drop(dropReason(r.err));
        continue;
      }
      uint64_t bytes = 0, packets = 0;
      for (int64_t i = 0; i < r.value; ++i) {
        Datagram& d = batch[static_cast<size_t>(i)];
        if (d.truncated) {
          fw_.drop(Errc::TooLarge);
          continue;
        }
        fw_.sendBatch_.add(d.data, d.len, meta_.source, from);
        bytes += d.len;
        ++packets;
      }
      SendBatch::Outcome o = fw_.sendBatch_.flush(out);
      if (o.dropped) fw_.drop(dropReason(o.lastErr), o.dropped);
      meta_.bytesToClient += bytes;
      meta_.packetsToClient += packets;
      fw_.stats_.bytesOut.add(bytes);
      fw_.stats_.packetsOut.add(packets);
      fw_.table_.touch(this, fw_.worker_.reactor().now());
      if (r.value < static_cast<int64_t>(kBatch)) return;
    }
    if (!closed_) fw_.worker_.reactor().modFd(upFd_, this, EPOLLIN);
  }

  UdpForwarder& fw_;
  StreamMeta meta_;
  int upFd_{-1};
  int replyFd_{-1};
  DnsQueryPtr dns_;
  std::vector<std::string> pending_;
  size_t pendingBytes_{0};
  bool closed_{false};
};

// ---------------------------------------------------------------------------------------------
UdpForwarder::UdpForwarder(WorkerContext& w, const ListenerConfig& cfg, int fd)
    : worker_(w),
      cfg_(&cfg),
      opts_(std::dynamic_pointer_cast<const UdpOptions>(cfg.options)),
      fd_(fd),
      bound_(localAddress(fd)),
      tproxy_(options().tproxy),
      pktInfo_(!tproxy_ && bound_.isAny()),
      stats_(w.stats(cfg.name)),
      table_(options().maxFlows, cfg.idleTimeout.value_or(UdpOptions::kDefaultIdle)) {
  expiry_ = worker_.reactor().createTimer([this] { onExpiry(); });
  worker_.reactor().addFd(fd_, this, EPOLLIN);
}

UdpForwarder::~UdpForwarder() {
  while (FlowEntry* e = table_.oldest()) {
    auto* f = static_cast<Flow*>(e);
    closeFlow(f, Errc::Shutdown, "listener closed");
  }
  worker_.reactor().removeFd(fd_, this);
  ::close(fd_);
}

const UdpOptions& UdpForwarder::options() const { return opts_ ? *opts_ : defaultOptions(); }

void UdpForwarder::setConfig(const ListenerConfig& cfg) {
  cfg_ = &cfg;
  if (auto o = std::dynamic_pointer_cast<const UdpOptions>(cfg.options)) {
    if (o->bufferBytes != options().bufferBytes) setBufferBytes(fd_, static_cast<int>(o->bufferBytes));
    opts_ = std::move(o);
  }
  table_.setLimits(options().maxFlows, cfg.idleTimeout.value_or(UdpOptions::kDefaultIdle));
  while (table_.size() > table_.maxFlows()) {
    closeFlow(static_cast<Flow*>(table_.oldest()), Errc::ResourceExhausted,
              "evicted: maxFlows lowered to " + std::to_string(table_.maxFlows()));
  }
  expiry_->disable();  // the idle timeout may have shrunk
  armExpiry();
}

void UdpForwarder::drop(Errc reason, uint64_t n) { stats_.drops[static_cast<size_t>(reason)].add(n); }

void UdpForwarder::onIoEvent(uint32_t) { readClients(); }

void UdpForwarder::readClients() {
  RecvBatch& batch = recvBatch();
  const uint8_t flags = kRecvOverflow | (tproxy_ ? kRecvOrigDst : pktInfo_ ? kRecvPktInfo : 0);
  for (int b = 0; b < kBatchesPerWake; ++b) {
    IoResult r = batch.recv(fd_, flags);
    if (r.wouldBlock()) return;
    if (!r.ok()) {
      if (worker_.logBudget()) spdlog::warn("listener {}: recvmmsg: {}", cfg_->name, strerror(r.err));
      return;
    }
    if (batch.kernelDrops() > kernelDrops_) {
      // The kernel dropped datagrams while the receive queue was full (a burst beyond bufferBytes).
      drop(Errc::ResourceExhausted, batch.kernelDrops() - kernelDrops_);
      kernelDrops_ = batch.kernelDrops();
    }
    const MonotonicTime now = worker_.reactor().now();
    Flow* cur = nullptr;  // the flow sendBatch_ holds datagrams for
    for (int64_t i = 0; i < r.value; ++i) {
      Datagram& d = batch[static_cast<size_t>(i)];
      if (d.truncated) {
        drop(Errc::TooLarge);
        continue;
      }
      Flow* f = static_cast<Flow*>(table_.find(FlowKey{d.peer, tproxy_ ? d.origDst : SocketAddress{}}));
      if (f != cur || sendBatch_.full()) {
        sendUpstream(cur);  // one sendmmsg per run of datagrams of one flow
        cur = nullptr;
      }
      if (!f) {
        f = flowFor(d);  // may close flows (eviction): sendBatch_ is empty here
        if (!f) continue;
      } else {
        table_.touch(f, now);
      }
      if (f->closed()) {  // it failed as it was created (reply socket, DNS, connect)
        drop(f->meta().closeReason);
        continue;
      }
      StreamMeta& m = f->meta();
      m.bytesFromClient += d.len;
      ++m.packetsFromClient;
      stats_.bytesIn.add(d.len);
      stats_.packetsIn.add();
      if (f->ready()) {
        sendBatch_.add(d.data, d.len);
        cur = f;
      } else if (!f->queue(d.data, d.len)) {
        drop(Errc::ResourceExhausted);
      }
    }
    sendUpstream(cur);
    if (r.value < static_cast<int64_t>(kBatch)) return;
  }
  worker_.reactor().modFd(fd_, this, EPOLLIN);  // more may be waiting: come back next turn
}

void UdpForwarder::sendUpstream(Flow* f) {
  if (!f || sendBatch_.size() == 0) return;
  SendBatch::Outcome o = sendBatch_.flush(f->upFd());
  if (o.dropped) drop(dropReason(o.lastErr), o.dropped);
}

UdpForwarder::Flow* UdpForwarder::flowFor(const Datagram& d) {
  if (tproxy_) {
    if (!d.origDst.valid()) {
      drop(Errc::InvalidArgument);  // no IP_ORIGDSTADDR: not a TPROXY socket after all
      return nullptr;
    }
    // Sent to the listener's own port rather than captured: dialling it would loop.
    if (d.origDst.port() == bound_.port() && (bound_.isAny() || d.origDst == bound_)) {
      drop(Errc::NoRoute);
      if (worker_.logBudget()) {
        spdlog::warn("listener {}: datagram from {} addressed to the TPROXY port itself ({}); dropped",
                     cfg_->name, d.peer.str(), d.origDst.str());
      }
      return nullptr;
    }
  }
  return createFlow(FlowKey{d.peer, tproxy_ ? d.origDst : SocketAddress{}}, d);
}

UdpForwarder::Flow* UdpForwarder::createFlow(const FlowKey& key, const Datagram& d) {
  StreamMeta meta;
  meta.id = worker_.nextStreamId();
  meta.kind = StreamKind::UdpFlow;
  meta.listener = cfg_->name;
  meta.source = d.peer;
  meta.start = worker_.reactor().now();
  if (tproxy_) {
    meta.local = d.origDst;
    meta.originalDst = d.origDst;
    meta.host = d.origDst.ip();
    meta.port = d.origDst.port();
  } else {
    meta.local = bound_;
    if (pktInfo_ && d.local.valid()) {
      meta.local = d.local;
      meta.local.setPort(bound_.port());
    }
    if (cfg_->to.type == Target::Type::HostPort) {
      meta.host = cfg_->to.hostPort.host;
      meta.port = cfg_->to.hostPort.port;
    }
  }
  RouteDecision rd = worker_.router().route(meta);
  HostPort target;
  switch (rd.action) {
    case RouteDecision::Action::Reject:
    case RouteDecision::Action::DialCluster:  // clusters serve TCP streams
    case RouteDecision::Action::NoRoute: {
      const Errc why = rd.action == RouteDecision::Action::Reject ? Errc::RouteRejected : Errc::NoRoute;
      drop(why);
      if (worker_.logBudget()) {
        spdlog::debug("listener {}: datagram from {} to {}: {}", cfg_->name, d.peer.str(),
                      HostPort{meta.host, meta.port}.str(), errcReason(why));
      }
      return nullptr;
    }
    case RouteDecision::Action::DialOriginal:
      target = HostPort{meta.originalDst.ip(), meta.originalDst.port()};
      break;
    case RouteDecision::Action::Dial:
      target = rd.target;
      break;
  }
  meta.route = routeLogName(rd, meta.listener);
  meta.upstream = target.str();
  if (table_.full()) {
    closeFlow(static_cast<Flow*>(table_.oldest()), Errc::ResourceExhausted,
              "evicted: maxFlows " + std::to_string(table_.maxFlows()) + " reached on this worker");
  }
  auto* f = new Flow(*this, std::move(meta));
  f->key = key;
  table_.insert(f, f->meta().start);
  stats_.accepted.add();
  stats_.active.inc();
  armExpiry();
  spdlog::debug("flow {} listener={} src={} -> {}", f->meta().id, cfg_->name, d.peer.str(), f->meta().upstream);
  if (tproxy_ && !f->openReplySocket()) return f;  // closed; the caller drops its datagram
  f->resolve(target);
  return f;
}

void UdpForwarder::closeFlow(Flow* f, Errc reason, std::string detail) {
  if (f->closed()) return;
  table_.remove(f);
  StreamMeta& m = f->meta();
  m.closeReason = reason;
  m.closeDetail = std::move(detail);
  f->shutdown();
  stats_.active.dec();
  stats_.closes[static_cast<size_t>(reason)].add();
  if (reason != Errc::Ok && reason != Errc::IdleTimeout && reason != Errc::Shutdown) {
    if (worker_.logBudget()) {
      spdlog::warn("flow {} listener={} src={} upstream={}: {}: {}", m.id, m.listener, m.source.str(),
                   m.upstream, errcReason(reason), m.closeDetail);
    }
  }
  worker_.accessLog().log(m);
  worker_.reactor().deferredDelete(std::unique_ptr<DeferredDeletable>(f));
}

void UdpForwarder::armExpiry() {
  if (expiry_->enabled()) return;  // it fires at or before the current deadline and re-arms
  if (auto t = table_.nextDeadline()) expiry_->enableAt(*t);
}

void UdpForwarder::onExpiry() {
  const MonotonicTime now = worker_.reactor().now();
  const std::string why = "no datagram for " + ms(table_.idle());
  for (size_t n = 0; n < kMaxExpiredPerRun; ++n) {
    FlowEntry* e = table_.expiredAt(now);
    if (!e) break;
    closeFlow(static_cast<Flow*>(e), Errc::IdleTimeout, why);
  }
  armExpiry();
}

}  // namespace ugate::udp
