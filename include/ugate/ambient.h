#pragma once
// Ambient: Istio ambient mesh state (issue 19 §3: istio.workload.Address and
// istio.security.Authorization) as ugated's data path uses it, without knowing xDS. The xds module
// converts what a control plane sends into an AmbientSnapshot and publishes it here; captured
// outbound connections (core's session, on a `redirect`/`tproxy` listener) ask `outbound` where an
// original destination really goes, and the mesh listener asks `authorize` whether an inbound
// stream may reach a workload. Process-wide, as peerDirectory(): one publisher at a time, readers on
// any thread take the current immutable snapshot without a lock. Implemented in src/core/ambient.cc
// (pure functions of a snapshot; unit-tested in tests/unit/core/ambient_test.cc).
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config.h>
#include <ugate/socket_address.h>

namespace ugate {

/** AmbientPort: a service port and the port its endpoints listen on (0 = the same). */
struct AmbientPort {
  uint16_t servicePort{0};
  uint16_t targetPort{0};
  bool operator==(const AmbientPort&) const = default;
};

/** AmbientWaypoint: a waypoint proxy's HBONE address (an IP and its hbone_mtls_port, default 15008). */
struct AmbientWaypoint {
  std::string ip;
  uint16_t port{15008};
  bool operator==(const AmbientWaypoint&) const = default;
};

/** AmbientWorkload: an istio.workload.Workload (xDS name: its uid). */
struct AmbientWorkload {
  std::string uid;
  std::string name;
  std::string ns;
  std::vector<std::string> ips;  // canonical IP text
  bool hbone{false};             // tunnel_protocol HBONE (else NONE: plain TCP)
  bool healthy{true};
  std::string trustDomain;       // "cluster.local" when the control plane elided it
  std::string serviceAccount;    // "default" when elided
  std::optional<AmbientWaypoint> waypoint;
  /** services: "namespace/hostname" → this workload's ports for it (target ports override the service's). */
  std::map<std::string, std::vector<AmbientPort>> services;
  std::vector<std::string> policies;  // "namespace/name" of WORKLOAD_SELECTOR policies
  /** spiffe: spiffe://<td>/ns/<ns>/sa/<sa>. */
  std::string spiffe() const { return "spiffe://" + trustDomain + "/ns/" + ns + "/sa/" + serviceAccount; }
  bool operator==(const AmbientWorkload&) const = default;
};

/** AmbientService: an istio.workload.Service (xDS name: "namespace/hostname"). */
struct AmbientService {
  std::string name;
  std::string ns;
  std::string hostname;
  std::vector<std::string> vips;  // canonical IP text
  std::vector<AmbientPort> ports;
  std::optional<AmbientWaypoint> waypoint;
  std::string key() const { return ns + "/" + hostname; }
  bool operator==(const AmbientService&) const = default;
};

/** AmbientStringMatch: istio.security.StringMatch. */
struct AmbientStringMatch {
  enum class Kind : uint8_t { Exact, Prefix, Suffix, Presence } kind{Kind::Exact};
  std::string value;
  bool matches(std::string_view s) const;
  bool operator==(const AmbientStringMatch&) const = default;
};

/** AmbientMatch: istio.security.Match (values of a kind OR-ed, kinds that are set AND-ed). */
struct AmbientMatch {
  std::vector<AmbientStringMatch> namespaces, notNamespaces, principals, notPrincipals;
  std::vector<Cidr> sourceIps, notSourceIps, destinationIps, notDestinationIps;
  std::vector<uint16_t> destinationPorts, notDestinationPorts;
  bool operator==(const AmbientMatch&) const = default;
};

/** AmbientPolicy: an istio.security.Authorization (xDS name: "namespace/name"). */
struct AmbientPolicy {
  enum class Scope : uint8_t { Global, Namespace, WorkloadSelector } scope{Scope::Global};
  enum class Action : uint8_t { Allow, Deny } action{Action::Allow};
  std::string name;
  std::string ns;
  /** rules: OR-ed; each rule's clauses AND-ed; each clause's matches OR-ed. No rule: matches nothing. */
  std::vector<std::vector<std::vector<AmbientMatch>>> rules;
  std::string key() const { return ns + "/" + name; }
  bool operator==(const AmbientPolicy&) const = default;
};

/** AmbientSnapshot: everything a control plane said, indexed. Immutable once published. */
struct AmbientSnapshot {
  std::map<std::string, AmbientWorkload> workloads;  // by uid
  std::map<std::string, AmbientService> services;    // by "namespace/hostname"
  std::map<std::string, AmbientPolicy> policies;     // by "namespace/name"
  std::string version;                               // for /xds and logs
  // Indexes (index() fills them):
  std::map<std::string, std::string> workloadByIp;   // IP → uid
  std::map<std::string, std::string> serviceByVip;   // VIP → service key
  std::map<std::string, std::vector<std::string>> endpointsOf;  // service key → workload uids
  /** index: rebuild the indexes from the tables (a later IP owner wins, by uid order). */
  void index();
};

/** AmbientDial: where a captured connection goes instead of its original destination. */
struct AmbientDial {
  HostPort target;     // the workload's ip:target_port (a service VIP:port when a waypoint serves the service)
  std::string via;     // "ip:port" of the HBONE hop (the workload's :15008, or its waypoint); "" = plain TCP
  std::string why;     // "service ns/host → workload uid" (logs)
  /** identity: the SPIFFE ID the HBONE hop must present (the workload's, or its waypoint's when the
   * control plane describes the waypoint's workload); "" = any certificate the node trusts. */
  std::string identity;
};

/** AmbientVerdict: an inbound stream's authorization. */
struct AmbientVerdict {
  bool applies{false};  // the destination is a workload the snapshot knows (else: not ambient's to judge)
  bool allowed{true};
  std::string why;      // the policy that decided, or why nothing allowed it
};

/**
 * ambientOutbound: where a connection to `dst` goes: a service VIP → one healthy endpoint workload
 * (chosen by `pick` modulo their number) on its target port; a workload IP → that workload. HBONE
 * workloads (and anything behind a waypoint) get `via` = their HBONE address. nullopt: `dst` is not
 * ambient's (dial it as it is). A VIP with no healthy endpoint, or a port the service lacks,
 * yields an AmbientDial with an empty target.host and the reason in `why`.
 */
std::optional<AmbientDial> ambientOutbound(const AmbientSnapshot& s, const SocketAddress& dst, uint64_t pick);

/**
 * ambientAuthorize: may a stream from `principal` (a SPIFFE URI, "" = none) at `source` reach `dst`
 * (the CONNECT authority: a workload ip:port)? As ztunnel: the policies of the workload (global,
 * its namespace's, and those it lists); any DENY that matches refuses; then, if any ALLOW applies,
 * one must match.
 */
AmbientVerdict ambientAuthorize(const AmbientSnapshot& s, const SocketAddress& dst, std::string_view principal,
                                const SocketAddress& source);

/** spiffeNamespace: the <ns> of spiffe://<td>/ns/<ns>/sa/<sa> ("" if not of that form). */
std::string spiffeNamespace(std::string_view spiffe);

class AmbientDirectory {
 public:
  /** publish: the new state (null: none; ambient off). */
  void publish(std::shared_ptr<const AmbientSnapshot> s);
  /** current: the state now (null when no control plane gave any). */
  std::shared_ptr<const AmbientSnapshot> current() const { return snap_.load(std::memory_order_acquire); }

  // Counters (relaxed; rendered by the xds module).
  std::atomic<uint64_t> outboundRedirected{0};  // captured connections sent to a workload
  std::atomic<uint64_t> outboundNoEndpoint{0};  // to a VIP without a usable endpoint
  std::atomic<uint64_t> inboundAllowed{0};
  std::atomic<uint64_t> inboundDenied{0};

 private:
  std::atomic<std::shared_ptr<const AmbientSnapshot>> snap_;
};

/** ambientDirectory: the process-wide directory. */
AmbientDirectory& ambientDirectory();

}  // namespace ugate
