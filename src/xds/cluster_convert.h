#pragma once
// CDS + EDS resources → ugate clusters (issue 19 §3), sans-I/O: a Cluster's and a
// ClusterLoadAssignment's bytes (untrusted: a control plane's) in, a validated definition or the
// reason to NACK out. The ADS client (ads_client_state.h) holds what was accepted and hands the
// joined result (buildCluster) to core through ugate::ClusterUpdater. Fuzzed by
// fuzz/xds_client_fuzz.cc; tested in tests/unit/xds/cluster_convert_test.cc.
#include <string>
#include <string_view>
#include <vector>

#include <ugate/cluster.h>
#include <ugate/result.h>

namespace ugate::xds {

/** CdsCluster: what ugated takes from an envoy.config.cluster.v3.Cluster. */
struct CdsCluster {
  std::string name;
  std::string edsName;  // eds_cluster_config.service_name, else the name
  LbPolicy lb{LbPolicy::RoundRobin};
  bool operator==(const CdsCluster&) const = default;
};

/** EdsAssignment: what ugated takes from an envoy.config.endpoint.v3.ClusterLoadAssignment. */
struct EdsAssignment {
  std::string name;                        // cluster_name
  std::vector<DynamicEndpoint> endpoints;  // the lowest priority's, in order; duplicates merged
  bool operator==(const EdsAssignment&) const = default;
};

/** Limits on what one resource may hold (its bytes are a control plane's). */
inline constexpr size_t kMaxEdsEndpoints = 10'000;
inline constexpr uint32_t kMaxEndpointWeight = 10'000;

/**
 * parseCdsCluster: a Cluster's bytes. Accepted: a valid cluster name (as `cluster:NAME` allows),
 * type EDS (the only discovery type ugated follows), lb_policy ROUND_ROBIN, LEAST_REQUEST, RANDOM
 * (random_two), RING_HASH or MAGLEV (hash_source). @return the cluster, or the reason to NACK.
 */
Result<CdsCluster> parseCdsCluster(std::string_view bytes);

/**
 * parseEdsAssignment: a ClusterLoadAssignment's bytes. Endpoints must be socket addresses with an
 * IP literal and a port 1..65535; weight = the endpoint's load_balancing_weight (default 1; 0 and
 * over kMaxEndpointWeight refused) times nothing else (locality weights are not used); UNHEALTHY,
 * DRAINING and TIMEOUT endpoints are kept but not chosen while others are healthy. Only the
 * lowest priority present is used. @return the assignment, or the reason to NACK.
 */
Result<EdsAssignment> parseEdsAssignment(std::string_view bytes);

/**
 * buildCluster: the cluster core runs for `c` with assignment `a` (null: none received yet, so no
 * endpoints), source "xds" and `version`.
 */
DynamicCluster buildCluster(const CdsCluster& c, const EdsAssignment* a, std::string version);

}  // namespace ugate::xds
