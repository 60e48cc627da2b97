#pragma once
// The socks module's entry point for src/ugated/modules.cc.
#include <ugate/listener.h>

namespace ugate::socks {

/**
 * registerSocksModule adds the `socks5` listener kind (SOCKS5, SOCKS4 and SOCKS4a on one port) with
 * its options (`users`, `allowOpenProxy`). Startup only.
 */
void registerSocksModule(ListenerKindRegistry& r);

}  // namespace ugate::socks
