#pragma once
// The xDS messages on the wire: type URLs of the resources ugated serves and reads, and the
// protobuf entry points for untrusted bytes (parse) and for what ugated sends (deterministic
// serialization, so equal resources give equal bytes and versions can be hashes of them). The
// message classes are generated from src/xds/proto (lite runtime).
#include <google/protobuf/message_lite.h>

#include <string>
#include <string_view>

namespace ugate::xds {

/** kTypeUrlPrefix: what google.protobuf.Any puts before a message's full name. */
inline constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

/** Type URLs of the ADS resource types (LDS, RDS, CDS, EDS) and of what a Listener holds. */
inline constexpr std::string_view kListenerType =
    "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr std::string_view kRouteConfigurationType =
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr std::string_view kClusterType =
    "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr std::string_view kClusterLoadAssignmentType =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr std::string_view kHttpConnectionManagerType =
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
inline constexpr std::string_view kRouterType =
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

/** ugate's own resource type: the nodes a gateway reaches (src/xds/proto/ugate/v1/node.proto). */
inline constexpr std::string_view kNodeType = "type.googleapis.com/ugate.v1.Node";
inline constexpr std::string_view kMessageType = "type.googleapis.com/ugate.v1.Message";

/** The ADS methods (HTTP/2 :path values). */
inline constexpr std::string_view kStreamAdsPath =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
inline constexpr std::string_view kDeltaAdsPath =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/**
 * parseMessage replaces `out` with the message in `bytes` (untrusted: a gRPC message's payload).
 * Unknown fields are kept (and re-encoded). Nesting deeper than protobuf's recursion limit (100),
 * truncated or malformed input fails.
 * @return false when `bytes` is not a valid encoding of out's type (out is then unspecified).
 */
bool parseMessage(std::string_view bytes, google::protobuf::MessageLite& out);

/**
 * routeProtobufLogs sends libprotobuf's log messages to ugated's log (debug level; fatal ones at
 * critical) instead of stderr, so that bad input from a peer cannot flood stderr. Idempotent and
 * thread-safe; parseMessage calls it.
 */
void routeProtobufLogs();

/**
 * serializeDeterministic: `m`'s encoding with map entries in key order, so that equal messages
 * encode to equal bytes within this build (protobuf promises no more than that).
 */
std::string serializeDeterministic(const google::protobuf::MessageLite& m);

}  // namespace ugate::xds
