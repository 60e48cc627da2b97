#include <ugate/datagram_io.h>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace ugate::udp {
namespace {

// Room for the largest ancillary data we ask for: an original destination (sockaddr_in6), a
// packet-info block, the overflow counter, a TOS / traffic class and a GRO segment size.
constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(sockaddr_in6)) + CMSG_SPACE(sizeof(in6_pktinfo)) +
                              CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(int));

SocketAddress fromIpBytes(int family, const void* addr) {
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, addr, sizeof(sin.sin_addr));
    return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  std::memcpy(&sin6.sin6_addr, addr, sizeof(sin6.sin6_addr));
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6));
}

/** cmsgInt: an int-sized (or, when the kernel sent one byte, byte-sized) cmsg payload. */
int cmsgInt(const cmsghdr* c) {
  if (c->cmsg_len >= CMSG_LEN(sizeof(int))) {
    int v;
    std::memcpy(&v, CMSG_DATA(c), sizeof(v));
    return v;
  }
  return c->cmsg_len >= CMSG_LEN(1) ? *CMSG_DATA(c) : 0;
}

void addCmsg(uint8_t* buf, size_t& used, int level, int type, const void* data, size_t len) {
  auto* c = reinterpret_cast<cmsghdr*>(buf + used);
  std::memset(c, 0, CMSG_SPACE(len));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  std::memcpy(CMSG_DATA(c), data, len);
  used += CMSG_SPACE(len);
}

Result<void> setOpt(int fd, int level, int opt, const char* name) {
  int one = 1;
  if (setsockopt(fd, level, opt, &one, sizeof(one)) != 0) {
    int e = errno;
    std::string why = std::string(name) + ": " + strerror(e);
    if (e == EPERM) why += " (needs CAP_NET_ADMIN)";
    return makeError(errcFromErrno(e), why);
  }
  return {};
}

}  // namespace

void parseRecvCmsgs(const msghdr& h, Datagram& d, uint32_t& overflow) {
  msghdr& m = const_cast<msghdr&>(h);  // CMSG_NXTHDR takes a non-const header; nothing is written
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      std::memcpy(&overflow, CMSG_DATA(c), sizeof(overflow));
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR &&
               c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in))) {
      d.origDst = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(CMSG_DATA(c)), sizeof(sockaddr_in));
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR &&
               c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in6))) {
      d.origDst = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(CMSG_DATA(c)), sizeof(sockaddr_in6));
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      d.local = fromIpBytes(AF_INET, &pi.ipi_addr);
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      d.local = fromIpBytes(AF_INET6, &pi.ipi6_addr);
    } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      const int seg = cmsgInt(c);
      d.segSize = seg > 0 && seg < 65536 ? static_cast<uint16_t>(seg) : 0;
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_TOS && c->cmsg_len >= CMSG_LEN(1)) {
      d.tos = *CMSG_DATA(c);  // one byte
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_TCLASS) {
      d.tos = static_cast<uint8_t>(cmsgInt(c));  // an int
    }
  }
}

