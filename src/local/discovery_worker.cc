#include "local/discovery_worker.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/time.h>
#include <ugate/tls_provider.h>
#include <ugate/worker_context.h>

#include "local/link_events.h"

#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif
#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif

namespace ugate::local {

namespace {

constexpr size_t kReadsPerWake = 64;      // datagrams read per wake-up before yielding (fairness)
constexpr Duration kChangeDebounce{100};  // netlink events come in bursts (link up, then addresses)

// sourceText: the sender's IP (IPv6 with %interface when link-local), its rate-limit key.
std::string sourceText(const sockaddr_storage& ss, const std::string& ifname) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof(buf));
    return buf;
  }
  const auto& s6 = reinterpret_cast<const sockaddr_in6&>(ss);
  inet_ntop(AF_INET6, &s6.sin6_addr, buf, sizeof(buf));
  std::string s = buf;
  if (IN6_IS_ADDR_LINKLOCAL(&s6.sin6_addr)) s += "%" + ifname;
  return s;
}

bool setInt(int fd, int level, int opt, int v) { return setsockopt(fd, level, opt, &v, sizeof(v)) == 0; }

}  // namespace

DiscoveryWorker::DiscoveryWorker(WorkerContext& w, DiscoveryShared& shared, auth::PrivateKey key, std::string keyError)
    : w_(w), shared_(shared), key_(std::move(key)), keyError_(std::move(keyError)) {
  sequence_ = static_cast<uint64_t>(wallClockMs()) * 1000;  // above anything sent before a restart
}

DiscoveryWorker::~DiscoveryWorker() { stop("stopped"); }

void DiscoveryWorker::configApplied(const Config& cfg) {
  if (draining_) return;
  const DiscoveryConfig& d = discoveryConfig(cfg);
  if (!d.enabled) {
    if (running_) spdlog::info("discovery: disabled");
    cfg_ = d;
    stop("disabled");
    return;
  }
  if (!key_.valid()) {
    if (state_ != "no_key") {
      spdlog::error("discovery: enabled, but the node key {}: restart ugated to load it",
                    keyError_.empty() ? "was not loaded (discovery was off at startup)" : "could not be loaded: " + keyError_);
    }
    cfg_ = d;
    stop("no_key");
    return;
  }
  if (!identityMatches()) {
    cfg_ = d;
    stop("id_mismatch");
    return;
  }
  // New sockets or receiver limits: start over (the table refills within an interval, since
  // the start announcement makes every neighbour answer).
  const bool restart = !running_ || !d.sameSockets(cfg_) || d.clockSkew != cfg_.clockSkew ||
                       d.maxNeighbours != cfg_.maxNeighbours || d.ratePerSecond != cfg_.ratePerSecond ||
                       d.rateBurst != cfg_.rateBurst || d.verifyPerSecond != cfg_.verifyPerSecond;
  const bool timing = d.interval != cfg_.interval;
  const bool content = d.name != cfg_.name || d.tcpPort != cfg_.tcpPort || d.quicPort != cfg_.quicPort ||
                       d.announceAddresses != cfg_.announceAddresses;
  cfg_ = d;
  if (restart) {
    stop("stopped");
    start();
    return;
  }
  rx_->table().setExpire(cfg_.expire);
  if (timing) announceTimer_->enable(cfg_.interval);
  if (content) announceAll(SendCause::Change);  // neighbours learn the new name or ports now
  armExpiry();
  publish();
}

bool DiscoveryWorker::identityMatches() {
  // The announced ID must be the one peers see in our certificate (credentials reloaded from disk
  // with another key would make them differ).
  const auto& tls = w_.tls();
  if (!tls || tls->nodeId() == key_.nodeId()) return true;
  spdlog::error("discovery: the TLS identity {} differs from the key loaded at startup ({}): not announcing; restart ugated",
                tls->nodeId(), key_.nodeId());
  return false;
}

void DiscoveryWorker::drain() {
  draining_ = true;
  stop("stopped");
}

