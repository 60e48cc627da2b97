#include "local/neighbour_table.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace ugate::local {

SourceRateLimiter::SourceRateLimiter(double perSecond, double burst, size_t maxSources)
    : perSecond_(perSecond), burst_(std::max(burst, 1.0)), maxSources_(std::max<size_t>(maxSources, 1)) {}

void SourceRateLimiter::prune(MonotonicTime now) {
  // A bucket that has refilled completely says nothing a fresh one would not: forget it.
  const double full = perSecond_ > 0 ? burst_ / perSecond_ : 0;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double idle = std::chrono::duration<double>(now - it->second.last).count();
    if (perSecond_ > 0 && idle >= full) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SourceRateLimiter::allow(const std::string& source, MonotonicTime now) {
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= maxSources_) prune(now);
    if (buckets_.size() >= maxSources_) return false;  // a flood of sources: new ones wait
    it = buckets_.emplace(source, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  const double dt = std::chrono::duration<double>(now - b.last).count();
  if (dt > 0) b.tokens = std::min(burst_, b.tokens + dt * perSecond_);
  b.last = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

ReplayWindow::ReplayWindow(Duration maxAge, Duration maxFuture, size_t maxNodes)
    : maxAge_(maxAge), maxFuture_(maxFuture), maxNodes_(maxNodes) {}

void ReplayWindow::prune(MonotonicTime now) {
  for (auto it = last_.begin(); it != last_.end();) {
    if (now - it->second.at > maxAge_ + maxFuture_) {
      it = last_.erase(it);
    } else {
      ++it;
    }
  }
}

Reject ReplayWindow::check(const std::string& nodeId, uint64_t sequence, int64_t timestampMs, int64_t wallMs,
                           MonotonicTime now) {
  if (timestampMs < wallMs - maxAge_.count()) return Reject::TooOld;
  if (timestampMs > wallMs + maxFuture_.count()) return Reject::TooNew;
  auto it = last_.find(nodeId);
  if (it != last_.end() && now - it->second.at > maxAge_ + maxFuture_) {
    last_.erase(it);
    it = last_.end();
  }
  if (it == last_.end()) {
    if (last_.size() >= maxNodes_) prune(now);
    return last_.size() >= maxNodes_ ? Reject::TableFull : Reject::None;
  }
  const Entry& e = it->second;
  if (sequence > e.highest) return Reject::None;
  const uint64_t behind = e.highest - sequence;
  if (behind >= kReplayWindow) return Reject::Replay;  // too far behind to tell: refused
  return (e.seen >> behind) & 1 ? Reject::Replay : Reject::None;
}

void ReplayWindow::accept(const std::string& nodeId, uint64_t sequence, MonotonicTime now) {
  // A node heard for the first time: nothing below its first sequence is taken (~0: all "seen"),
  // so a capture older than our first contact cannot be replayed even inside the window.
  auto [it, fresh] = last_.try_emplace(nodeId, Entry{sequence, ~uint64_t{0}, now});
  Entry& e = it->second;
  e.at = now;
  if (fresh) return;
  if (sequence > e.highest) {
    const uint64_t ahead = sequence - e.highest;
    e.seen = ahead >= kReplayWindow ? 1 : (e.seen << ahead) | 1;
    e.highest = sequence;
  } else {
    e.seen |= uint64_t{1} << (e.highest - sequence);
  }
}

bool NeighbourTable::update(Neighbour n) {
  auto it = nodes_.find(n.nodeId);
  if (it == nodes_.end()) {
    n.firstSeen = n.lastSeen;
    nodes_.emplace(n.nodeId, std::move(n));
    return true;
  }
  n.firstSeen = it->second.firstSeen;
  it->second = std::move(n);
  return false;
}

std::vector<Neighbour> NeighbourTable::expire(MonotonicTime now) {
  std::vector<Neighbour> gone;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (now - it->second.lastSeen >= expire_) {
      gone.push_back(std::move(it->second));
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::optional<MonotonicTime> NeighbourTable::nextExpiry() const {
  std::optional<MonotonicTime> t;
  for (const auto& [id, n] : nodes_) {
    if (!t || n.lastSeen + expire_ < *t) t = n.lastSeen + expire_;
  }
  return t;
}

namespace {

// withPort: the address `ip` (an IP literal, perhaps "fe80::1%eth0") at port, with scopeId for
// link-local IPv6; nullopt when ip is no literal.
std::optional<SocketAddress> withPort(std::string_view ip, uint16_t port, uint32_t scopeId) {
  if (auto pct = ip.find('%'); pct != std::string_view::npos) ip = ip.substr(0, pct);
  auto a = SocketAddress::fromIp(ip, port);
  if (!a || a->family() != AF_INET6) return a;
  sockaddr_in6 s6{};
  std::memcpy(&s6, a->sa(), sizeof(s6));
  if (IN6_IS_ADDR_LINKLOCAL(&s6.sin6_addr)) {
    if (scopeId == 0) return std::nullopt;  // unusable without its interface
    s6.sin6_scope_id = scopeId;
  }
  return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&s6), sizeof(s6));
}

void addUnique(std::vector<SocketAddress>& out, std::optional<SocketAddress> a) {
  if (a && std::find(out.begin(), out.end(), *a) == out.end()) out.push_back(*a);
}

}  // namespace

DirectPeer directPeer(const Neighbour& n, uint32_t scopeId) {
  DirectPeer p;
  p.id = n.nodeId;
  p.name = n.name;
  p.source = "local";
  p.interface = n.interface;
  p.lastSeenUnixMs = n.lastSeenWallMs;
  for (auto [port, out] : {std::pair{n.tcpPort, &p.meshTcp}, std::pair{n.quicPort, &p.meshQuic}}) {
    if (port == 0) continue;
    std::vector<SocketAddress> all;
    addUnique(all, withPort(n.source, port, scopeId));
    for (const IpAddr& ip : n.addresses) addUnique(all, withPort(ip.str(), port, scopeId));
    // Link-local IPv6 last: bound to one interface (and to its index staying the same).
    std::stable_partition(all.begin(), all.end(), [](const SocketAddress& a) {
      return a.family() != AF_INET6 ||
             !IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_addr);
    });
    *out = std::move(all);
  }
  return p;
}

Receiver::Receiver(ReceiverParams p)
    : p_(std::move(p)),
      rate_(p_.ratePerSecond, p_.rateBurst, p_.maxSources),
      verifyBudget_(p_.verifyPerSecond, 2 * p_.verifyPerSecond, 1),
      replay_(p_.maxAge, p_.maxFuture, p_.maxNodes),
      table_(p_.expire, p_.maxNodes) {}

Received Receiver::receive(std::span<const uint8_t> datagram, const std::string& source, const std::string& interface,
                           int64_t wallMs, MonotonicTime now) {
  Received r;
  if (!rate_.allow(source, now)) {
    r.reject = Reject::RateLimited;
    return r;
  }
  r.reject = parseUnverified(datagram, r.announcement);
  if (r.reject == Reject::None && !verifyBudget_.allow("*", now)) r.reject = Reject::RateLimited;
  if (r.reject == Reject::None) r.reject = verifySignature(datagram);
  if (r.reject != Reject::None) return r;
  const Announcement& a = r.announcement;
  if (a.nodeId == p_.ownId) {
    r.reject = Reject::Own;
    return r;
  }
  r.reject = replay_.check(a.nodeId, a.sequence, a.timestampMs, wallMs, now);
  if (r.reject == Reject::None && !table_.contains(a.nodeId) && table_.full()) r.reject = Reject::TableFull;
  if (r.reject != Reject::None) return r;
  replay_.accept(a.nodeId, a.sequence, now);
  Neighbour n;
  n.nodeId = a.nodeId;
  n.name = a.name;
  n.addresses = a.addresses;
  n.source = source;
  n.interface = interface;
  n.tcpPort = a.tcpPort;
  n.quicPort = a.quicPort;
  n.sequence = a.sequence;
  if (auto known = table_.nodes().find(a.nodeId); known != table_.nodes().end()) {
    n.sequence = std::max(n.sequence, known->second.sequence);  // a late one does not move it back
  }
  n.lastSeen = now;
  n.lastSeenWallMs = wallMs;
  r.isNew = table_.update(std::move(n));
  return r;
}

}  // namespace ugate::local
