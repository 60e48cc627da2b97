// registerBuiltinModules: the one place front-door modules are wired into the daemon. Each module
// exposes a register function that adds its listener kinds (and their option parsers) to the registry.
#include "ugated/modules.h"

// MODULE INCLUDES (one line per module)
#include "udp/udp_module.h"
#include "socks/socks_module.h"
#include "http/connect_proxy_module.h"
#include "sni/sni_module.h"
#include "iptables/capture_module.h"
#include "mesh/mesh_worker.h"

namespace ugate {

void registerBuiltinModules(ListenerKindRegistry& r) {
  (void)r;
  // MODULE REGISTRATIONS (one line per module)
  udp::registerUdpModule(r);
  socks::registerSocksModule(r);
  http::registerConnectProxyModule(r);
  sni::registerSniModule(r);
  iptables::registerCaptureModule(r);
  mesh::registerMeshModule();
}

}  // namespace ugate
