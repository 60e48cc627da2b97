// libFuzzer target for the Istio ambient resources (src/xds/ambient_convert.h) and what the data
// path makes of them (ugate/ambient.h): the input is split on a separator into pieces, each
// converted as an istio.workload.Address and an istio.security.Authorization, and all fed as delta
// responses to an ambient ADS client state (a reconnect half way). The state's snapshot then
// answers outbound and authorization questions for addresses it holds and strangers. Contract: no
// crash on any input; every request the client produces parses; an outbound answer is either a
// reason (no target) or an IP target with a port; `via`, when set, is an "ip:port".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <ugate/ambient.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/ads_client_state.h"
#include "xds/ambient_convert.h"
#include "xds/messages.h"
#include "split_pieces.h"

namespace {

using namespace ugate;
using namespace ugate::xds;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void checkRequests(const std::vector<std::string>& reqs) {
  for (const std::string& r : reqs) {
    envoy::service::discovery::v3::DeltaDiscoveryRequest q;
    check(parseMessage(r, q));
  }
}

void ask(const AmbientSnapshot& s, const SocketAddress& dst, uint64_t pick) {
  if (auto d = ambientOutbound(s, dst, pick)) {
    if (!d->target.host.empty()) {
      check(SocketAddress::fromIp(d->target.host, d->target.port).has_value());
      check(d->via.empty() || HostPort::parse(d->via).has_value());
    } else {
      check(!d->why.empty());
    }
  }
  (void)ambientAuthorize(s, dst, "spiffe://cluster.local/ns/client/sa/sleep", dst);
  (void)ambientAuthorize(s, dst, "", dst);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string_view> pieces = splitPieces(data, size);
  AdsClientOptions o;
  o.nodeId = "fuzz";
  o.delta = true;
  o.ambient = true;
  AdsClientState st(o);
  checkRequests(st.streamStarted());
  for (size_t i = 0; i < pieces.size(); ++i) {
    (void)parseAmbientAddress(pieces[i]);
    (void)parseAmbientPolicy(pieces[i]);
    // As a response, and as the body of one resource of each ambient type.
    checkRequests(st.onMessage(pieces[i]).requests);
    for (std::string_view type : {kAddressType, kAuthorizationType}) {
      envoy::service::discovery::v3::DeltaDiscoveryResponse r;
      r.set_type_url(std::string(type));
      r.set_nonce(std::to_string(i));
      auto* res = r.add_resources();
      res->set_name(i % 3 == 0 ? std::string() : "n" + std::to_string(i % 4));
      res->mutable_resource()->set_type_url(std::string(type));
      res->mutable_resource()->set_value(std::string(pieces[i]));
      if (i % 5 == 4) r.add_removed_resources("n1");
      checkRequests(st.onMessage(r.SerializeAsString()).requests);
    }
    if (i == pieces.size() / 2) {
      st.streamEnded();
      checkRequests(st.streamStarted());
    }
  }
  std::shared_ptr<const AmbientSnapshot> s = st.ambient();
  check(s != nullptr);
  uint64_t pick = 0;
  for (const auto& [ip, uid] : s->workloadByIp) {
    for (uint16_t port : {uint16_t{80}, uint16_t{8080}}) ask(*s, *SocketAddress::fromIp(ip, port), pick++);
  }
  for (const auto& [vip, key] : s->serviceByVip) {
    for (const auto& sp : s->services.at(key).ports) ask(*s, *SocketAddress::fromIp(vip, sp.servicePort), pick++);
    ask(*s, *SocketAddress::fromIp(vip, 1), pick++);
  }
  ask(*s, *SocketAddress::fromIp("192.0.2.1", 80), pick);
  return 0;
}