size_t buildSendCmsgs(uint8_t* buf, int family, const SocketAddress& from, uint8_t tos, uint16_t segSize) {
  size_t used = 0;
  if (from.valid()) {
    if (from.family() == AF_INET) {
      in_pktinfo pi{};
      std::memcpy(&pi.ipi_spec_dst, from.ipBytes(), 4);
      addCmsg(buf, used, SOL_IP, IP_PKTINFO, &pi, sizeof(pi));
    } else {
      in6_pktinfo pi{};
      std::memcpy(&pi.ipi6_addr, from.ipBytes(), 16);
      addCmsg(buf, used, SOL_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
    }
  }
  if (tos != 0) {
    const int v = tos;
    if (family == AF_INET6) {
      addCmsg(buf, used, SOL_IPV6, IPV6_TCLASS, &v, sizeof(v));
    } else {
      addCmsg(buf, used, SOL_IP, IP_TOS, &v, sizeof(v));
    }
  }
  // Last, so that flush() can drop it alone when the kernel refuses GSO.
  if (segSize != 0) addCmsg(buf, used, SOL_UDP, UDP_SEGMENT, &segSize, sizeof(segSize));
  return used;
}

struct RecvBatch::Impl {
  std::unique_ptr<uint8_t[]> buf{new uint8_t[kBatch * kMaxDatagram]};
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  sockaddr_storage names[kBatch]{};
  alignas(cmsghdr) uint8_t cmsg[kBatch][kCmsgSpace]{};
};

RecvBatch::RecvBatch() : impl_(new Impl) {}
RecvBatch::~RecvBatch() = default;

IoResult RecvBatch::recv(int fd, uint8_t flags, unsigned max) {
  Impl& m = *impl_;
  if (max > kBatch) max = kBatch;
  for (unsigned i = 0; i < max; ++i) {
    m.iov[i] = {m.buf.get() + i * kMaxDatagram, kMaxDatagram};
    msghdr& h = m.msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &m.names[i];
    h.msg_namelen = sizeof(m.names[i]);
    h.msg_iov = &m.iov[i];
    h.msg_iovlen = 1;
    if (flags) {
      h.msg_control = m.cmsg[i];
      h.msg_controllen = kCmsgSpace;
    }
  }
  int n;
  do {
    n = recvmmsg(fd, m.msgs, max, MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return IoResult{0, errno};
  kernelDrops_ = 0;
  for (int i = 0; i < n; ++i) {
    msghdr& h = m.msgs[i].msg_hdr;
    Datagram& d = slots_[i];
    d.data = static_cast<uint8_t*>(m.iov[i].iov_base);
    d.len = m.msgs[i].msg_len;
    d.truncated = (h.msg_flags & MSG_TRUNC) != 0;
    d.peer = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&m.names[i]), h.msg_namelen);
    d.origDst = SocketAddress{};
    d.local = SocketAddress{};
    d.segSize = 0;
    d.tos = 0;
    if (flags) parseRecvCmsgs(h, d, kernelDrops_);
  }
  return IoResult{n, 0};
}

RecvBatch& recvBatch() {
  thread_local RecvBatch b;
  return b;
}

struct SendBatch::Impl {
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch][2]{};
  sockaddr_storage names[kBatch]{};
  alignas(cmsghdr) uint8_t cmsg[kBatch][kSendCmsgSpace]{};
  uint16_t segSize[kBatch]{};  // UDP_SEGMENT size of a segmented message, 0 = one datagram
};

SendBatch::SendBatch() : impl_(new Impl) {}
SendBatch::~SendBatch() = default;

bool SendBatch::addSegmented(const uint8_t* data, size_t len, uint16_t segSize, const SocketAddress& to,
                             const SocketAddress& from, uint8_t tos) {
  if (!add(data, len, to, {})) return false;
  if (segSize >= len) segSize = 0;
  if (!from.valid() && tos == 0 && segSize == 0) return true;
  Impl& m = *impl_;
  const unsigned i = n_ - 1;
  msghdr& h = m.msgs[i].msg_hdr;
  const int family = to.valid() ? to.family() : from.valid() ? from.family() : AF_INET;
  h.msg_control = m.cmsg[i];
  h.msg_controllen = buildSendCmsgs(m.cmsg[i], family, from, tos, segSize);
  if (h.msg_controllen == 0) h.msg_control = nullptr;
  m.segSize[i] = segSize;
  return true;
}

bool SendBatch::add(const uint8_t* data, size_t len, const SocketAddress& to, const SocketAddress& from) {
  if (n_ == kBatch) return false;
  Impl& m = *impl_;
  m.segSize[n_] = 0;
  msghdr& h = m.msgs[n_].msg_hdr;
  h = msghdr{};
  m.iov[n_][0] = {const_cast<uint8_t*>(data), len};
  h.msg_iov = m.iov[n_];
  h.msg_iovlen = 1;
  if (to.valid()) {
    std::memcpy(&m.names[n_], to.sa(), to.len());
    h.msg_name = &m.names[n_];
    h.msg_namelen = to.len();
  }
  if (from.valid()) {
    h.msg_control = m.cmsg[n_];
    h.msg_controllen = buildSendCmsgs(m.cmsg[n_], from.family(), from, 0, 0);
  }
  ++n_;
  return true;
}

