#pragma once
// The transparent capture module: registers the listener kinds `redirect` (iptables REDIRECT;
// the original destination from SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) and `tproxy` (iptables
// TPROXY; IP_TRANSPARENT listeners whose accepted sockets' local address is the original
// destination). Both dial the original destination unless a route says otherwise.
#include <ugate/listener.h>

namespace ugate::iptables {

/** registerCaptureModule adds `redirect` and `tproxy` to `r`. Startup only (not thread-safe). */
void registerCaptureModule(ListenerKindRegistry& r);

}  // namespace ugate::iptables
