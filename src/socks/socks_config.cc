// The `socks5` listener kind: registration (its options are those of every proxy kind:
// ugate/proxy_auth.h).
#include <ugate/config.h>
#include "socks/socks_front_door.h"
#include "socks/socks_module.h"
#include "socks/socks_options.h"

namespace ugate::socks {

void registerSocksModule(ListenerKindRegistry& r) {
  ListenerKindSpec k = proxyKind("socks5", StreamKind::Socks5, /*basicAuth=*/false);
  k.newFrontDoor = [](const ListenerConfig& l) -> FrontDoorPtr {
    auto o = std::dynamic_pointer_cast<const SocksOptions>(l.options);
    if (!o) o = std::make_shared<const SocksOptions>();
    return std::make_unique<SocksFrontDoor>(std::move(o));
  };
  r.add(std::move(k));
}

}  // namespace ugate::socks
