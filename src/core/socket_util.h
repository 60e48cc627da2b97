#pragma once
// Thin, non-blocking socket helpers. Every function returns errors as values.
#include <ugate/result.h>
#include <ugate/socket_address.h>

namespace ugate {

/** openListenSocket: socket + SO_REUSEADDR (+SO_REUSEPORT) + bind + listen, non-blocking. */
Result<int> openListenSocket(const SocketAddress& addr, int backlog, bool reusePort);
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

}  // namespace ugate
