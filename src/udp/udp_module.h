#pragma once
// The udp module's entry point for src/ugated/modules.cc.
#include <ugate/listener.h>

namespace ugate::udp {

/**
 * registerUdpModule adds the datagram listener kinds `udp` (a static forwarder to `to`) and
 * `udp-tproxy` (TPROXY capture, flows dialled to their original destination). Startup only.
 */
void registerUdpModule(ListenerKindRegistry& r);

}  // namespace ugate::udp