bool SendBatch::add2(const uint8_t* head, size_t headLen, const uint8_t* data, size_t len,
                     const SocketAddress& to) {
  if (!add(head, headLen, to)) return false;
  Impl& m = *impl_;
  m.iov[n_ - 1][1] = {const_cast<uint8_t*>(data), len};
  m.msgs[n_ - 1].msg_hdr.msg_iovlen = 2;
  return true;
}

SendBatch::Outcome SendBatch::flush(int fd) {
  Outcome o;
  unsigned off = 0;
  while (off < n_) {
    int r = sendmmsg(fd, impl_->msgs + off, n_ - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      o.sent += static_cast<unsigned>(r);
      off += static_cast<unsigned>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EIO && impl_->segSize[off] != 0) {
      // The device (or kernel) cannot segment: send this message's datagrams one at a time.
      o.gsoRefused = true;
      msghdr h = impl_->msgs[off].msg_hdr;
      h.msg_controllen -= CMSG_SPACE(sizeof(uint16_t));  // UDP_SEGMENT is last: keep PKTINFO and TOS
      if (h.msg_controllen == 0) h.msg_control = nullptr;
      const iovec whole = impl_->iov[off][0];
      const size_t seg = impl_->segSize[off];
      for (size_t at = 0; at < whole.iov_len; at += seg) {
        iovec one{static_cast<uint8_t*>(whole.iov_base) + at, std::min(seg, whole.iov_len - at)};
        h.msg_iov = &one;
        h.msg_iovlen = 1;
        if (sendmsg(fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
          o.lastErr = errno;
          ++o.dropped;
        }
      }
      ++o.sent;
      ++off;
      continue;
    }
    // The message at `off` was refused: drop it and go on with the rest (a full socket buffer
    // refuses them all, one call each at most).
    o.lastErr = r < 0 ? errno : EIO;
    ++o.dropped;
    ++off;
  }
  n_ = 0;
  return o;
}

Errc dropReason(int err) {
  switch (err) {
    case EAGAIN:
    case ENOBUFS:
    case ENOMEM: return Errc::ResourceExhausted;
    case EMSGSIZE: return Errc::TooLarge;
    default: return errcFromErrno(err);
  }
}

Result<void> setRecvOptions(int fd, int family, uint8_t flags) {
  const bool v6 = family == AF_INET6;
  if (flags & kRecvOverflow) {
    if (auto r = setOpt(fd, SOL_SOCKET, SO_RXQ_OVFL, "SO_RXQ_OVFL"); !r) return r;
  }
  if (flags & kRecvOrigDst) {
    auto r = v6 ? setOpt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, "IPV6_RECVORIGDSTADDR")
                : setOpt(fd, SOL_IP, IP_RECVORIGDSTADDR, "IP_RECVORIGDSTADDR");
    if (!r) return r;
  }
  if (flags & kRecvTos) {
    // A v6 socket also hears IPv4-mapped peers: ask for their TOS too (refused on a v6-only socket).
    if (v6) (void)setOpt(fd, SOL_IP, IP_RECVTOS, "IP_RECVTOS");
    auto r = v6 ? setOpt(fd, SOL_IPV6, IPV6_RECVTCLASS, "IPV6_RECVTCLASS") : setOpt(fd, SOL_IP, IP_RECVTOS, "IP_RECVTOS");
    if (!r) return r;
  }
  if (flags & kRecvPktInfo) {
    auto r = v6 ? setOpt(fd, SOL_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO")
                : setOpt(fd, SOL_IP, IP_PKTINFO, "IP_PKTINFO");
    if (!r) return r;
  }
  return {};
}

bool enableGro(int fd) {
  int one = 1;
  return setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
}

void setDontFragment(int fd, int family) {
  int v4 = IP_PMTUDISC_PROBE;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof(v4));  // also IPv4-mapped peers of a v6 socket
  if (family == AF_INET6) {
    int v6 = IPV6_PMTUDISC_PROBE;
    setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof(v6));
  }
}

void setBufferBytes(int fd, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  }
}

}  // namespace ugate::udp
