#pragma once
// What a captured connection's socket says about where it was going. Each call is one or two
// non-blocking syscalls; safe on a reactor thread.
#include <ugate/result.h>
#include <ugate/socket_address.h>

namespace ugate::iptables {

/**
 * originalDestination reads SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6) of an accepted
 * socket: the destination before REDIRECT (conntrack's original tuple). NotFound when conntrack
 * knows no such connection.
 */
Result<SocketAddress> originalDestination(int fd, int family);
/** isLocalAddress: loopback, or an address of this network namespace (it can be bound). */
bool isLocalAddress(const SocketAddress& a);
/**
 * checkLoop refuses a destination that is the capture listener itself (`listenPort` on a local
 * address): dialling it would connect ugated to itself. `local` is the accepted socket's address.
 */
Result<void> checkLoop(const SocketAddress& dst, const SocketAddress& local, uint16_t listenPort);

}  // namespace ugate::iptables