void DiscoveryWorker::start() {
  ReceiverParams p;
  p.ownId = key_.nodeId();
  p.expire = cfg_.expire;
  p.maxAge = cfg_.clockSkew;
  p.maxFuture = cfg_.clockSkew;
  p.ratePerSecond = cfg_.ratePerSecond;
  p.rateBurst = cfg_.rateBurst;
  p.verifyPerSecond = cfg_.verifyPerSecond;
  p.maxNodes = cfg_.maxNeighbours;
  rx_ = std::make_unique<Receiver>(p);
  Reactor& r = w_.reactor();
  nl_ = openLinkEventSocket();
  if (nl_ < 0) {
    spdlog::warn("discovery: no netlink socket ({}): interface changes are seen only at each announcement, every {} ms", strerror(errno),
                 cfg_.interval.count());
  } else if (!r.addFd(nl_, this, EPOLLIN)) {
    close(nl_);
    nl_ = -1;
  }
  announceTimer_ = r.createTimer([this] { onAnnounceTimer(); });
  expiryTimer_ = r.createTimer([this] { onExpiryTimer(); });
  changeTimer_ = r.createTimer([this] { onChangeTimer(); });
  running_ = true;
  state_ = "running";
  refreshLinks();
  spdlog::info("discovery: announcing {} ({}) on {} socket(s), port {}, every {} ms", cfg_.name, key_.nodeId(),
               links_.size(), cfg_.port, cfg_.interval.count());
  announceAll(SendCause::Start);
  announceTimer_->enable(cfg_.interval);
  publish();
}

void DiscoveryWorker::stop(const char* state) {
  state_ = state;
  if (running_) {
    for (auto& l : links_) closeLink(*l);
    links_.clear();
    if (nl_ >= 0) {
      w_.reactor().removeFd(nl_, this);
      close(nl_);
      nl_ = -1;
    }
    announceTimer_.reset();
    expiryTimer_.reset();
    changeTimer_.reset();
    rx_.reset();
    interfaces_.clear();
    changed_.clear();
    missing_.clear();
    running_ = false;
  }
  publish();
}

std::vector<DiscoveryWorker::Interface> DiscoveryWorker::scanInterfaces() const {
  std::vector<Interface> out;
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) {
    spdlog::warn("discovery: getifaddrs: {}", strerror(errno));
    return out;
  }
  for (ifaddrs* a = all; a != nullptr; a = a->ifa_next) {
    if (!a->ifa_name) continue;
    const unsigned flags = a->ifa_flags;
    if (!(flags & IFF_UP) || !(flags & IFF_MULTICAST) || (flags & IFF_LOOPBACK)) continue;
    const std::string name = a->ifa_name;
    if (!cfg_.interfaces.empty() &&
        std::find(cfg_.interfaces.begin(), cfg_.interfaces.end(), name) == cfg_.interfaces.end()) {
      continue;
    }
    auto it = std::find_if(out.begin(), out.end(), [&](const Interface& i) { return i.name == name; });
    if (it == out.end()) {
      Interface i;
      i.name = name;
      i.index = static_cast<int>(if_nametoindex(a->ifa_name));
      if (i.index == 0) continue;
      out.push_back(std::move(i));
      it = out.end() - 1;
    }
    if (!a->ifa_addr) continue;
    IpAddr ip;
    if (a->ifa_addr->sa_family == AF_INET) {
      ip.family = 4;
      std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, 4);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      ip.family = 6;
      std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    if (it->addresses.size() < kMaxAddresses) it->addresses.push_back(ip);
  }
  freeifaddrs(all);
  return out;
}

