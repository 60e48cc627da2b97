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
/** startConnect: non-blocking connect; the connect completes when the fd becomes writable. */
Result<int> startConnect(const SocketAddress& to);
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

}  // namespace ugate
