#include "socks/socks_udp_relay.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <ugate/socket_util.h>

namespace ugate::socks {
namespace {

constexpr int kBatchesPerWake = 8;  // then re-arm, so other fds get their turn

bool sameIp(const SocketAddress& a, const SocketAddress& b) {
  return a.family() == b.family() && std::memcmp(a.ipBytes(), b.ipBytes(), static_cast<size_t>(a.ipLen())) == 0;
}

udp::FlowKey keyOf(const SocketAddress& a) { return udp::FlowKey{a, {}}; }

}  // namespace

ClientDatagram decodeClientDatagram(std::span<const uint8_t> datagram) {
  ClientDatagram out;
  UdpHeader h;
  if (parseUdpHeader(datagram, h) != Status::Done) {
    out.drop = Errc::ProtocolError;
    return out;
  }
  if (h.frag != 0) {
    out.drop = Errc::NotSupported;  // RFC 1928 §7: a relay without reassembly drops fragments
    return out;
  }
  if (h.dst.port == 0) {
    out.drop = Errc::InvalidArgument;
    return out;
  }
  out.dst = std::move(h.dst);
  out.payloadOffset = h.headerLen;
  return out;
}

size_t encodeReplyHeader(const SocketAddress& from, uint8_t* out) {
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;  // FRAG
  const bool v6 = from.family() == AF_INET6;
  out[3] = static_cast<uint8_t>(v6 ? AddressType::IPv6 : AddressType::IPv4);
  const size_t n = v6 ? 16 : 4;
  std::memcpy(out + 4, from.ipBytes(), n);
  out[4 + n] = static_cast<uint8_t>(from.port() >> 8);
  out[5 + n] = static_cast<uint8_t>(from.port() & 0xff);
  return 6 + n;
}

Result<std::unique_ptr<SocksUdpRelay>> SocksUdpRelay::start(ServiceContext& ctx, const Address& requested) {
  const StreamMeta& m = ctx.meta();
  SocketAddress at = m.local;
  if (!at.valid()) return makeError(Errc::InvalidArgument, "UDP ASSOCIATE: local address unknown");
  at.setPort(0);
  int fd = socket(at.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("UDP relay socket: ") + strerror(errno));
  if (bind(fd, at.sa(), at.len()) != 0) {
    int e = errno;
    ::close(fd);
    return makeError(errcFromErrno(e), "UDP relay bind " + at.str() + ": " + strerror(e));
  }
  udp::setBufferBytes(fd, 1 << 20);
  // Only the TCP client's IP may use the relay (RFC 1928 §7). Its port is the one the request
  // named, if it named one for that IP; else the port of the first datagram from that IP.
  SocketAddress client = m.source;
  bool pin = true;
  if (requested.port != 0 && requested.type != AddressType::Domain) {
    SocketAddress r = requested.socketAddress();
    if (r.isAny() || sameIp(r, client)) {
      client.setPort(requested.port);
      pin = false;
    }
  }
  if (pin) client.setPort(0);
  return std::unique_ptr<SocksUdpRelay>(new SocksUdpRelay(ctx, fd, localAddress(fd), client));
}

SocksUdpRelay::SocksUdpRelay(ServiceContext& ctx, int fd, SocketAddress bound, SocketAddress client)
    : ctx_(ctx), fd_(fd), bound_(bound), client_(client) {
  out4_.relay = this;
  out6_.relay = this;
  ctx_.reactor().addFd(fd_, this, EPOLLIN);
}

SocksUdpRelay::~SocksUdpRelay() {
  dests_.clear();  // cancels lookups
  for (Outbound* o : {&out4_, &out6_}) {
    if (o->fd >= 0) {
      ctx_.reactor().removeFd(o->fd, o);
      ::close(o->fd);
    }
  }
  ctx_.reactor().removeFd(fd_, this);
  ::close(fd_);
}

void SocksUdpRelay::onIoEvent(uint32_t) { readClient(); }

void SocksUdpRelay::readClient() {
  udp::RecvBatch& batch = udp::recvBatch();
  for (int b = 0; b < kBatchesPerWake; ++b) {
    IoResult r = batch.recv(fd_, 0);
    if (r.wouldBlock()) return;
    if (!r.ok()) {
      ctx_.dropped(udp::dropReason(r.err), 1);
      continue;
    }
    for (int64_t i = 0; i < r.value; ++i) {
      udp::Datagram& d = batch[static_cast<size_t>(i)];
      if (!sameIp(d.peer, client_) || (client_.port() != 0 && d.peer.port() != client_.port())) {
        ctx_.dropped(Errc::AuthFailed, 1);  // not the association's client
        continue;
      }
      if (d.truncated) {
        ctx_.dropped(Errc::TooLarge, 1);
        continue;
      }
      ClientDatagram cd = decodeClientDatagram({d.data, d.len});
      if (cd.drop != Errc::Ok) {
        ctx_.dropped(cd.drop, 1);
        continue;
      }
      if (client_.port() == 0) client_ = d.peer;  // pinned: later datagrams must come from here
      forward(cd.dst, {d.data + cd.payloadOffset, d.len - cd.payloadOffset});
    }
    flushOut();
    if (r.value < static_cast<int64_t>(udp::kBatch)) return;
  }
  ctx_.reactor().modFd(fd_, this, EPOLLIN);  // more may be waiting: come back next turn
}

void SocksUdpRelay::forward(const Address& dst, std::span<const uint8_t> payload) {
  const std::string key = HostPort{dst.hostString(), dst.port}.str();
  auto it = dests_.find(key);
  if (it == dests_.end()) {
    if (dests_.size() >= kMaxDestinations) {
      ctx_.dropped(Errc::ResourceExhausted, 1);
      return;
    }
    // Route the destination like a CONNECT to it would be routed.
    StreamMeta m;
    const StreamMeta& session = ctx_.meta();
    m.kind = session.kind;
    m.listener = session.listener;
    m.source = session.source;
    m.local = session.local;
    m.port = dst.port;
    if (dst.type == AddressType::Domain) {
      if (auto a = SocketAddress::fromIp(dst.host, dst.port)) {
        m.originalDst = *a;
        m.host = a->ip();
      } else {
        m.host = dst.host;
        for (char& c : m.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    } else {
      m.originalDst = dst.socketAddress();
      m.host = m.originalDst.ip();
    }
    RouteDecision d = ctx_.router().route(m);
    // Clusters serve TCP streams: a datagram routed to one has no route.
    if (d.action == RouteDecision::Action::Reject || d.action == RouteDecision::Action::NoRoute ||
        d.action == RouteDecision::Action::DialCluster) {
      ctx_.dropped(d.action == RouteDecision::Action::Reject ? Errc::RouteRejected : Errc::NoRoute, 1);
      return;  // not remembered: routes may change on reload
    }
    Destination& ds = dests_[key];
    if (d.action == RouteDecision::Action::DialOriginal) {
      ds.addr = m.originalDst;
    } else if (auto a = SocketAddress::fromIp(d.target.host, d.target.port)) {
      ds.addr = *a;
    } else {
      ds.resolving = true;
      ds.pending.emplace_back(reinterpret_cast<const char*>(payload.data()), payload.size());
      // May complete inline (a cached name): resolved() then sends the pending payload.
      auto q = ctx_.resolver().resolve(d.target.host, d.target.port,
                                       [this, key](Result<std::vector<SocketAddress>> r) { resolved(key, std::move(r)); });
      auto again = dests_.find(key);
      if (again != dests_.end() && again->second.resolving) again->second.dns = std::move(q);
      return;
    }
    it = dests_.find(key);
  }
  Destination& ds = it->second;
  if (ds.resolving) {
    if (ds.pending.size() >= kMaxPending) {
      ctx_.dropped(Errc::ResourceExhausted, 1);
    } else {
      ds.pending.emplace_back(reinterpret_cast<const char*>(payload.data()), payload.size());
    }
    return;
  }
  sendTo(ds.addr, payload);
}

void SocksUdpRelay::resolved(const std::string& key, Result<std::vector<SocketAddress>> r) {
  auto it = dests_.find(key);
  if (it == dests_.end()) return;
  Destination& ds = it->second;
  if (!r || r->empty()) {
    ctx_.dropped(Errc::DnsFailure, ds.pending.size());
    dests_.erase(it);  // the next datagram tries again (the resolver caches the failure briefly)
    return;
  }
  ds.addr = r->front();
  ds.resolving = false;
  for (const auto& p : ds.pending) sendTo(ds.addr, {reinterpret_cast<const uint8_t*>(p.data()), p.size()});
  flushOut();  // before the pending copies go away
  ds.pending.clear();
  ds.dns.reset();
}

SocksUdpRelay::Outbound* SocksUdpRelay::outbound(int family) {
  Outbound& o = family == AF_INET6 ? out6_ : out4_;
  if (o.fd >= 0) return &o;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  o.fd = fd;
  ctx_.reactor().addFd(o.fd, &o, EPOLLIN);
  return &o;
}

void SocksUdpRelay::sendTo(const SocketAddress& to, std::span<const uint8_t> payload) {
  Outbound* o = outbound(to.family());
  if (!o) {
    ctx_.dropped(Errc::ResourceExhausted, 1);
    return;
  }
  if (pendingOut_ != o || sendBatch_.full()) flushOut();
  sendBatch_.add(payload.data(), payload.size(), to);
  pendingOut_ = o;
  sentTo_.emplace(keyOf(to), true);
  ctx_.datagram(true, payload.size());
}

void SocksUdpRelay::flushOut() {
  if (!pendingOut_ || sendBatch_.size() == 0) {
    pendingOut_ = nullptr;
    return;
  }
  udp::SendBatch::Outcome o = sendBatch_.flush(pendingOut_->fd);
  if (o.dropped) ctx_.dropped(udp::dropReason(o.lastErr), o.dropped);
  pendingOut_ = nullptr;
}

void SocksUdpRelay::readDestinations(Outbound& o) {
  udp::RecvBatch& batch = udp::recvBatch();
  for (int b = 0; b < kBatchesPerWake; ++b) {
    IoResult r = batch.recv(o.fd, 0);
    if (r.wouldBlock()) return;
    if (!r.ok()) {
      ctx_.dropped(udp::dropReason(r.err), 1);  // an ICMP error for a datagram sent earlier
      continue;
    }
    for (int64_t i = 0; i < r.value; ++i) {
      udp::Datagram& d = batch[static_cast<size_t>(i)];
      if (sentTo_.find(keyOf(d.peer)) == sentTo_.end()) {
        ctx_.dropped(Errc::AuthFailed, 1);  // the client never sent to this address
        continue;
      }
      if (d.truncated) {
        ctx_.dropped(Errc::TooLarge, 1);
        continue;
      }
      uint8_t* h = headers_[static_cast<size_t>(i)].data();
      size_t hl = encodeReplyHeader(d.peer, h);
      sendBatch_.add2(h, hl, d.data, d.len, client_);
      ctx_.datagram(false, d.len);
    }
    udp::SendBatch::Outcome out = sendBatch_.flush(fd_);
    if (out.dropped) ctx_.dropped(udp::dropReason(out.lastErr), out.dropped);
    if (r.value < static_cast<int64_t>(udp::kBatch)) return;
  }
  ctx_.reactor().modFd(o.fd, &o, EPOLLIN);
}

}  // namespace ugate::socks
