#pragma once
// The parsed, validated configuration: an immutable snapshot (std::shared_ptr<const Config>) shared by
// the main thread and the workers. JSON handling lives only in config.cc.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config_store.h>
#include <ugate/result.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/time.h>

#include <ugate/listener.h>

namespace ugate {

/**
 * Target: where a stream goes. "host:port", "original", "reject", "sni:PORT" (the stream's own
 * SNI name on PORT, for egress gateways; no route when the stream has no SNI), or "cluster:NAME"
 * (an endpoint of the upstream cluster NAME, chosen by its load-balancing policy).
 */
struct Target {
  enum class Type : uint8_t { None, HostPort, Original, Reject, SniHost, Cluster };
  Type type{Type::None};
  HostPort hostPort;    // for Type::HostPort; for Type::SniHost only the port is used
  std::string cluster;  // for Type::Cluster: the cluster's name
  std::string str() const;
};

/** Cidr: an address prefix, v4 or v6 (src/core/cidr.cc, sans-I/O, fuzzed). */
struct Cidr {
  SocketAddress addr;  // addr: the prefix, bits after prefixLen cleared; port unused
  int prefixLen{0};
  /** contains: a is inside the prefix; families never mix; an invalid a is inside none. */
  bool contains(const SocketAddress& a) const;
  /**
   * containsClient: contains, except that an IPv4-mapped IPv6 address (::ffff:a.b.c.d: an IPv4
   * client of a dual-stack socket) is also inside an IPv4 prefix holding a.b.c.d.
   */
  bool containsClient(const SocketAddress& a) const;
  /**
   * parseChecked reads "ip/len" or a bare IP (a host prefix: /32 or /128); bits after len are
   * ignored. @return the prefix, or an error whose detail is the reason (no JSON path).
   */
  static Result<Cidr> parseChecked(std::string_view s);
  /** parse: parseChecked without the reason. */
  static std::optional<Cidr> parse(std::string_view s);
  /** str: "ip/len" of the (masked) prefix. */
  std::string str() const;
  bool operator==(const Cidr&) const = default;
};

struct NodeConfig {
  std::string name;
  std::string trustDomain;
  std::string dataDir;
  std::string meshSuffix{"mesh"};
  /** dataDirFromEnvironment: dataDir came from ConfigDefaults ($STATE_DIRECTORY), not the file. */
  bool dataDirFromEnvironment{false};
};

/**
 * TlsConfig: the node's TLS identity and whom it trusts (top-level "tls"). Used by listeners with
 * "tls" (terminate, usually mutual) and by routes/listeners with "upstreamTls" (originate mTLS).
 * The credentials come from node.dataDir (Istio layout or kube.json, created on first use) unless
 * certDir names an Istio-layout directory; roots from the credentials' root-cert.pem plus rootsFile.
 */
struct TlsConfig {
  std::string certDir;                  // Istio layout: key.pem, cert-chain.pem, root-cert.pem
  std::string rootsFile;                // extra trusted CA bundle (PEM)
  std::vector<std::string> trustedIds;  // pinned node IDs, trusted whatever signed them
  bool requireTrustDomain{true};        // with node.trustDomain: CA-signed peers must carry its SPIFFE URI
  std::string ns{"default"};            // namespace in the SPIFFE URI of self-issued certificates
  Duration handshakeTimeout{10'000};
  Duration reloadInterval{10'000};      // how often the credential files are checked for changes
  Duration certValidity{365LL * 86'400'000};  // self-signed certificates
  Duration renewBefore{30LL * 86'400'000};    // re-issue a self-signed certificate this close to expiry
};

/** ListenerTlsConfig: the listener terminates TLS 1.3 ("tls" on a listener). */
struct ListenerTlsConfig {
  bool requireClientCert{true};   // mutual TLS: clients must present a trusted certificate
  std::vector<std::string> alpn;  // accepted protocols in preference order (empty: no ALPN)
};

/** UpstreamTlsConfig: the upstream connection is wrapped in TLS 1.3 with our certificate. */
struct UpstreamTlsConfig {
  std::string sni;                   // server name sent; empty = the dialled host when it is a name
  std::vector<std::string> peerIds;  // when set: the server's node ID must be one of these (pinning)
  std::vector<std::string> alpn;     // offered protocols
  /**
   * insecureSkipVerify: accept any server certificate (its identity is still recorded). Only when a
   * config says so explicitly ("upstreamTls": {"insecureSkipVerify": true}); never a default.
   */
  bool insecureSkipVerify{false};
};

struct PortRange {
  uint16_t lo{0}, hi{0};
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
};

/** ModuleConfig: a module's own parsed sections (Module::parseConfig), held in the snapshot. */
struct ModuleConfig {
  virtual ~ModuleConfig() = default;
};

/** ModuleClientTls: client TLS settings a module dials with; `path` names them in errors. */
struct ModuleClientTls {
  UpstreamTlsConfig tls;
  std::string path;
  /**
   * optional: built only when it can be (a context without peerIds needs something to trust:
   * tls.trustedIds or a CA); skipped silently otherwise, and a dial that needs it fails then.
   */
  bool optional{false};
};

/** ModuleServerTls: server TLS a module terminates on a socket of its own (not a listener); `path` names it in errors. */
struct ModuleServerTls {
  ListenerTlsConfig tls;
  std::string path;
};

/**
 * ModuleNeeds: what modules' sections ask of core, filled by Module::parseConfig and finishConfig:
 * TLS for their connections, and names their streams and gateways go by in routes.
 */
struct ModuleNeeds {
  bool tls{false};                       // the node's credentials are needed (a listener or route of theirs)
  std::vector<std::string> trustedIds;   // node IDs trusted by pin (authorized nodes, pinned gateways)
  std::vector<ModuleClientTls> clientTls;  // client TLS contexts to build
  std::vector<ModuleServerTls> serverTls;  // server TLS contexts to build (TlsProvider::server with an equal config)
  /** routeSources: names a route's match.listener may use beside listeners -> meta.listener's value. */
  std::map<std::string, std::string, std::less<>> routeSources;
  std::set<std::string, std::less<>> gateways;  // names a route's `via` may use beside host:port
  /** dynamicClusters: a module defines clusters at run time (xDS): `cluster:NAME` need not be in `clusters`. */
  bool dynamicClusters{false};
  /** broken: such names whose definition failed to parse (reported already: not again). */
  std::set<std::string, std::less<>> broken;
};

struct AdminConfig {
  bool enabled{true};
  SocketAddress address;  // default 127.0.0.1:15000
};

/**
 * HealthConfig: the readiness port (top-level "health"; off without the section). Separate from the
 * admin endpoint so that it can face the pod network while admin stays on loopback.
 */
/**
 * ConfigWatchConfig ("configWatch"): the config file is watched (inotify) and an edit applied like
 * SIGHUP, `debounce` after the last write; off unless the section is given.
 */
struct ConfigWatchConfig {
  bool enabled{false};
  Duration debounce{250};
};

struct HealthConfig {
  bool enabled{false};    // enabled: the config has a "health" section
  SocketAddress address;  // default 0.0.0.0:15021 (Istio's readiness port)
  std::string path{"/healthz/ready"};
};

struct ListenerConfig {
  std::string name;
  std::string kind;       // "tcp", ... (see docs/CONFIG.md)
  StreamKind streamKind{StreamKind::Tcp};
  SocketAddress address;
  Target to;              // the listener's default target
  int backlog{4096};
  bool sharePort{false};  // bind even when another process holds the address (SO_REUSEPORT, same user)
  std::optional<Duration> idleTimeout;     // overrides limits.idleTimeout
  std::optional<Duration> connectTimeout;  // overrides limits.connectTimeout
  std::optional<Duration> sniffTimeout;    // overrides limits.sniffTimeout
  ListenerOptionsPtr options;              // the kind's own options (null when it has none)
  uint8_t proxyProtocol{0};                // 1|2: send a PROXY header when `to` is used
  bool acceptProxyProtocol{false};         // clients (load balancers) send a PROXY v1/v2 header first
  const ListenerKindSpec* spec{nullptr};   // the registry entry (lives for the process)
  std::shared_ptr<const ListenerTlsConfig> tls;          // terminate TLS on accept (null = plain)
  std::shared_ptr<const UpstreamTlsConfig> upstreamTls;  // originate TLS when `to` is used
  bool sameAs(const ListenerConfig& o) const {  // same socket: no rebind needed on reload
    return name == o.name && kind == o.kind && address == o.address && backlog == o.backlog;
  }
};

struct RouteMatch {
  std::vector<std::string> listeners;  // listener names, or "upstream:<name>" (streams over that association)
  std::vector<std::string> sni;    // exact or "*.suffix"; filled by the SNI front door
  std::vector<std::string> alpn;   // exact protocol names; any offered one matches (SNI front door)
  std::vector<std::string> hosts;  // exact or "*.suffix"
  std::vector<PortRange> ports;
  std::vector<Cidr> cidrs;         // destination address
  std::vector<Cidr> sourceCidrs;   // the client's address (StreamMeta::source)
  std::vector<std::string> identities;  // peer node ID / SPIFFE URI; filled by mTLS front doors
};

struct RouteConfig {
  std::string name;  // "routes[3]" unless named
  RouteMatch match;
  Target to;
  uint8_t proxyProtocol{0};  // 1|2: send a PROXY v1/v2 header to the upstream first
  std::shared_ptr<const UpstreamTlsConfig> upstreamTls;  // originate mTLS to the target
  std::string via;  // through a mesh gateway: an upstream's name or a gateway's host:port
  bool http{false};  // `to` is an HTTP/1.1 origin: HTTP requests (HTTP/3 front door) are proxied to it
  /**
   * upstreamQuic: `to` is an HTTP/3 origin reached over QUIC (implies http; upstreamTls gets ALPN
   * "h3" when it names none): a quic listener's HTTP/3 requests are relayed to it (src/quic).
   */
  bool upstreamQuic{false};
};

/** LbPolicy: how a worker chooses a cluster's endpoint for a new stream. */
enum class LbPolicy : uint8_t {
  RoundRobin,        // smooth weighted round robin (nginx's): exact shares by weight
  LeastConnections,  // fewest active streams on this worker, relative to weight
  RandomTwo,         // power of two choices: two weighted random picks, the less loaded one
  HashSource,        // consistent (rendezvous) hash of the client's IP address, weighted
};
const char* lbPolicyName(LbPolicy p);

/** HealthCheckConfig: a cluster's active health checks (run on one worker, results published). */
struct HealthCheckConfig {
  enum class Kind : uint8_t { Tcp, Http };
  bool enabled{false};  // a "healthCheck" object was given
  Kind kind{Kind::Tcp};
  std::string path{"/"};  // http: the GET request's path; a 2xx status is healthy
  Duration interval{5000};
  Duration timeout{1000};
  uint32_t healthyThreshold{2};    // consecutive passes that make an unhealthy endpoint healthy
  uint32_t unhealthyThreshold{3};  // consecutive failures that make a healthy endpoint unhealthy
};

/** OutlierConfig: passive ejection of endpoints whose connects keep failing. */
struct OutlierConfig {
  bool enabled{false};  // an "outlier" object was given
  uint32_t consecutiveFailures{5};
  Duration ejectFor{30'000};
  uint32_t maxEjectedPercent{50};  // never more than this share of the endpoints ejected at once
};

struct ClusterEndpointConfig {
  HostPort address;  // a literal IP or a name (resolved asynchronously, re-resolved every dnsRefresh)
  uint32_t weight{1};
};

/** ClusterConfig: an upstream cluster (top-level "clusters"), the target of "cluster:NAME". */
struct ClusterConfig {
  std::string name;
  std::vector<ClusterEndpointConfig> endpoints;
  LbPolicy lb{LbPolicy::RoundRobin};
  HealthCheckConfig healthCheck;
  OutlierConfig outlier;
  uint32_t connectRetries{2};  // further endpoints tried after a failed connect
  Duration dnsRefresh{5000};   // names are resolved again this often (answers are cached by TTL)
};

struct LimitsConfig {
  Duration connectTimeout{10'000};
  Duration idleTimeout{3'600'000};
  Duration drainTimeout{30'000};
  Duration sniffTimeout{10'000};  // front-door handshake deadline (SOCKS, SNI, CONNECT)
  uint32_t maxConnections{0};           // process-wide cap, split evenly over the workers; 0 = none
  uint32_t maxConnectionsPerWorker{0};  // 0 = derived from the fd limit (or from maxConnections)
  uint32_t copyBufferBytes{65536};       // per-worker scratch and per-connection parked bytes cap
  uint32_t pipeBytes{262144};            // splice pipe size
  std::string splice{"auto"};            // auto | always | never
};

struct LogConfig {
  std::string level{"info"};
  bool json{false};       // json: the daemon log is one JSON object per line (log.format "json")
  std::string accessLog;  // "" off, "-" stdout, or a file path
  std::string file;       // the daemon's own log: "" stderr, or a file path (reopened on SIGUSR1/SIGHUP)
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
  HealthConfig health;
  std::vector<ListenerConfig> listeners;
  std::vector<RouteConfig> routes;
  std::vector<ClusterConfig> clusters;
  LimitsConfig limits;
  LogConfig log;
  DnsConfig dns;
  TlsConfig tls;
  /** modules: each module's parsed sections, by module name. */
  std::map<std::string, std::shared_ptr<const ModuleConfig>, std::less<>> modules;
  ModuleNeeds fromModules;
  std::string origin;  // file name or "<default>"
  std::string json;    // the source, normalised and with secrets redacted, for /config_dump
  ConfigWatchConfig watch;
  /**
   * resources: each top-level element with a version (a hash of its normalised, redacted JSON):
   * listeners, routes and clusters by name, other sections ("section") by key; for the config store.
   */
  std::vector<StoredResource> resources;

  const ListenerConfig* findListener(std::string_view name) const;
  const ClusterConfig* findCluster(std::string_view name) const;
  /** usesTls: some listener or route terminates or originates TLS, or a module's section needs it. */
  bool usesTls() const;
  /** moduleConfig: module `name`'s sections as its type T (null when the module parsed none). */
  template <class T>
  const T* moduleConfig(std::string_view name) const {
    auto it = modules.find(name);
    return it == modules.end() ? nullptr : static_cast<const T*>(it->second.get());
  }
};
using ConfigPtr = std::shared_ptr<const Config>;

/**
 * ConfigDefaults: values from the process environment for keys a config file leaves out, passed in
 * so that parsing stays a function of its arguments (and tests need no environment).
 */
struct ConfigDefaults {
  /** dataDir: node.dataDir when the file sets none; "" leaves it unset. */
  std::string dataDir;
  /**
   * fromEnvironment: dataDir = the first path of $STATE_DIRECTORY, which systemd sets for a unit
   * with StateDirectory= (several directories are joined by ':'); only an absolute path is taken.
   */
  static ConfigDefaults fromEnvironment();
};

/**
 * parseConfig validates json. Every error names the JSON path and the reason; the detail holds
 * every error found, one per line ("path: reason"), in the order found: each section, listener,
 * route and upstream is checked on its own, up to its first problem.
 */
Result<ConfigPtr> parseConfig(std::string_view json, std::string_view origin,
                              const ConfigDefaults& defaults = {});
/** loadConfigFile reads and parses a file. */
Result<ConfigPtr> loadConfigFile(const std::string& path, const ConfigDefaults& defaults = {});
/** defaultConfigJson is the embedded default: loopback only, dials nothing. */
std::string_view defaultConfigJson();
/** supportedListenerKinds lists the kinds registered in this process (listenerKinds()). */
std::vector<std::string> supportedListenerKinds();
/**
 * parseTarget parses a target string ("host:port", "original", "reject", "sni:PORT",
 * "cluster:NAME") for modules' own options; the error detail has no JSON path: callers prefix
 * theirs. Whether a named cluster exists is checked by parseConfig, not here.
 */
Result<Target> parseTarget(std::string_view s);
/** parseDuration accepts "250ms", "10s", "5m", "1h" or a number of seconds. */
std::optional<Duration> parseDuration(std::string_view s);

}  // namespace ugate
