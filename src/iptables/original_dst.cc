#include "iptables/original_dst.h"

#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80  // linux/netfilter_ipv6/ip6_tables.h, which clashes with glibc
#endif

namespace ugate::iptables {

Result<SocketAddress> originalDestination(int fd, int family) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int rc = family == AF_INET6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len)
                              : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  if (rc != 0) {
    int e = errno;
    return makeError(
        e == ENOENT ? Errc::NotFound : errcFromErrno(e),
        std::string(family == AF_INET6 ? "IP6T_SO_ORIGINAL_DST: " : "SO_ORIGINAL_DST: ") +
            strerror(e));
  }
  SocketAddress a = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!a.valid()) return makeError(Errc::NotFound, "original destination of an unknown family");
  return a;
}

bool isLocalAddress(const SocketAddress& a) {
  if (a.isLoopback()) return true;
  int s = socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  SocketAddress any = a;
  any.setPort(0);
  bool local = bind(s, any.sa(), any.len()) == 0;
  close(s);
  return local;
}

Result<void> checkLoop(const SocketAddress& dst, const SocketAddress& local, uint16_t listenPort) {
  if (listenPort == 0 || dst.port() != listenPort) return {};
  // The cheap test first: a connection made straight to the listener has itself as destination.
  if (dst == local || isLocalAddress(dst)) {
    return makeError(Errc::LoopDetected, "original destination " + dst.str() +
                                             " is this listener (not captured, or a capture loop)");
  }
  return {};
}

}  // namespace ugate::iptables
