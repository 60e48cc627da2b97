// The ADS server's resources from a config (src/xds/ads_resources.h): the four resources per exact
// host of a host:port or cluster:NAME route, decoded back from their bytes and checked field by
// field against what @grpc/grpc-js-xds requires (../shared/docs/XDS.md); what is skipped and why.
#include "xds/ads_resources.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "test_common/config_cases.h"
#include "ugate/v1/node.pb.h"
#include "xds/messages.h"

namespace ugate::xds::ads {
namespace {

namespace cluster = envoy::config::cluster::v3;
namespace endpoint = envoy::config::endpoint::v3;

std::string configWith(const std::string& routes, const std::string& clusters = "[]") {
  return R"({"listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:7000", "to": "reject"}], "clusters": )" +
         clusters + R"(, "routes": )" + routes + "}";
}

template <class M>
M decode(const Snapshot& s, std::string_view type, const std::string& name) {
  M m;
  const Resource* r = s.find(type, name);
  EXPECT_NE(r, nullptr) << type << " " << name;
  if (r) {
    EXPECT_TRUE(parseMessage(r->bytes, m));
  }
  return m;
}

TEST(AdsResources, HostPortRouteGivesTheFourResources) {
  auto c = test::parseOk(configWith(R"([{"match": {"host": "svc.example"}, "to": "127.0.0.1:9001"}])"));
  ASSERT_NE(c, nullptr);
  std::vector<std::string> skipped;
  Snapshot s = buildSnapshot(*c, 7, &skipped);
  EXPECT_TRUE(skipped.empty());
  EXPECT_EQ(s.generation, 7u);
  for (auto t : {kListenerType, kRouteConfigurationType, kClusterType, kClusterLoadAssignmentType}) {
    EXPECT_EQ(s.ofType(t).size(), 1u) << t;
  }

  auto l = decode<envoy::config::listener::v3::Listener>(s, kListenerType, "svc.example");
  EXPECT_EQ(l.name(), "svc.example");
  EXPECT_EQ(l.api_listener().api_listener().type_url(), kHttpConnectionManagerType);
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager h;
  ASSERT_TRUE(parseMessage(l.api_listener().api_listener().value(), h));
  EXPECT_TRUE(h.rds().config_source().has_ads());
  EXPECT_EQ(h.rds().route_config_name(), "svc.example");
  ASSERT_EQ(h.http_filters_size(), 1);
  EXPECT_EQ(h.http_filters(0).typed_config().type_url(), kRouterType);

  auto rc = decode<envoy::config::route::v3::RouteConfiguration>(s, kRouteConfigurationType, "svc.example");
  ASSERT_EQ(rc.virtual_hosts_size(), 1);
  EXPECT_EQ(rc.virtual_hosts(0).domains(0), "svc.example");
  ASSERT_EQ(rc.virtual_hosts(0).routes_size(), 1);
  EXPECT_TRUE(rc.virtual_hosts(0).routes(0).match().has_prefix()) << "prefix must be set, even empty";
  EXPECT_EQ(rc.virtual_hosts(0).routes(0).route().cluster(), "svc.example");

  auto cl = decode<cluster::Cluster>(s, kClusterType, "svc.example");
  EXPECT_EQ(cl.type(), cluster::Cluster::EDS);
  EXPECT_TRUE(cl.eds_cluster_config().eds_config().has_ads());
  EXPECT_EQ(cl.eds_cluster_config().service_name(), "svc.example");

  auto cla = decode<endpoint::ClusterLoadAssignment>(s, kClusterLoadAssignmentType, "svc.example");
  EXPECT_EQ(cla.cluster_name(), "svc.example");
  ASSERT_EQ(cla.endpoints_size(), 1);
  EXPECT_TRUE(cla.endpoints(0).has_locality());
  EXPECT_EQ(cla.endpoints(0).load_balancing_weight().value(), 1u);
  ASSERT_EQ(cla.endpoints(0).lb_endpoints_size(), 1);
  const auto& sa = cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
  EXPECT_EQ(sa.address(), "127.0.0.1");
  EXPECT_EQ(sa.port_value(), 9001u);
}

TEST(AdsResources, ClusterTargetPublishesIpEndpointsWithWeightsAndSkipsNames) {
  auto c = test::parseOk(configWith(
      R"([{"match": {"host": ["a.example", "*.wild"]}, "to": "cluster:web"}])",
      R"([{"name": "web", "endpoints": [{"address": "127.0.0.1:8001", "weight": 3}, "[::1]:8002", "backend.example:80"]}])"));
  ASSERT_NE(c, nullptr);
  std::vector<std::string> skipped;
  Snapshot s = buildSnapshot(*c, 1, &skipped);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("backend.example:80"), std::string::npos) << skipped[0];
  EXPECT_EQ(s.ofType(kListenerType).size(), 1u) << "the wildcard host is not published";
  auto cla = decode<endpoint::ClusterLoadAssignment>(s, kClusterLoadAssignmentType, "a.example");
  ASSERT_EQ(cla.endpoints_size(), 1);
  ASSERT_EQ(cla.endpoints(0).lb_endpoints_size(), 2);
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).load_balancing_weight().value(), 3u);
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(1).endpoint().address().socket_address().address(), "::1");
}