std::set<uint64_t> DiscoveryWorker::refreshLinks() {
  interfaces_ = scanInterfaces();
  // A configured interface that is absent, down or without multicast: said once, until it changes.
  std::set<std::string> missing;
  for (const std::string& name : cfg_.interfaces) {
    if (std::none_of(interfaces_.begin(), interfaces_.end(), [&](const Interface& i) { return i.name == name; })) {
      missing.insert(name);
      if (!missing_.count(name)) {
        spdlog::warn("discovery: interface {} (discovery.interfaces) is absent, down or not multicast-capable: not used until it is",
                     name);
      }
    }
  }
  missing_ = std::move(missing);
  // Close links whose interface went away (or came back under another index).
  for (auto it = links_.begin(); it != links_.end();) {
    Link& l = **it;
    const bool keep = std::any_of(interfaces_.begin(), interfaces_.end(),
                                  [&](const Interface& i) { return i.name == l.ifname && i.index == l.ifindex; });
    if (keep) {
      ++it;
      continue;
    }
    spdlog::info("discovery: interface {} gone: its ipv{} socket is closed", l.ifname, l.family);
    closeLink(l);
    it = links_.erase(it);
  }
  std::set<uint64_t> opened;
  for (const Interface& i : interfaces_) {
    for (int family : {4, 6}) {
      if ((family == 4 && !cfg_.ipv4) || (family == 6 && !cfg_.ipv6)) continue;
      const bool have = std::any_of(links_.begin(), links_.end(), [&](const std::unique_ptr<Link>& l) {
        return l->ifindex == i.index && l->family == family;
      });
      if (have) continue;
      auto l = std::make_unique<Link>(*this, nextLinkId_++);
      l->ifname = i.name;
      l->ifindex = i.index;
      l->family = family;
      if (!openLink(*l)) continue;
      opened.insert(l->id);
      links_.push_back(std::move(l));
    }
  }
  return opened;
}

bool DiscoveryWorker::openLink(Link& l) {
  const bool v6 = l.family == 6;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const char* step = "socket";
  bool ok = fd >= 0;
  if (ok) ok = setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1) || (step = "SO_REUSEADDR", false);
  // One socket per interface: it hears only what arrives there, and sends there.
  if (ok) {
    ok = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, l.ifname.c_str(), static_cast<socklen_t>(l.ifname.size())) == 0 ||
         (step = "SO_BINDTODEVICE", false);
  }
  if (ok && v6) ok = setInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) || (step = "IPV6_V6ONLY", false);
  if (ok) {
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto& s6 = reinterpret_cast<sockaddr_in6&>(ss);
      s6.sin6_family = AF_INET6;
      s6.sin6_port = htons(cfg_.port);
      len = sizeof(s6);
    } else {
      auto& s4 = reinterpret_cast<sockaddr_in&>(ss);
      s4.sin_family = AF_INET;
      s4.sin_port = htons(cfg_.port);
      len = sizeof(s4);
    }
    ok = bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 || (step = "bind", false);
  }
  if (ok && v6) {
    ipv6_mreq m{};
    std::memcpy(&m.ipv6mr_multiaddr, cfg_.group6.bytes.data(), 16);
    m.ipv6mr_interface = static_cast<unsigned>(l.ifindex);
    ok = setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof(m)) == 0 || (step = "IPV6_JOIN_GROUP", false);
    if (ok) ok = setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, l.ifindex) || (step = "IPV6_MULTICAST_IF", false);
    if (ok) ok = setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1) || (step = "IPV6_MULTICAST_HOPS", false);
    if (ok) (void)setInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0);  // only groups this socket joined
  } else if (ok) {
    ip_mreqn m{};
    std::memcpy(&m.imr_multiaddr, cfg_.group4.bytes.data(), 4);
    m.imr_ifindex = l.ifindex;
    ok = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) == 0 || (step = "IP_ADD_MEMBERSHIP", false);
    if (ok) ok = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)) == 0 || (step = "IP_MULTICAST_IF", false);
    if (ok) ok = setInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, 1) || (step = "IP_MULTICAST_TTL", false);
    if (ok) (void)setInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0);
  }
  if (ok) ok = w_.reactor().addFd(fd, &l, EPOLLIN) || (step = "epoll", false);
  if (!ok) {
    const int e = errno;
    if (fd >= 0) close(fd);
    shared_.counters.socketErrors.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("discovery: interface {} ipv{}: {}: {} (not used)", l.ifname, l.family, step, strerror(e));
    return false;
  }
  l.fd = fd;
  return true;
}

