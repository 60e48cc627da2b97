#pragma once
// Who holds a local address: the sockets bound to it (/proc/self/net/{tcp,tcp6,udp,udp6}) and the
// processes owning them (/proc/PID/fd). Used when a listener's address turns out to be in use, to
// tell this process's own sockets (a reload re-binding beside them) from another process's, and to
// name that process in the error. Blocking /proc reads: main thread or CLI, on that error path only.
#include <sys/types.h>

#include <cstdint>

#include <string>
#include <vector>

#include <ugate/socket_address.h>

namespace ugate {

/** PortHolder: a process with a socket on the address. */
struct PortHolder {
  pid_t pid{0};
  std::vector<std::string> argv;  // argv: its command line (/proc/PID/cmdline)
  std::string cwd;                // cwd: its working directory, to resolve relative paths in argv
  /** describe: "pid 1234: ugated --config x.json" (the command cut at 200 characters). */
  std::string describe() const;
};

/** PortUse: the sockets on an address (TCP: listening ones; UDP: all), by owner. */
struct PortUse {
  bool self{false};    // self: this process holds one of them
  bool others{false};  // others: some are not this process's (their owners may be hidden from us)
  std::vector<PortHolder> holders;  // holders: the other owners /proc lets this user see
  bool hidden{false};  // hidden: the owners of some of the others' sockets could not be seen
};

/** ProcSocket: one socket of this network namespace, from /proc/self/net/{tcp,tcp6,udp,udp6}. */
struct ProcSocket {
  SocketAddress local;
  int state{0};       // state: TCP state (0x0A listening, 0x06 TIME_WAIT); UDP 0x07 = unconnected
  uint64_t inode{0};  // inode: 0 for sockets no process holds (TIME_WAIT)
};
/**
 * procSockets reads /proc/PID/net/`file` ("tcp", "tcp6", "udp", "udp6", "raw", ...; absent: empty):
 * the sockets of process pid's network namespace (0: this process's).
 */
std::vector<ProcSocket> procSockets(const std::string& file, pid_t pid = 0);

/**
 * findPortUse lists the sockets bound to addr's port on an overlapping address: the same IP, a
 * wildcard of either side, or (for IPv4) a dual-stack [::] or IPv4-mapped IPv6 socket.
 */
PortUse findPortUse(const SocketAddress& addr, bool datagram);

}  // namespace ugate
