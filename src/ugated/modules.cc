// registerBuiltinModules: the one place modules are wired into the daemon. A module is a folder
// under src/ with its own CMake target; it gives the daemon a Module (include/ugate/module.h) and
// adds one line here. Nothing in core or in the rest of src/ugated names a module.
#include "ugated/modules.h"

// MODULE INCLUDES (one line per module)
#include "echo/echo_module.h"
#include "http/connect_proxy_module.h"
#include "iptables/capture_module.h"
#include "local/discovery_module.h"
#include "mesh/mesh_module.h"
#include "quic/quic_module.h"
#include "webpush/webpush_module.h"
#include "sni/sni_module.h"
#include "socks/socks_module.h"
#include "udp/udp_module.h"
#include "xds/xds_module.h"

namespace ugate {

void registerBuiltinModules(ModuleRegistry& m, ListenerKindRegistry& k) {
  // MODULE REGISTRATIONS (one line per module)
  m.add(kindsOnlyModule("udp", udp::registerUdpModule), k);
  m.add(kindsOnlyModule("socks", socks::registerSocksModule), k);
  m.add(kindsOnlyModule("http-connect", http::registerConnectProxyModule), k);
  m.add(kindsOnlyModule("sni", sni::registerSniModule), k);
  m.add(kindsOnlyModule("iptables", iptables::registerCaptureModule), k);
  m.add(std::make_unique<mesh::MeshModule>(), k);
  m.add(std::make_unique<echo::EchoModule>(), k);
  m.add(std::make_unique<local::DiscoveryModule>(), k);
  m.add(std::make_unique<quic::QuicModule>(), k);
  m.add(std::make_unique<xds::XdsModule>(), k);
  m.add(std::make_unique<webpush::WebpushModule>(), k);
}

}  // namespace ugate
