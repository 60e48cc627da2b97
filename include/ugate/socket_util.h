#pragma once
// Thin, non-blocking socket helpers. Every function returns errors as values.
#include <cstdint>
#include <functional>

#include <ugate/result.h>
#include <ugate/socket_address.h>

namespace ugate {

/**
 * openListenSocket: socket + SO_REUSEADDR (+SO_REUSEPORT) + bind + listen, non-blocking.
 * beforeBind (may be empty) sets extra options on the fresh socket (e.g. IP_TRANSPARENT); its
 * error closes the socket and is returned.
 */
Result<int> openListenSocket(const SocketAddress& addr, int backlog, bool reusePort,
                             const std::function<Result<void>(int fd)>& beforeBind = nullptr);

/** ConnectOptions: socket options of an upstream connection; the defaults set nothing. */
struct ConnectOptions {
  uint32_t mark{0};        // mark: SO_MARK (needs CAP_NET_ADMIN); 0 = none
  SocketAddress source;    // source: bind to this address first (port 0 = any); invalid = none
  bool transparent{false};  // transparent: IP(V6)_TRANSPARENT, so source may be a foreign address
};

/**
 * startConnect: non-blocking connect; the connect completes when the fd becomes writable. opts
 * applies before the connect; a source of another family than `to` is an error.
 */
Result<int> startConnect(const SocketAddress& to, const ConnectOptions& opts = {});
/** setTransparent sets IP_TRANSPARENT or IPV6_TRANSPARENT (by `family`); needs CAP_NET_ADMIN. */
Result<void> setTransparent(int fd, int family);
/** setMark sets SO_MARK; needs CAP_NET_ADMIN. */
Result<void> setMark(int fd, uint32_t mark);
/** localAddress / peerAddress: getsockname / getpeername. */
SocketAddress localAddress(int fd);
SocketAddress peerAddress(int fd);
/** socketError reads and clears SO_ERROR. */
int socketError(int fd);
/** setNoDelay enables TCP_NODELAY. */
void setNoDelay(int fd);
/** closeAbort closes with SO_LINGER 0 so the peer gets RST. */
void closeAbort(int fd);

/**
 * openDatagramSocket: a UDP socket + beforeBind (as for openListenSocket) + SO_REUSEADDR
 * (+SO_REUSEPORT) + bind, non-blocking (datagram listeners, one socket per worker).
 */
Result<int> openDatagramSocket(const SocketAddress& addr, bool reusePort,
                               const std::function<Result<void>(int fd)>& beforeBind = nullptr);

/** BindProbe: the outcome of probeBind. */
struct BindProbe {
  int err{0};     // err: the bind's errno (EADDRINUSE: someone holds the address); 0 = it bound;
                  // -1 = the socket could not be set up (socket(), beforeBind)
  Error error;    // error: what failed, as openListenSocket/openDatagramSocket would report it
  bool ok() const { return err == 0; }
};

/**
 * probeBind binds a socket to addr the way openListenSocket (or, datagram, openDatagramSocket)
 * would, and closes it at once, without listen(). Without reusePort it fails with EADDRINUSE when
 * any socket holds the address, even one of this user with SO_REUSEPORT, which the real bind would
 * silently join; with reusePort (TCP only) it tells whether joining is possible. Main thread.
 */
BindProbe probeBind(const SocketAddress& addr, bool datagram, bool reusePort,
                    const std::function<Result<void>(int fd)>& beforeBind = nullptr);

}  // namespace ugate
