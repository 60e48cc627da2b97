#include "xds/ads_resources.h"

#include <map>

#include <set>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "ugate/v1/node.pb.h"
#include "xds/message_convert.h"
#include "xds/messages.h"

namespace ugate::xds::ads {

namespace {

namespace cluster = envoy::config::cluster::v3;
namespace core = envoy::config::core::v3;
namespace endpoint = envoy::config::endpoint::v3;
namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;
namespace listener = envoy::config::listener::v3;
namespace route = envoy::config::route::v3;

// pack: `m` as an Any (deterministic bytes, so equal configs give equal versions).
void pack(const google::protobuf::MessageLite& m, std::string_view typeUrl, google::protobuf::Any& any) {
  any.set_type_url(std::string(typeUrl));
  any.set_value(serializeDeterministic(m));
}

std::string listenerFor(const std::string& host) {
  hcm::HttpConnectionManager h;
  h.set_stat_prefix(host);
  auto* rds = h.mutable_rds();
  rds->mutable_config_source()->mutable_ads();
  rds->mutable_config_source()->set_resource_api_version(core::V3);
  rds->set_route_config_name(host);
  auto* router = h.add_http_filters();
  router->set_name("envoy.filters.http.router");
  pack(envoy::extensions::filters::http::router::v3::Router(), kRouterType, *router->mutable_typed_config());
  listener::Listener l;
  l.set_name(host);
  pack(h, kHttpConnectionManagerType, *l.mutable_api_listener()->mutable_api_listener());
  return serializeDeterministic(l);
}

std::string routeFor(const std::string& host) {
  route::RouteConfiguration rc;
  rc.set_name(host);
  auto* vh = rc.add_virtual_hosts();
  vh->set_name(host);
  vh->add_domains(host);
  vh->add_domains("*");
  auto* r = vh->add_routes();
  r->mutable_match()->set_prefix("");  // must be set, even empty (grpc-js NACKs an unset one)
  r->mutable_route()->set_cluster(host);
  return serializeDeterministic(rc);
}

std::string clusterFor(const std::string& host) {
  cluster::Cluster cl;
  cl.set_name(host);
  cl.set_type(cluster::Cluster::EDS);
  auto* eds = cl.mutable_eds_cluster_config();
  eds->mutable_eds_config()->mutable_ads();
  eds->mutable_eds_config()->set_resource_api_version(core::V3);
  eds->set_service_name(host);
  cl.set_lb_policy(cluster::Cluster::ROUND_ROBIN);
  return serializeDeterministic(cl);
}

std::string assignmentFor(const std::string& host, const std::vector<ClusterEndpointConfig>& eps) {
  endpoint::ClusterLoadAssignment cla;
  cla.set_cluster_name(host);
  auto* loc = cla.add_endpoints();
  loc->mutable_locality()->set_region("ugate");
  loc->mutable_load_balancing_weight()->set_value(1);
  for (const ClusterEndpointConfig& e : eps) {
    auto* lb = loc->add_lb_endpoints();
    auto* sa = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    sa->set_address(e.address.host);
    sa->set_port_value(e.address.port);
    lb->set_health_status(core::HEALTHY);
    lb->mutable_load_balancing_weight()->set_value(e.weight);
  }
  return serializeDeterministic(cla);
}

bool isIpLiteral(const std::string& host) { return SocketAddress::fromIp(host, 1).has_value(); }

}  // namespace

Snapshot buildSnapshot(const Config& c, uint64_t generation, std::vector<std::string>* skipped) {
  Snapshot s;
  s.generation = generation;
  auto skip = [&](std::string why) {
    if (skipped) skipped->push_back(std::move(why));
  };
  std::set<std::string> seen;
  for (const RouteConfig& r : c.routes) {
    std::vector<ClusterEndpointConfig> targets;
    if (r.to.type == Target::Type::HostPort) {
      targets.push_back({r.to.hostPort, 1});
    } else if (r.to.type == Target::Type::Cluster) {
      if (const ClusterConfig* cl = c.findCluster(r.to.cluster)) targets = cl->endpoints;
    } else {
      continue;  // original, reject, sni:PORT: nothing a client could dial
    }
    bool exact = false;
    for (const std::string& h : r.match.hosts) exact = exact || h.find('*') == std::string::npos;
    if (!exact) continue;
    if (!r.via.empty()) {
      skip(r.name + ": goes via " + r.via + " (not published)");
      continue;
    }
    if (!r.match.identities.empty()) {
      // Its target is for authenticated peers only; a proxyless client would dial it directly.
      skip(r.name + ": matches peer identities (not published)");
      continue;
    }
    std::vector<ClusterEndpointConfig> eps;
    for (const ClusterEndpointConfig& e : targets) {
      if (isIpLiteral(e.address.host)) {
        eps.push_back(e);
      } else {
        skip(r.name + ": endpoint " + e.address.str() + " is a name, not an IP address (left out)");
      }
    }
    for (const std::string& h : r.match.hosts) {
      if (h.find('*') != std::string::npos || !seen.insert(h).second) continue;
      if (eps.empty()) {
        skip(r.name + ": " + h + " has no IP endpoint (not published)");
        continue;
      }
      s.add(kListenerType, h, listenerFor(h));
      s.add(kRouteConfigurationType, h, routeFor(h));
      s.add(kClusterType, h, clusterFor(h));
      s.add(kClusterLoadAssignmentType, h, assignmentFor(h, eps));
    }
  }
  return s;
}

void addNodes(Snapshot& s, const Config& c, const std::string& selfId, const std::vector<DirectPeer>& peers,
              const std::vector<AssociatedNode>& associated) {
  if (!selfId.empty()) {
    ugate::v1::Node n;
    n.set_id(selfId);
    n.set_name(c.node.name);
    n.set_source("self");
    for (const ListenerConfig& l : c.listeners) {
      if (l.kind == "mesh") n.add_mesh_tcp(l.address.str());
    }
    s.add(kNodeType, selfId, serializeDeterministic(n));
  }
  for (const DirectPeer& p : peers) {
    if (p.id.empty() || p.id == selfId) continue;
    ugate::v1::Node n;
    n.set_id(p.id);
    n.set_name(p.name);
    n.set_source(p.source);
    for (const SocketAddress& a : p.meshTcp) n.add_mesh_tcp(a.str());
    for (const SocketAddress& a : p.meshQuic) n.add_mesh_quic(a.str());
    n.set_via(selfId);
    n.set_last_seen_unix_ms(p.lastSeenUnixMs);
    s.add(kNodeType, p.id, serializeDeterministic(n));
  }
  for (const AssociatedNode& a : associated) {
    if (a.id.empty() || a.id == selfId || s.find(kNodeType, a.id)) continue;
    ugate::v1::Node n;
    n.set_id(a.id);
    n.set_name(a.name);
    n.set_source("association");
    n.set_via(selfId);
    n.set_last_seen_unix_ms(a.sinceUnixMs);
    n.set_connected_from(a.from);
    n.set_spiffe(a.spiffe);
    s.add(kNodeType, a.id, serializeDeterministic(n));
  }
}

void addMessages(Snapshot& s, const std::vector<BoxedMessage>& messages, std::vector<std::string>* skipped) {
  std::map<std::string, Mailbox> boxes;
  for (const BoxedMessage& m : messages) {
    RelayEnvelope e{m.id, m.ciphertext, m.ttlSeconds, m.urgency, m.createdUnixMs};
    auto ok = checkRecipient(m.recipient);
    if (ok) ok = checkEnvelope(e);
    Mailbox& box = boxes[m.recipient];
    if (ok && box.envelopes.size() >= kMaxEnvelopes) ok = Error{Errc::ResourceExhausted, "mailbox full"};
    if (!ok) {
      if (skipped) skipped->push_back("message " + m.id + " for " + m.recipient.substr(0, 64) + ": " + ok.error().detail);
      continue;
    }
    box.recipient = m.recipient;
    box.envelopes.push_back(std::move(e));
  }
  for (const auto& [recipient, box] : boxes) {
    if (!box.envelopes.empty()) s.add(kMessageType, recipient, encodeMailbox(box));
  }
}

}  // namespace ugate::xds::ads
