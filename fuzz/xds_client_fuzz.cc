// libFuzzer target for the ADS client (src/xds/ads_client_state.h, src/xds/cluster_convert.h):
// the input is split on a separator into responses that a SotW and a delta client state, each
// subscribed to a few names and following EDS, apply in turn; each piece is also converted
// directly as a Cluster and as a ClusterLoadAssignment. Contract: no crash on any input; every
// request the client produces parses; the clusters it holds are always valid (names a route could
// use, endpoints within the limits).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <ugate/config.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/ads_client_state.h"
#include "xds/cluster_convert.h"
#include "xds/messages.h"
#include "split_pieces.h"

namespace {

using namespace ugate::xds;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

template <class Req>
void checkRequests(const std::vector<std::string>& reqs) {
  for (const std::string& r : reqs) {
    Req q;
    check(parseMessage(r, q));
  }
}

template <class Req>
void run(AdsClientState& s, const std::vector<std::string_view>& pieces) {
  checkRequests<Req>(s.streamStarted());
  for (size_t i = 0; i < pieces.size(); ++i) {
    ClientOutcome o = s.onMessage(pieces[i]);
    checkRequests<Req>(o.requests);
    if (i == pieces.size() / 2) {  // a reconnect half way
      s.streamEnded();
      checkRequests<Req>(s.streamStarted());
    }
  }
  for (const auto& [name, d] : s.clusters()) {
    check(name == d.name && ugate::parseTarget("cluster:" + name).has_value());
    check(d.endpoints.size() <= kMaxEdsEndpoints);
    for (const auto& e : d.endpoints) check(e.weight >= 1 && e.weight <= kMaxEndpointWeight);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string_view> pieces = splitPieces(data, size);
  for (std::string_view p : pieces) {
    (void)parseCdsCluster(p);
    (void)parseEdsAssignment(p);
  }
  AdsClientOptions o;
  o.nodeId = "fuzz";
  o.clusters = {"web", "svc.test", "a"};
  // Message mailboxes too (xds.client.messages): parseMailbox on every Message resource.
  o.mailboxes = {std::string(52, 'A'), "topic:news"};
  AdsClientState sotw(o);
  run<envoy::service::discovery::v3::DiscoveryRequest>(sotw, pieces);
  o.delta = true;
  AdsClientState delta(o);
  run<envoy::service::discovery::v3::DeltaDiscoveryRequest>(delta, pieces);
  o.wildcard = true;
  AdsClientState wild(o);
  run<envoy::service::discovery::v3::DeltaDiscoveryRequest>(wild, pieces);
  return 0;
}
