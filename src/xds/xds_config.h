#pragma once
// The xds module's config section "xds" (docs/CONFIG.md), parsed by xds_config.cc (the only file of
// src/xds that sees JSON) and kept in the snapshot as the module's ModuleConfig.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ugate/config.h>
#include <ugate/socket_address.h>
#include <ugate/time.h>

namespace ugate::xds {

/** XdsClientConfig: `xds.client`: the control plane ugated subscribes to (CDS + EDS). */
struct XdsClientConfig {
  HostPort address;  // the ADS server (an IP or a name, resolved at each connect): mutual TLS, or h2c ("insecure")
  bool insecure{false};
  /** tls: the client's TLS (ALPN h2, the node's certificate); null with "insecure": true. */
  std::shared_ptr<const UpstreamTlsConfig> tls;
  bool delta{false};      // DeltaAggregatedResources instead of StreamAggregatedResources
  std::string nodeId;     // node.id: default node.name, else "ugated"
  std::string nodeCluster{"ugate"};
  std::map<std::string, std::string> metadata;  // node.metadata (string values)
  bool wildcard{false};   // CDS: every cluster the server has, not only those routes name
  /** ambient: `xds.client.ambient`: subscribe to istio.workload.Address and istio.security.Authorization (delta). */
  bool ambient{false};
  /**
   * messages: `xds.client.messages`: subscribe to ugate.v1.Message mailboxes (Web Push messages
   * relayed as xDS resources): this node's own (named by its node ID) and `topic:<t>` for each of
   * messageTopics; the envelopes go to the MessageBox inbox (webpush stores them).
   */
  bool messages{false};
  std::vector<std::string> messageTopics;
  std::string clusterId;  // ambient.clusterId: also sent as the `clusterid` header, as ztunnel does
  /** tokenFile: sent as `authorization: Bearer <its content>`, read again at each connect ("" = none). */
  std::string tokenFile;
  Duration connectTimeout{5000};
  Duration backoffMin{250};   // the first retry's delay; doubles per failure, with jitter
  Duration backoffMax{30'000};
};

/** XdsConfig: what "xds" says, with the defaults filled in. */
struct XdsConfig final : ModuleConfig {
  /** serverEnabled: an `xds.server` object was given (and not `"enabled": false`). */
  bool serverEnabled{false};
  /**
   * serverAddress: where the ADS server listens; 127.0.0.1:15010 by default. h2c (gRPC prior
   * knowledge) unless serverTls; a non-loopback address needs TLS or `"insecure": true` (secure by
   * default: the resources describe the node's routes).
   */
  SocketAddress serverAddress;
  bool insecure{false};
  /** serverTls: `xds.server.tls`: TLS 1.3 with the node's certificate (ALPN h2), mutual by default. */
  std::shared_ptr<const ListenerTlsConfig> serverTls;
  /** client: `xds.client` (null when absent or `"enabled": false`). */
  std::shared_ptr<const XdsClientConfig> client;
};

/** xdsConfig: c's "xds" section (the defaults, server off, when none was parsed). */
const XdsConfig& xdsConfig(const Config& c);

}  // namespace ugate::xds
