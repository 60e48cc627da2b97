#include <ugate/socket_util.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace ugate {

namespace {

// SocketSetup: how a listening socket is made before bind (one recipe for the real sockets and
// for the probe that checks whether the address is free).
struct SocketSetup {
  bool datagram{false};
  bool reuseAddr{true};
  bool reusePort{false};
};

// bindSocket: socket + beforeBind + options + bind, non-blocking; the fd, or the error with errno
// in *err when err is given.
Result<int> bindSocket(const SocketAddress& addr, SocketSetup s,
                       const std::function<Result<void>(int fd)>& beforeBind, int* err = nullptr) {
  int fd = socket(addr.family(), (s.datagram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  if (beforeBind) {
    if (Result<void> r = beforeBind(fd); !r) {
      close(fd);
      return r.error();
    }
  }
  const int one = 1;
  if (s.reuseAddr) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (s.reusePort) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here, none per accept.
  if (!s.datagram) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (bind(fd, addr.sa(), addr.len()) != 0) {
    const int e = errno;
    close(fd);
    if (err) *err = e;
    return makeError(e == EADDRINUSE ? Errc::AlreadyExists : errcFromErrno(e),
                     std::string(s.datagram ? "bind udp " : "bind ") + addr.str() + ": " + strerror(e));
  }
  return fd;
}

}  // namespace

Result<int> openListenSocket(const SocketAddress& addr, int backlog, bool reusePort,
                             const std::function<Result<void>(int fd)>& beforeBind) {
  auto fd = bindSocket(addr, {.datagram = false, .reuseAddr = true, .reusePort = reusePort}, beforeBind);
  if (!fd) return fd;
  if (listen(*fd, backlog) != 0) {
    int e = errno;
    close(*fd);
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

Result<int> openDatagramSocket(const SocketAddress& addr, bool reusePort,
                               const std::function<Result<void>(int fd)>& beforeBind) {
  return bindSocket(addr, {.datagram = true, .reuseAddr = true, .reusePort = reusePort}, beforeBind);
}

BindProbe probeBind(const SocketAddress& addr, bool datagram, bool reusePort,
                    const std::function<Result<void>(int fd)>& beforeBind) {
  // TCP keeps SO_REUSEADDR, so connections of an earlier process in TIME_WAIT do not count (the
  // real bind ignores them too). UDP drops it: two UDP sockets that both set SO_REUSEADDR share a
  // port, so with it the probe would succeed beside another process's sockets.
  SocketSetup s{.datagram = datagram, .reuseAddr = !datagram, .reusePort = reusePort};
  BindProbe p;
  auto fd = bindSocket(addr, s, beforeBind, &p.err);
  if (!fd) {
    if (p.err == 0) p.err = -1;  // socket() or beforeBind failed before the bind
    p.error = fd.error();
    return p;
  }
  close(*fd);  // never listened on: no connection can have queued on it
  return p;
}

}  // namespace ugate
