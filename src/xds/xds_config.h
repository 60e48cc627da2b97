#pragma once
// The xds module's config section "xds" (docs/CONFIG.md), parsed by xds_config.cc (the only file of
// src/xds that sees JSON) and kept in the snapshot as the module's ModuleConfig.
#include <ugate/config.h>
#include <ugate/socket_address.h>

namespace ugate::xds {

/** XdsConfig: what "xds" says, with the defaults filled in. */
struct XdsConfig final : ModuleConfig {
  /** serverEnabled: an `xds.server` object was given (and not `"enabled": false`). */
  bool serverEnabled{false};
  /**
   * serverAddress: where the ADS server listens (h2c, gRPC prior knowledge); 127.0.0.1:15010 by
   * default. A non-loopback address needs `"insecure": true` (secure by default: the server has
   * no TLS yet, and the resources describe the node's routes).
   */
  SocketAddress serverAddress;
  bool insecure{false};
};

/** xdsConfig: c's "xds" section (the defaults, server off, when none was parsed). */
const XdsConfig& xdsConfig(const Config& c);

}  // namespace ugate::xds
