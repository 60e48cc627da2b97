#include "core/socket_util.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace ugate {

namespace {

// openBound: socket + SO_REUSEADDR (+SO_REUSEPORT) + IPV6_V6ONLY + the caller's options + bind.
Result<int> openBound(const SocketAddress& addr, int type, bool reusePort, const BeforeBind& beforeBind,
                      const char* what) {
  int fd = socket(addr.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reusePort) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here, none per accept.
  if (type == SOCK_STREAM) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (beforeBind) {
    if (auto r = beforeBind(fd); !r) {
      close(fd);
      return r.error();
    }
  }
  if (bind(fd, addr.sa(), addr.len()) != 0) {
    int e = errno;
    close(fd);
    return makeError(errcFromErrno(e), std::string(what) + addr.str() + ": " + strerror(e));
  }
  return fd;
}

}  // namespace

Result<int> openListenSocket(const SocketAddress& addr, int backlog, bool reusePort,
                             const BeforeBind& beforeBind) {
  auto fd = openBound(addr, SOCK_STREAM, reusePort, beforeBind, "bind ");
  if (!fd) return fd;
  if (listen(*fd, backlog) != 0) {
    int e = errno;
    close(*fd);
    return makeError(errcFromErrno(e), "listen " + addr.str() + ": " + strerror(e));
  }
  return fd;
}

Result<int> openDatagramSocket(const SocketAddress& addr, bool reusePort, const BeforeBind& beforeBind) {
  return openBound(addr, SOCK_DGRAM, reusePort, beforeBind, "bind udp ");
}

Result<int> startConnect(const SocketAddress& to) {
  int fd = socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errcFromErrno(errno), std::string("socket: ") + strerror(errno));
  setNoDelay(fd);
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

}  // namespace ugate