TEST(AdsResources, FirstRouteWinsAndUnpublishableRoutesAreSkipped) {
  auto c = test::parseOk(configWith(R"([
      {"match": {"host": "a.example"}, "to": "127.0.0.1:1"},
      {"match": {"host": "a.example"}, "to": "127.0.0.2:2"},
      {"match": {"host": "n.example"}, "to": "backend.example:80"},
      {"match": {"host": "r.example"}, "to": "reject"},
      {"match": {"host": "i.example", "identity": "spiffe://td/ns/a/sa/b"}, "to": "127.0.0.1:3"},
      {"match": {"port": 80}, "to": "127.0.0.1:80"}])"));
  ASSERT_NE(c, nullptr);
  std::vector<std::string> skipped;
  Snapshot s = buildSnapshot(*c, 1, &skipped);
  EXPECT_EQ(s.ofType(kClusterType).size(), 1u);
  auto cla = decode<endpoint::ClusterLoadAssignment>(s, kClusterLoadAssignmentType, "a.example");
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value(), 1u);
  ASSERT_EQ(skipped.size(), 3u);  // n.example's name endpoint, then the host with none left
  EXPECT_NE(skipped[2].find("peer identities"), std::string::npos) << skipped[2];
}

TEST(AdsResources, SameConfigGivesSameVersionsAChangedTargetANewOne) {
  auto a = test::parseOk(configWith(R"([{"match": {"host": "a.example"}, "to": "127.0.0.1:1"}])"));
  auto b = test::parseOk(configWith(R"([{"match": {"host": "a.example"}, "to": "127.0.0.1:2"}])"));
  ASSERT_TRUE(a && b);
  Snapshot s1 = buildSnapshot(*a, 1), s2 = buildSnapshot(*a, 2), s3 = buildSnapshot(*b, 3);
  EXPECT_EQ(s1.find(kClusterLoadAssignmentType, "a.example")->version,
            s2.find(kClusterLoadAssignmentType, "a.example")->version);
  EXPECT_NE(s1.find(kClusterLoadAssignmentType, "a.example")->version,
            s3.find(kClusterLoadAssignmentType, "a.example")->version);
  EXPECT_EQ(s1.find(kListenerType, "a.example")->version, s3.find(kListenerType, "a.example")->version);
}

