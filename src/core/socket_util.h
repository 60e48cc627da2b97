#pragma once
// Thin, non-blocking socket helpers. Every function returns errors as values.
#include <functional>

#include <ugate/result.h>
#include <ugate/socket_address.h>

namespace ugate {

/** BeforeBind: socket options set between socket() and bind() (may be empty). */
using BeforeBind = std::function<Result<void>(int fd)>;

/** openListenSocket: socket + SO_REUSEADDR (+SO_REUSEPORT) + beforeBind + bind + listen, non-blocking. */
Result<int> openListenSocket(const SocketAddress& addr, int backlog, bool reusePort,
                             const BeforeBind& beforeBind = {});
/** openDatagramSocket: UDP socket + SO_REUSEADDR (+SO_REUSEPORT) + beforeBind + bind, non-blocking. */
Result<int> openDatagramSocket(const SocketAddress& addr, bool reusePort, const BeforeBind& beforeBind = {});
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
