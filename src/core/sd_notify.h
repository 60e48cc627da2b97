#pragma once
// sd_notify(3) without libsystemd: the wire protocol is one datagram of "KEY=VALUE\n" lines sent to
// the AF_UNIX socket named by $NOTIFY_SOCKET. Control plane only; never called on the data path.
#include <string>
#include <string_view>

namespace ugate {

/**
 * sdNotify sends `state` as one datagram to the socket named by $NOTIFY_SOCKET, for example
 * "READY=1\nSTATUS=serving", sdReloadingState() or "STOPPING=1".
 *
 * $NOTIFY_SOCKET is a filesystem path ("/run/systemd/notify") or an abstract name ("@name"; the
 * '@' becomes the leading NUL byte). Other forms (e.g. "vsock:") are not supported.
 *
 * Never blocks: the socket is SOCK_NONBLOCK and the send uses MSG_NOSIGNAL, so a full or absent
 * receiver makes the call fail instead of stalling the caller. Opens and closes its own socket on
 * every call; thread-safe and re-entrant (reads the environment, so do not race it with setenv).
 *
 * @param state the notification text; sent verbatim, without a trailing NUL.
 * @return true if the whole datagram was sent; false if $NOTIFY_SOCKET is unset, empty or
 *         unusable (nothing is done then), or the send failed.
 */
bool sdNotify(std::string_view state);

/**
 * sdReloadingState returns "RELOADING=1\nMONOTONIC_USEC=<now>", where <now> is CLOCK_MONOTONIC in
 * microseconds, as systemd >= 253 requires for Type=notify-reload (older versions ignore the
 * extra field). Send it with sdNotify() before re-reading configuration, then send "READY=1".
 *
 * @return the notification text.
 */
std::string sdReloadingState();

}  // namespace ugate
