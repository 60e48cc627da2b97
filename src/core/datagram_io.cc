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

// Room for the largest ancillary data we ask for: an original destination (sockaddr_in6) and a
// packet-info block, each in its own cmsg.
constexpr size_t kCmsgSpace =
    CMSG_SPACE(sizeof(sockaddr_in6)) + CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(uint32_t));

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

void parseCmsgs(msghdr& h, Datagram& d, uint32_t& overflow) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
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
    }
  }
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
    if (flags) parseCmsgs(h, d, kernelDrops_);
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
  alignas(cmsghdr) uint8_t cmsg[kBatch][CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))]{};
  uint16_t segSize[kBatch]{};  // UDP_SEGMENT size of a segmented message, 0 = one datagram
};

SendBatch::SendBatch() : impl_(new Impl) {}
SendBatch::~SendBatch() = default;

bool SendBatch::addSegmented(const uint8_t* data, size_t len, uint16_t segSize, const SocketAddress& to,
                             const SocketAddress& from) {
  if (!add(data, len, to, from)) return false;
  if (segSize == 0 || segSize >= len) return true;
  Impl& m = *impl_;
  const unsigned i = n_ - 1;
  msghdr& h = m.msgs[i].msg_hdr;
  h.msg_control = m.cmsg[i];
  // After the PKTINFO cmsg add() may have written (msg_controllen says how far), one UDP_SEGMENT.
  cmsghdr* c = reinterpret_cast<cmsghdr*>(m.cmsg[i] + h.msg_controllen);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  std::memcpy(CMSG_DATA(c), &segSize, sizeof(segSize));
  h.msg_controllen += CMSG_SPACE(sizeof(uint16_t));
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
    uint8_t* buf = m.cmsg[n_];
    h.msg_control = buf;
    if (from.family() == AF_INET) {
      h.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo pi{};
      std::memcpy(&pi.ipi_spec_dst, from.ipBytes(), 4);
      std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    } else {
      h.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo pi{};
      std::memcpy(&pi.ipi6_addr, from.ipBytes(), 16);
      std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
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
      h.msg_controllen -= CMSG_SPACE(sizeof(uint16_t));  // keep only the PKTINFO cmsg, if any
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
  if (flags & kRecvPktInfo) {
    auto r = v6 ? setOpt(fd, SOL_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO")
                : setOpt(fd, SOL_IP, IP_PKTINFO, "IP_PKTINFO");
    if (!r) return r;
  }
  return {};
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
