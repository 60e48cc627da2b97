// libFuzzer target for the protobuf entry points of xDS (src/xds/messages.h): the input is decoded
// as each of DiscoveryRequest, DeltaDiscoveryRequest (what an ADS server reads from clients),
// DiscoveryResponse and DeltaDiscoveryResponse (what an ADS client reads), and the resources a
// response carries are unpacked into their types by type URL. Contract checked: no crash, overread
// or unbounded recursion on any input; whatever parses re-encodes deterministically to bytes that
// parse again and re-encode to the same bytes (unknown fields included).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/messages.h"

namespace {

using namespace ugate::xds;
namespace discovery = envoy::service::discovery::v3;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// roundTrip: a message that parsed encodes to bytes that parse into an equal-encoding message.
template <class M>
void roundTrip(const M& m) {
  const std::string once = serializeDeterministic(m);
  M again;
  check(parseMessage(once, again));
  check(serializeDeterministic(again) == once);
}

template <class M>
bool parseAndRoundTrip(std::string_view bytes, M& m) {
  if (!parseMessage(bytes, m)) return false;
  roundTrip(m);
  return true;
}

// unpack: a resource whose type URL names one of the resource types ugated reads.
void unpack(const google::protobuf::Any& any) {
  if (any.type_url() == kListenerType) {
    envoy::config::listener::v3::Listener l;
    if (any.UnpackTo(&l)) {
      roundTrip(l);
      envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager m;
      if (l.api_listener().api_listener().UnpackTo(&m)) roundTrip(m);
    }
  } else if (any.type_url() == kRouteConfigurationType) {
    envoy::config::route::v3::RouteConfiguration rc;
    if (any.UnpackTo(&rc)) roundTrip(rc);
  } else if (any.type_url() == kClusterType) {
    envoy::config::cluster::v3::Cluster c;
    if (any.UnpackTo(&c)) roundTrip(c);
  } else if (any.type_url() == kClusterLoadAssignmentType) {
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    if (any.UnpackTo(&cla)) roundTrip(cla);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  discovery::DiscoveryRequest sotw;
  parseAndRoundTrip(bytes, sotw);
  discovery::DeltaDiscoveryRequest delta;
  parseAndRoundTrip(bytes, delta);
  discovery::DiscoveryResponse response;
  if (parseAndRoundTrip(bytes, response)) {
    for (const auto& any : response.resources()) unpack(any);
  }
  discovery::DeltaDiscoveryResponse deltaResponse;
  if (parseAndRoundTrip(bytes, deltaResponse)) {
    for (const auto& r : deltaResponse.resources()) unpack(r.resource());
  }
  return 0;
}
