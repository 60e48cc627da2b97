// The generated xDS messages (src/xds/proto, lite runtime): bytes and type URLs as Envoy's own
// protos give them (the vectors in PROTOCOLS.md §6 and hand-derived encodings), Any packing, and
// the parse entry point on bad input.
#include "xds/messages.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "test_common/test_util.h"
#include "xds/grpc_frame.h"

namespace ugate::xds {
namespace {

namespace discovery = envoy::service::discovery::v3;
namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;
using test::toHex;

TEST(XdsMessagesTest, DiscoveryRequestMatchesTheDerivedBytes) {
  discovery::DiscoveryRequest r;
  r.mutable_node()->set_id("n1");
  r.set_type_url(std::string(kClusterType));
  const std::string wire = serializeDeterministic(r);
  EXPECT_EQ(wire.size(), 59u);
  EXPECT_EQ(toHex(wire), "12040a026e312233" + toHex(kClusterType));
  EXPECT_EQ(toHex(grpc::encodeMessage(wire)).substr(0, 10), "000000003b");

  discovery::DiscoveryRequest ack;
  ack.set_version_info("v1");
  ack.set_type_url(std::string(kClusterType));
  ack.set_response_nonce("A");
  EXPECT_EQ(toHex(serializeDeterministic(ack)), "0a0276312233" + toHex(kClusterType) + "2a0141");

  discovery::DiscoveryRequest back;
  ASSERT_TRUE(parseMessage(wire, back));
  EXPECT_EQ(back.node().id(), "n1");
  EXPECT_EQ(back.type_url(), kClusterType);
}

TEST(XdsMessagesTest, NackCarriesAStatus) {
  discovery::DiscoveryRequest nack;
  nack.set_response_nonce("7");
  nack.mutable_error_detail()->set_code(14);
  nack.mutable_error_detail()->set_message("no path_specifier set");
  discovery::DiscoveryRequest back;
  ASSERT_TRUE(parseMessage(serializeDeterministic(nack), back));
  EXPECT_TRUE(back.has_error_detail());
  EXPECT_EQ(back.error_detail().code(), 14);
  EXPECT_EQ(back.error_detail().message(), "no path_specifier set");
}

TEST(XdsMessagesTest, AnyTypeUrlsAreEnvoys) {
  google::protobuf::Any any;
  envoy::config::listener::v3::Listener l;
  ASSERT_TRUE(any.PackFrom(l));
  EXPECT_EQ(any.type_url(), kListenerType);
  envoy::config::route::v3::RouteConfiguration rc;
  ASSERT_TRUE(any.PackFrom(rc));
  EXPECT_EQ(any.type_url(), kRouteConfigurationType);
  envoy::config::cluster::v3::Cluster c;
  ASSERT_TRUE(any.PackFrom(c));
  EXPECT_EQ(any.type_url(), kClusterType);
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_TRUE(any.PackFrom(cla));
  EXPECT_EQ(any.type_url(), kClusterLoadAssignmentType);
  hcm::HttpConnectionManager m;
  ASSERT_TRUE(any.PackFrom(m));
  EXPECT_EQ(any.type_url(), kHttpConnectionManagerType);
  envoy::extensions::filters::http::router::v3::Router router;
  ASSERT_TRUE(any.PackFrom(router));
  EXPECT_EQ(any.type_url(), kRouterType);
  EXPECT_TRUE(any.Is<envoy::extensions::filters::http::router::v3::Router>());
  EXPECT_FALSE(any.Is<envoy::config::cluster::v3::Cluster>());
}

TEST(XdsMessagesTest, EdsClusterBytes) {
  envoy::config::cluster::v3::Cluster c;
  c.set_name("a");
  c.set_type(envoy::config::cluster::v3::Cluster::EDS);
  auto* src = c.mutable_eds_cluster_config()->mutable_eds_config();
  src->mutable_ads();
  src->set_resource_api_version(envoy::config::core::v3::V3);
  // name 1 "a" | type 2 = 3 | eds_cluster_config 3 { eds_config 1 { ads 3 {} resource_api_version 6
  // = 2 } }
  EXPECT_EQ(toHex(serializeDeterministic(c)),
            "0a01611003"
            "1a06"
            "0a04"
            "1a00"
            "3002");
}

TEST(XdsMessagesTest, ApiListenerIsField19) {
  envoy::config::listener::v3::Listener l;
  l.set_name("svc");
  hcm::HttpConnectionManager m;
  m.mutable_rds()->mutable_config_source()->mutable_ads();
  m.mutable_rds()->set_route_config_name("svc");
  auto* router = m.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  ASSERT_TRUE(l.mutable_api_listener()->mutable_api_listener()->PackFrom(m));
  const std::string wire = serializeDeterministic(l);
  // name 1 "svc", then tag (19 << 3 | 2) = 0x9a 0x01.
  EXPECT_EQ(toHex(wire).substr(0, 14), "0a037376639a01");

  envoy::config::listener::v3::Listener back;
  ASSERT_TRUE(parseMessage(wire, back));
  hcm::HttpConnectionManager inner;
  ASSERT_TRUE(back.api_listener().api_listener().UnpackTo(&inner));
  EXPECT_TRUE(inner.rds().config_source().has_ads());
  EXPECT_EQ(inner.rds().route_config_name(), "svc");
  ASSERT_EQ(inner.http_filters_size(), 1);
  EXPECT_EQ(inner.http_filters(0).typed_config().type_url(), kRouterType);
}

TEST(XdsMessagesTest, RouteWithAnEmptyPrefixStillSetsIt) {
  envoy::config::route::v3::RouteConfiguration rc;
  rc.set_name("svc");
  auto* vh = rc.add_virtual_hosts();
  vh->set_name("svc");
  vh->add_domains("svc");
  auto* route = vh->add_routes();
  route->mutable_match()->set_prefix("");
  route->mutable_route()->set_cluster("svc");
  envoy::config::route::v3::RouteConfiguration back;
  ASSERT_TRUE(parseMessage(serializeDeterministic(rc), back));
  const auto& match = back.virtual_hosts(0).routes(0).match();
  EXPECT_EQ(match.path_specifier_case(), envoy::config::route::v3::RouteMatch::kPrefix);
  EXPECT_EQ(back.virtual_hosts(0).routes(0).route().cluster(), "svc");
}

TEST(XdsMessagesTest, LoadAssignmentWithLocalityWeight) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  cla.set_cluster_name("svc");
  auto* loc = cla.add_endpoints();
  loc->mutable_locality()->set_zone("z1");
  loc->mutable_load_balancing_weight()->set_value(1);
  auto* ep = loc->add_lb_endpoints();
  auto* sa = ep->mutable_endpoint()->mutable_address()->mutable_socket_address();
  sa->set_address("10.0.0.1");
  sa->set_port_value(8080);
  ep->set_health_status(envoy::config::core::v3::HEALTHY);
  envoy::config::endpoint::v3::ClusterLoadAssignment back;
  ASSERT_TRUE(parseMessage(serializeDeterministic(cla), back));
  ASSERT_EQ(back.endpoints_size(), 1);
  EXPECT_TRUE(back.endpoints(0).has_load_balancing_weight());
  EXPECT_EQ(back.endpoints(0).locality().zone(), "z1");
  const auto& got = back.endpoints(0).lb_endpoints(0);
  EXPECT_EQ(got.endpoint().address().socket_address().port_value(), 8080u);
  EXPECT_EQ(got.health_status(), envoy::config::core::v3::HEALTHY);
  EXPECT_FALSE(got.has_load_balancing_weight());
}

TEST(XdsMessagesTest, DeltaRequestMapIsDeterministic) {
  discovery::DeltaDiscoveryRequest r;
  r.set_type_url(std::string(kClusterType));
  auto& versions = *r.mutable_initial_resource_versions();
  for (const char* name : {"c", "a", "b"}) versions[name] = std::string("v-") + name;
  const std::string once = serializeDeterministic(r);
  discovery::DeltaDiscoveryRequest back;
  ASSERT_TRUE(parseMessage(once, back));
  EXPECT_EQ(serializeDeterministic(back), once);
  EXPECT_EQ(back.initial_resource_versions().at("a"), "v-a");
  // Entries in key order: 2a 08 | 0a 01 "a" | 12 03 "v-a", then "b", then "c".
  const std::string h = toHex(once);
  const size_t ea = h.find(
      "2a080a0161"
      "1203762d61");
  const size_t eb = h.find(
      "2a080a0162"
      "1203762d62");
  const size_t ec = h.find(
      "2a080a0163"
      "1203762d63");
  ASSERT_NE(ea, std::string::npos);
  EXPECT_LT(ea, eb);
  EXPECT_LT(eb, ec);
  EXPECT_NE(ec, std::string::npos);
}

TEST(XdsMessagesTest, NodeMetadataAndUnknownFieldsSurvive) {
  envoy::config::core::v3::Node n;
  auto* node = &n;
  node->set_id("ztunnel~10.0.0.5~pod.ns~ns.svc.cluster.local");
  node->mutable_locality()->set_region("r1");
  node->set_user_agent_name("gRPC Node Pure JS");
  node->set_user_agent_version("1.14.0");
  node->add_client_features("envoy.lb.does_not_support_overprovisioning");
  (*node->mutable_metadata()->mutable_fields())["NAMESPACE"].set_string_value("ns");
  // Field 9 of Node (extensions, as Envoy sends it) is not declared here: it comes back unchanged.
  const std::string nodeBytes = serializeDeterministic(n) + std::string("\x4a\x02\x0a\x00", 4);
  envoy::config::core::v3::Node n2;
  ASSERT_TRUE(parseMessage(nodeBytes, n2));
  EXPECT_EQ(serializeDeterministic(n2), nodeBytes);
  EXPECT_EQ(n2.metadata().fields().at("NAMESPACE").string_value(), "ns");
  EXPECT_EQ(n2.locality().region(), "r1");
  EXPECT_EQ(n2.user_agent_version(), "1.14.0");
}

TEST(XdsMessagesTest, MalformedInputFails) {
  discovery::DiscoveryRequest r;
  EXPECT_FALSE(parseMessage(std::string("\x12\x05\x0a\x02", 4), r));  // truncated node
  EXPECT_FALSE(parseMessage(std::string("\x22\xff", 2), r));          // bad length varint
  EXPECT_FALSE(parseMessage(std::string("\x07", 1), r));              // wire type 7
  EXPECT_FALSE(parseMessage(std::string("\x00", 1), r));              // field 0
  EXPECT_FALSE(parseMessage(std::string("\x22\x02\xc3\x28", 4), r));  // type_url not UTF-8
  // Nesting beyond protobuf's recursion limit (100): lists in lists in Node.metadata.
  discovery::DiscoveryRequest deep;
  google::protobuf::Value* v = &(*deep.mutable_node()->mutable_metadata()->mutable_fields())["k"];
  for (int i = 0; i < 150; ++i) v = v->mutable_list_value()->add_values();
  v->set_bool_value(true);
  EXPECT_FALSE(parseMessage(serializeDeterministic(deep), r));
  EXPECT_TRUE(parseMessage("", r));
}

}  // namespace
}  // namespace ugate::xds
