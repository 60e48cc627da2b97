#pragma once
// Istio ambient resources → ugate's ambient tables (issue 19 §3), sans-I/O: the bytes of an
// istio.workload.Address (a Workload or a Service) or an istio.security.Authorization (untrusted:
// a control plane's) in, a validated ugate::AmbientWorkload / AmbientService / AmbientPolicy or the
// reason to NACK out. The ADS client (ads_client_state.h) holds what was accepted and publishes
// the whole as an immutable ugate::AmbientSnapshot (ugate/ambient.h) that the data path reads.
// Tested in tests/unit/xds/ambient_convert_test.cc; fuzzed by fuzz/xds_ambient_fuzz.cc.
#include <optional>
#include <string>
#include <string_view>

#include <ugate/ambient.h>
#include <ugate/result.h>

namespace ugate::xds {

/** Type URLs ztunnel subscribes to over delta ADS. */
inline constexpr std::string_view kAddressType = "type.googleapis.com/istio.workload.Address";
inline constexpr std::string_view kAuthorizationType = "type.googleapis.com/istio.security.Authorization";

/** Limits on one resource (a control plane's bytes). */
inline constexpr size_t kMaxAmbientAddresses = 64;   // IPs of a workload or VIPs of a service
inline constexpr size_t kMaxAmbientPorts = 1024;     // ports of a service or of a workload's service entry
inline constexpr size_t kMaxAmbientServicesPerWorkload = 1024;
inline constexpr size_t kMaxAmbientRules = 1024;     // rules, clauses, matches and values, each

/** AmbientAddress: one istio.workload.Address: exactly one of the two is set. */
struct AmbientAddress {
  std::optional<AmbientWorkload> workload;
  std::optional<AmbientService> service;
  /** name: its xDS name: a workload's uid, a service's "namespace/hostname". */
  std::string name() const { return workload ? workload->uid : service->key(); }
};

/**
 * parseAmbientAddress: an Address's bytes. A workload needs a uid and raw IPs of 4 or 16 bytes
 * (a hostname-only workload is refused: ugated does not resolve workloads by DNS); its trust
 * domain and service account default to cluster.local and default; a waypoint needs an IP
 * address (a hostname waypoint is refused). A service needs a namespace and a hostname, VIPs of 4
 * or 16 bytes, ports 1..65535 (target 0 = the service port). @return it, or the reason to NACK.
 */
Result<AmbientAddress> parseAmbientAddress(std::string_view bytes);

/**
 * parseAmbientPolicy: an Authorization's bytes: a name, scope and action known, principals and
 * namespaces as string matches, IP matches as address + prefix length, ports 1..65535.
 */
Result<AmbientPolicy> parseAmbientPolicy(std::string_view bytes);

}  // namespace ugate::xds