void DiscoveryWorker::closeLink(Link& l) {
  if (l.fd < 0) return;
  w_.reactor().removeFd(l.fd, &l);
  close(l.fd);
  l.fd = -1;
}

DiscoveryWorker::Link* DiscoveryWorker::findLink(uint64_t id) {
  for (auto& l : links_) {
    if (l->id == id) return l.get();
  }
  return nullptr;
}

std::vector<IpAddr> DiscoveryWorker::addressesOf(int ifindex) const {
  if (!cfg_.announceAddresses) return {};
  for (const Interface& i : interfaces_) {
    if (i.index == ifindex) return i.addresses;
  }
  return {};
}

void DiscoveryWorker::announce(Link& l, SendCause cause, const sockaddr* to, socklen_t toLen) {
  Announcement a;
  a.reply = cause == SendCause::Reply;
  a.sequence = ++sequence_;
  a.timestampMs = wallClockMs();
  a.tcpPort = cfg_.tcpPort;
  a.quicPort = cfg_.quicPort;
  a.name = cfg_.name;
  a.addresses = addressesOf(l.ifindex);
  auto bytes = encodeAnnouncement(std::move(a), key_);
  if (!bytes) {
    shared_.counters.sendErrors.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("discovery: {}", bytes.error().detail);
    return;
  }
  sockaddr_storage group{};
  if (to == nullptr) {
    if (l.family == 6) {
      auto& s6 = reinterpret_cast<sockaddr_in6&>(group);
      s6.sin6_family = AF_INET6;
      s6.sin6_port = htons(cfg_.port);
      std::memcpy(&s6.sin6_addr, cfg_.group6.bytes.data(), 16);
      s6.sin6_scope_id = static_cast<uint32_t>(l.ifindex);
      toLen = sizeof(s6);
    } else {
      auto& s4 = reinterpret_cast<sockaddr_in&>(group);
      s4.sin_family = AF_INET;
      s4.sin_port = htons(cfg_.port);
      std::memcpy(&s4.sin_addr, cfg_.group4.bytes.data(), 4);
      toLen = sizeof(s4);
    }
    to = reinterpret_cast<const sockaddr*>(&group);
  }
  ssize_t n;
  do {
    n = sendto(l.fd, bytes->data(), bytes->size(), 0, to, toLen);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    shared_.counters.sendErrors.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (rejectLog_.allow(w_.reactor().now(), suppressed)) {
      spdlog::warn("discovery: send on {} ipv{}: {}", l.ifname, l.family, strerror(errno));
    }
    return;
  }
  shared_.counters.sent[static_cast<size_t>(cause)].fetch_add(1, std::memory_order_relaxed);
}

void DiscoveryWorker::announceAll(SendCause cause) {
  for (auto& l : links_) announce(*l, cause, nullptr, 0);
}

