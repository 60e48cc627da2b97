#pragma once
// The xds module's config section "xds" (docs/CONFIG.md), parsed by xds_config.cc (the only file of
// src/xds that sees JSON) and kept in the snapshot as the module's ModuleConfig.
#include <map>
#include <memory>
#include <string>

#include <ugate/config.h>
#include <ugate/socket_address.h>
#include <ugate/time.h>

namespace ugate::xds {

/** XdsClientConfig: `xds.client`: the control plane ugated subscribes to (CDS + EDS). */
struct XdsClientConfig {
  SocketAddress address;  // the ADS server (h2c: "insecure": true is required until TLS lands)
  bool insecure{false};
  bool delta{false};      // DeltaAggregatedResources instead of StreamAggregatedResources
  std::string nodeId;     // node.id: default node.name, else "ugated"
  std::string nodeCluster{"ugate"};
  std::map<std::string, std::string> metadata;  // node.metadata (string values)
  bool wildcard{false};   // CDS: every cluster the server has, not only those routes name
  Duration connectTimeout{5000};
  Duration backoffMin{250};   // the first retry's delay; doubles per failure, with jitter
  Duration backoffMax{30'000};
  bool operator==(const XdsClientConfig&) const = default;
};

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
  /** client: `xds.client` (null when absent or `"enabled": false`). */
  std::shared_ptr<const XdsClientConfig> client;
};

/** xdsConfig: c's "xds" section (the defaults, server off, when none was parsed). */
const XdsConfig& xdsConfig(const Config& c);

}  // namespace ugate::xds
