#pragma once
// The parsed, validated configuration: an immutable snapshot (std::shared_ptr<const Config>) shared by
// the main thread and the workers. JSON handling lives only in config.cc.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/time.h>

#include "core/listener_kind.h"

namespace ugate {

/**
 * Target: where a stream goes. "host:port", "original", "reject", or "sni:PORT" (the stream's own
 * SNI name on PORT, for egress gateways; no route when the stream has no SNI).
 */
struct Target {
  enum class Type : uint8_t { None, HostPort, Original, Reject, SniHost };
  Type type{Type::None};
  HostPort hostPort;  // for Type::HostPort; for Type::SniHost only the port is used
  std::string str() const;
};

/** Cidr: an address prefix, v4 or v6. */
struct Cidr {
  SocketAddress addr;  // port unused
  int prefixLen{0};
  bool contains(const SocketAddress& a) const;
  static std::optional<Cidr> parse(std::string_view s);
  std::string str() const;
};

struct NodeConfig {
  std::string name;
  std::string trustDomain;
  std::string dataDir;
  std::string meshSuffix{"mesh"};
};

struct AdminConfig {
  bool enabled{true};
  SocketAddress address;  // default 127.0.0.1:15000
};

struct ListenerConfig {
  std::string name;
  std::string kind;       // "tcp", ... (see docs/CONFIG.md)
  StreamKind streamKind{StreamKind::Tcp};
  SocketAddress address;
  Target to;              // the listener's default target
  int backlog{4096};
  std::optional<Duration> idleTimeout;     // overrides limits.idleTimeout
  std::optional<Duration> connectTimeout;  // overrides limits.connectTimeout
  std::optional<Duration> sniffTimeout;    // overrides limits.sniffTimeout
  ListenerOptionsPtr options;              // the kind's own options (null when it has none)
  uint8_t proxyProtocol{0};                // 1|2: send a PROXY header when `to` is used
  bool acceptProxyProtocol{false};         // clients (load balancers) send a PROXY v1/v2 header first
  const ListenerKindSpec* spec{nullptr};   // the registry entry (lives for the process)
  bool sameAs(const ListenerConfig& o) const {  // same socket: no rebind needed on reload
    return name == o.name && kind == o.kind && address == o.address && backlog == o.backlog;
  }
};

struct PortRange {
  uint16_t lo{0}, hi{0};
};

struct RouteMatch {
  std::vector<std::string> listeners;
  std::vector<std::string> sni;    // exact or "*.suffix"; filled by the SNI front door
  std::vector<std::string> alpn;   // exact protocol names; any offered one matches (SNI front door)
  std::vector<std::string> hosts;  // exact or "*.suffix"
  std::vector<PortRange> ports;
  std::vector<Cidr> cidrs;         // destination address
  std::vector<std::string> identities;  // peer node ID / SPIFFE URI; filled by mTLS front doors
};

struct RouteConfig {
  std::string name;  // "routes[3]" unless named
  RouteMatch match;
  Target to;
  uint8_t proxyProtocol{0};  // 1|2: send a PROXY v1/v2 header to the upstream first
};

struct LimitsConfig {
  Duration connectTimeout{10'000};
  Duration idleTimeout{3'600'000};
  Duration drainTimeout{30'000};
  Duration sniffTimeout{10'000};  // front-door handshake deadline (SOCKS, SNI, CONNECT)
  uint32_t maxConnectionsPerWorker{0};  // 0 = derived from the fd limit
  uint32_t copyBufferBytes{65536};       // per-worker scratch and per-connection parked bytes cap
  uint32_t pipeBytes{262144};            // splice pipe size
  std::string splice{"auto"};            // auto | always | never
};

struct LogConfig {
  std::string level{"info"};
  std::string accessLog;  // "" off, "-" stdout, or a file path
};

struct DnsConfig {
  std::vector<std::string> servers;  // empty = /etc/resolv.conf
  Duration timeout{5000};
  Duration minTtl{1000};
  Duration maxTtl{300'000};
  Duration negativeTtl{5000};
};

struct Config {
  NodeConfig node;
  int workers{0};  // 0 = one per core
  AdminConfig admin;
  std::vector<ListenerConfig> listeners;
  std::vector<RouteConfig> routes;
  LimitsConfig limits;
  LogConfig log;
  DnsConfig dns;
  std::string origin;  // file name or "<default>"
  std::string json;    // the source, normalised and with secrets redacted, for /config_dump

  const ListenerConfig* findListener(std::string_view name) const;
};
using ConfigPtr = std::shared_ptr<const Config>;

/** parseConfig validates json; every error names the JSON path and the reason. */
Result<ConfigPtr> parseConfig(std::string_view json, std::string_view origin);
/** loadConfigFile reads and parses a file. */
Result<ConfigPtr> loadConfigFile(const std::string& path);
/** defaultConfigJson is the embedded default: loopback only, dials nothing. */
std::string_view defaultConfigJson();
/** supportedListenerKinds lists the kinds registered in this process (listenerKinds()). */
std::vector<std::string> supportedListenerKinds();
/**
 * parseTarget parses a target string ("host:port", "original", "reject", "sni:PORT") for modules'
 * own options; the error detail has no JSON path: callers prefix theirs.
 */
Result<Target> parseTarget(std::string_view s);
/** parseDuration accepts "250ms", "10s", "5m", "1h" or a number of seconds. */
std::optional<Duration> parseDuration(std::string_view s);

}  // namespace ugate
