#include "core/socket_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace ugate {

Result<int> openListenSocket(const SocketAddress& addr, int backlog, bool reusePort,
                             const std::function<Result<void>(int fd)>& beforeBind) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  if (beforeBind) {
    Result<void> r = beforeBind(fd);
    if (!r) {
      close(fd);
      return r.error();
    }
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reusePort) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here, none per accept.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (bind(fd, addr.sa(), addr.len()) != 0) {
    int e = errno;
    close(fd);
    return makeError(errcFromErrno(e), "bind " + addr.str() + ": " + strerror(e));
  }
  if (listen(fd, backlog) != 0) {
    int e = errno;
    close(fd);
    return makeError(errcFromErrno(e), "listen " + addr.str() + ": " + strerror(e));
  }
  return fd;
}

Result<void> setTransparent(int fd, int family) {
  int one = 1;
  int rc = family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                              : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
  if (rc != 0) {
    int e = errno;
    const char* what = family == AF_INET6 ? "IPV6_TRANSPARENT: " : "IP_TRANSPARENT: ";
    return makeError(errcFromErrno(e),
                     what + std::string(strerror(e)) + (e == EPERM ? " (needs CAP_NET_ADMIN)" : ""));
  }
  return {};
}

Result<void> setMark(int fd, uint32_t mark) {
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    int e = errno;
    return makeError(errcFromErrno(e),
                     std::string("SO_MARK: ") + strerror(e) + (e == EPERM ? " (needs CAP_NET_ADMIN)" : ""));
  }
  return {};
}

namespace {

// applyConnectOptions: SO_MARK, transparency and the source bind, before connect().
Result<void> applyConnectOptions(int fd, const SocketAddress& to, const ConnectOptions& opts) {
  if (opts.mark != 0) {
    if (auto r = setMark(fd, opts.mark); !r) return r;
  }
  if (opts.transparent) {
    if (auto r = setTransparent(fd, to.family()); !r) return r;
  }
  if (opts.source.valid()) {
    if (opts.source.family() != to.family()) {
      return makeError(Errc::InvalidArgument, "source " + opts.source.str() + " and destination " +
                                                  to.str() + " are of different families");
    }
    if (opts.source.port() == 0) {
      // Pick the port at connect() time, so one source address serves many destinations.
      int one = 1;
      setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    if (bind(fd, opts.source.sa(), opts.source.len()) != 0) {
      int e = errno;
      return makeError(errcFromErrno(e), "bind " + opts.source.str() + ": " + strerror(e));
    }
  }
  return {};
}

}  // namespace

Result<int> startConnect(const SocketAddress& to, const ConnectOptions& opts) {
  int fd = socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  setNoDelay(fd);
  if (opts.mark != 0 || opts.transparent || opts.source.valid()) {
    if (auto r = applyConnectOptions(fd, to, opts); !r) {
      close(fd);
      return r.error();
    }
  }
  if (connect(fd, to.sa(), to.len()) != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return makeError(errcFromErrno(e), "connect " + to.str() + ": " + strerror(e));
  }
  return fd;
}

SocketAddress localAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress peerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

int socketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void closeAbort(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

// Datagram listeners: the same steps as openListenSocket, for SOCK_DGRAM and without listen().
Result<int> openDatagramSocket(const SocketAddress& addr, bool reusePort,
                               const std::function<Result<void>(int fd)>& beforeBind) {
  int fd = socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  if (beforeBind) {
    if (Result<void> r = beforeBind(fd); !r) {
      close(fd);
      return r.error();
    }
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reusePort) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, addr.sa(), addr.len()) != 0) {
    const int e = errno;
    close(fd);
    return makeError(errcFromErrno(e), "bind udp " + addr.str() + ": " + strerror(e));
  }
  return fd;
}

}  // namespace ugate