void DiscoveryWorker::readLink(uint64_t id) {
  Link* l = findLink(id);
  if (l == nullptr || !rx_) return;
  uint8_t buf[kMaxLen + 512];
  bool changed = false;
  size_t reads = 0;
  for (; reads < kReadsPerWake; ++reads) {
    sockaddr_storage from{};
    socklen_t fromLen = sizeof(from);
    ssize_t n = recvfrom(l->fd, buf, sizeof(buf), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;  // EAGAIN: read everything (edge-triggered)
    // MSG_TRUNC: n is the real size; a datagram longer than the buffer is no announcement.
    const size_t len = std::min(static_cast<size_t>(n), sizeof(buf));
    const std::string src = sourceText(from, l->ifname);
    Received r = rx_->receive(std::span<const uint8_t>(buf, len), src, l->ifname, wallClockMs(), w_.reactor().now());
    if (r.reject != Reject::None) {
      shared_.counters.rejected[static_cast<size_t>(r.reject)].fetch_add(1, std::memory_order_relaxed);
      uint64_t suppressed = 0;
      // Our own looped-back multicast is expected: counted, not logged.
      if (r.reject != Reject::Own && rejectLog_.allow(w_.reactor().now(), suppressed)) {
        spdlog::warn("discovery: dropped a datagram from {} on {}: {}{}", src, l->ifname, rejectName(r.reject),
                     suppressed ? " (" + std::to_string(suppressed) + " more since the last line)" : "");
      }
      continue;
    }
    shared_.counters.received.fetch_add(1, std::memory_order_relaxed);
    changed = true;
    if (r.isNew) {
      spdlog::info("discovery: neighbour {} ({}) on {} from {}", r.announcement.name, r.announcement.nodeId, l->ifname, src);
      // A new neighbour learns of us now rather than at our next interval.
      if (!r.announcement.reply) announce(*l, SendCause::Reply, reinterpret_cast<const sockaddr*>(&from), fromLen);
    }
  }
  if (reads == kReadsPerWake) {
    // More may be queued: continue after other fds had their turn (edge-triggered: no new event).
    w_.reactor().defer([this, id] { readLink(id); });
  }
  if (changed) {
    armExpiry();
    publish();
  }
}

void DiscoveryWorker::onAnnounceTimer() {
  if (!identityMatches()) {
    // Not from inside the timer's own callback: stop() destroys the timers.
    w_.reactor().defer([this] { stop("id_mismatch"); });
    return;
  }
  announceTimer_->enable(cfg_.interval);
  // Rescan too: the addresses announced stay current even if a netlink event was lost (or there is
  // no netlink socket), and an interface that appeared gets its socket.
  refreshLinks();
  announceAll(SendCause::Interval);
  publish();
}

void DiscoveryWorker::armExpiry() {
  if (!rx_) return;
  auto next = rx_->table().nextExpiry();
  if (next) {
    expiryTimer_->enableAt(*next);
  } else {
    expiryTimer_->disable();
  }
}

void DiscoveryWorker::onExpiryTimer() {
  if (!rx_) return;
  auto gone = rx_->table().expire(w_.reactor().now());
  for (const Neighbour& n : gone) {
    spdlog::info("discovery: neighbour {} ({}) expired: not heard for {} ms", n.name, n.nodeId, cfg_.expire.count());
  }
  shared_.counters.expired.fetch_add(gone.size(), std::memory_order_relaxed);
  armExpiry();
  if (!gone.empty()) publish();
}

void DiscoveryWorker::onIoEvent(uint32_t) {
  uint8_t buf[16384];
  for (;;) {
    ssize_t n = recv(nl_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {  // the kernel dropped events: look at everything
      rescanAll_ = true;
      continue;
    }
    if (n <= 0) break;
    const size_t events = linkEvents(std::span<const uint8_t>(buf, static_cast<size_t>(n)), changed_);
    shared_.counters.linkEvents.fetch_add(events, std::memory_order_relaxed);
  }
  if ((!changed_.empty() || rescanAll_) && changeTimer_ && !changeTimer_->enabled()) {
    changeTimer_->enable(kChangeDebounce);
  }
}

void DiscoveryWorker::onChangeTimer() {
  std::set<uint64_t> opened = refreshLinks();
  for (auto& l : links_) {
    if (opened.count(l->id) || rescanAll_ || changed_.count(l->ifindex)) announce(*l, SendCause::Change, nullptr, 0);
  }
  changed_.clear();
  rescanAll_ = false;
  publish();
}

void DiscoveryWorker::publish() {
  auto v = std::make_shared<DiscoveryView>();
  v->state = state_;
  if (key_.valid()) v->nodeId = key_.nodeId();
  v->name = cfg_.name;
  v->tcpPort = cfg_.tcpPort;
  v->quicPort = cfg_.quicPort;
  for (const auto& l : links_) v->interfaces.push_back(l->ifname + "/ipv" + std::to_string(l->family));
  std::vector<DirectPeer> direct;
  if (rx_) {
    for (const auto& [id, n] : rx_->table().nodes()) {
      v->neighbours.push_back(n);
      direct.push_back(directPeer(n, if_nametoindex(n.interface.c_str())));
    }
  }
  shared_.publish(std::move(v));
  // The mesh dials these directly (`<name>.mesh`); stopped, we withdraw them all.
  peerDirectory().publish("local", std::move(direct));
}

}  // namespace ugate::local