TEST(AdsResources, NodesAreSelfAndTheNodesFound) {
  auto c = std::make_shared<Config>();  // (the mesh kind is not registered in this test)
  c->node.name = "gw";
  ListenerConfig mesh;
  mesh.name = "mesh";
  mesh.kind = "mesh";
  mesh.address = *SocketAddress::parse("127.0.0.1:15008");
  c->listeners.push_back(mesh);
  const std::string self(52, 'S'), peer(52, 'P');
  DirectPeer d;
  d.id = peer;
  d.name = "n1";
  d.source = "local";
  d.meshTcp = {*SocketAddress::parse("10.0.0.2:15008")};
  d.meshQuic = {*SocketAddress::parse("10.0.0.2:15008")};
  d.lastSeenUnixMs = 42;
  DirectPeer again = d;
  again.id = self;  // ourselves as a neighbour saw us: not listed twice
  Snapshot s;
  addNodes(s, *c, self, {d, again});
  ASSERT_EQ(s.ofType(kNodeType).size(), 2u);
  auto me = decode<ugate::v1::Node>(s, kNodeType, self);
  EXPECT_EQ(me.name(), "gw");
  EXPECT_EQ(me.source(), "self");
  ASSERT_EQ(me.mesh_tcp_size(), 1);
  EXPECT_EQ(me.mesh_tcp(0), "127.0.0.1:15008");
  EXPECT_TRUE(me.via().empty());
  auto n = decode<ugate::v1::Node>(s, kNodeType, peer);
  EXPECT_EQ(n.name(), "n1");
  EXPECT_EQ(n.source(), "local");
  EXPECT_EQ(n.via(), self);
  EXPECT_EQ(n.mesh_quic(0), "10.0.0.2:15008");
  EXPECT_EQ(n.last_seen_unix_ms(), 42);
  EXPECT_TRUE(fullStateType(kNodeType)) << "a node gone is absent from the next SotW response";

  Snapshot none;
  addNodes(none, *c, "", {d});
  EXPECT_EQ(none.ofType(kNodeType).size(), 1u) << "no identity yet: only the others";
}

TEST(AdsResources, NodesHoldingAnAssociationHereAreReachedThroughThisNode) {
  auto c = std::make_shared<Config>();
  const std::string self(52, 'S'), local(52, 'L'), assoc(52, 'A');
  DirectPeer d;
  d.id = local;
  d.source = "local";
  d.meshTcp = {*SocketAddress::parse("10.0.0.2:15008")};
  const std::vector<AssociatedNode> associated = {
      {assoc, "edge", "spiffe://it.mesh/ns/default/sa/edge", "192.0.2.7:40000", 1234},
      {local, "also-local", "", "10.0.0.2:5000", 1},  // found locally too: that entry stays
      {self, "me", "", "127.0.0.1:1", 1}};           // ourselves: never listed twice
  Snapshot s;
  addNodes(s, *c, self, {d}, associated);
  ASSERT_EQ(s.ofType(kNodeType).size(), 3u);
  auto a = decode<ugate::v1::Node>(s, kNodeType, assoc);
  EXPECT_EQ(a.name(), "edge");
  EXPECT_EQ(a.source(), "association");
  EXPECT_EQ(a.via(), self);
  EXPECT_EQ(a.mesh_tcp_size(), 0);
  EXPECT_EQ(a.connected_from(), "192.0.2.7:40000");
  EXPECT_EQ(a.spiffe(), "spiffe://it.mesh/ns/default/sa/edge");
  EXPECT_EQ(a.last_seen_unix_ms(), 1234);
  EXPECT_EQ(decode<ugate::v1::Node>(s, kNodeType, local).source(), "local");
  EXPECT_EQ(decode<ugate::v1::Node>(s, kNodeType, self).source(), "self");
}

TEST(AdsResources, AssociationDirectoryPublishesChangesOnly) {
  AssociationDirectory dir;
  EXPECT_EQ(dir.generation(), 0u);
  dir.publish({{"B", "b", "", "127.0.0.1:2", 2}, {"A", "a", "", "127.0.0.1:1", 1}});
  EXPECT_EQ(dir.generation(), 1u);
  ASSERT_EQ(dir.list().size(), 2u);
  EXPECT_EQ(dir.list()[0].id, "A");  // by ID
  dir.publish({{"A", "a", "", "127.0.0.1:1", 1}, {"B", "b", "", "127.0.0.1:2", 2}});
  EXPECT_EQ(dir.generation(), 1u) << "the same set: no change";
  dir.publish({});
  EXPECT_EQ(dir.generation(), 2u);
  EXPECT_TRUE(dir.list().empty());
}

}  // namespace
}  // namespace ugate::xds::ads
