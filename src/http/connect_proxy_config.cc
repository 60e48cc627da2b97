// The `http-connect` listener kind: registration (its options are those of every proxy kind:
// ugate/proxy_auth.h).
#include <ugate/config.h>
#include "http/connect_proxy.h"
#include "http/connect_proxy_module.h"

namespace ugate::http {

void registerConnectProxyModule(ListenerKindRegistry& r) {
  ListenerKindSpec k = proxyKind("http-connect", StreamKind::HttpConnect, /*basicAuth=*/true);
  k.newFrontDoor = [](const ListenerConfig& l) -> FrontDoorPtr {
    auto o = std::dynamic_pointer_cast<const ConnectProxyOptions>(l.options);
    if (!o) o = std::make_shared<const ConnectProxyOptions>();
    return std::make_unique<ConnectProxyFrontDoor>(std::move(o));
  };
  r.add(std::move(k));
}

}  // namespace ugate::http
