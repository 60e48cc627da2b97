// CDS + EDS → ugate clusters (src/xds/cluster_convert.h): what is accepted, what is NACKed and why.
#include "xds/cluster_convert.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"

namespace ugate::xds {
namespace {

namespace cluster = envoy::config::cluster::v3;
namespace core = envoy::config::core::v3;
namespace endpoint = envoy::config::endpoint::v3;

std::string edsCluster(const std::string& name, const std::string& service = "",
                       cluster::Cluster::LbPolicy lb = cluster::Cluster::ROUND_ROBIN) {
  cluster::Cluster c;
  c.set_name(name);
  c.set_type(cluster::Cluster::EDS);
  c.mutable_eds_cluster_config()->mutable_eds_config()->mutable_ads();
  if (!service.empty()) c.mutable_eds_cluster_config()->set_service_name(service);
  c.set_lb_policy(lb);
  return c.SerializeAsString();
}

endpoint::LbEndpoint* addEndpoint(endpoint::LocalityLbEndpoints& loc, const std::string& ip, uint32_t port) {
  auto* lb = loc.add_lb_endpoints();
  auto* sa = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
  sa->set_address(ip);
  sa->set_port_value(port);
  return lb;
}

TEST(CdsCluster, EdsClusterWithServiceNameAndPolicies) {
  auto c = parseCdsCluster(edsCluster("web", "web-eds", cluster::Cluster::LEAST_REQUEST));
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(c->name, "web");
  EXPECT_EQ(c->edsName, "web-eds");
  EXPECT_EQ(c->lb, LbPolicy::LeastConnections);
  auto d = parseCdsCluster(edsCluster("svc.test"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->edsName, "svc.test") << "no service_name: the cluster's name";
  EXPECT_EQ(d->lb, LbPolicy::RoundRobin);
  EXPECT_EQ(parseCdsCluster(edsCluster("a", "", cluster::Cluster::RING_HASH))->lb, LbPolicy::HashSource);
  EXPECT_EQ(parseCdsCluster(edsCluster("a", "", cluster::Cluster::RANDOM))->lb, LbPolicy::RandomTwo);
}

TEST(CdsCluster, RefusedWithAReason) {
  cluster::Cluster st;
  st.set_name("static");
  st.set_type(cluster::Cluster::STATIC);
  auto r = parseCdsCluster(st.SerializeAsString());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("only EDS"), std::string::npos) << r.error().detail;
  r = parseCdsCluster(edsCluster("bad name!"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("cluster name"), std::string::npos);
  EXPECT_FALSE(parseCdsCluster(edsCluster("")));
  EXPECT_FALSE(parseCdsCluster(edsCluster("a", "", cluster::Cluster::CLUSTER_PROVIDED)));
  EXPECT_FALSE(parseCdsCluster("\xff\xff\xff"));
}

TEST(EdsAssignment, EndpointsWeightsHealthAndPriority) {
  endpoint::ClusterLoadAssignment a;
  a.set_cluster_name("web");
  auto* p0 = a.add_endpoints();
  addEndpoint(*p0, "127.0.0.1", 9001)->mutable_load_balancing_weight()->set_value(5);
  addEndpoint(*p0, "::1", 9002)->set_health_status(core::UNHEALTHY);
  addEndpoint(*p0, "127.0.0.1", 9001);  // the same address again: merged, weights added
  auto* p1 = a.add_endpoints();
  p1->set_priority(1);
  addEndpoint(*p1, "127.0.0.3", 9003);  // a lower priority (higher number): not used
  auto r = parseEdsAssignment(a.SerializeAsString());
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->name, "web");
  ASSERT_EQ(r->endpoints.size(), 2u);
  EXPECT_EQ(r->endpoints[0].address.str(), "127.0.0.1:9001");
  EXPECT_EQ(r->endpoints[0].weight, 6u);
  EXPECT_TRUE(r->endpoints[0].healthy);
  EXPECT_EQ(r->endpoints[1].address.str(), "[::1]:9002");
  EXPECT_FALSE(r->endpoints[1].healthy);
  DynamicCluster d = buildCluster(*parseCdsCluster(edsCluster("web")), &*r, "v1");
  EXPECT_EQ(d.source, "xds");
  EXPECT_EQ(d.version, "v1");
  EXPECT_EQ(d.endpoints, r->endpoints);
  EXPECT_TRUE(buildCluster(*parseCdsCluster(edsCluster("web")), nullptr, "v1").endpoints.empty());
}

TEST(EdsAssignment, RefusedWithAReason) {
  auto refused = [](const std::string& ip, uint32_t port, uint32_t weight, const std::string& want) {
    endpoint::ClusterLoadAssignment a;
    a.set_cluster_name("web");
    auto* lb = addEndpoint(*a.add_endpoints(), ip, port);
    if (weight != 1) lb->mutable_load_balancing_weight()->set_value(weight);
    auto r = parseEdsAssignment(a.SerializeAsString());
    ASSERT_FALSE(r) << ip << " " << port;
    EXPECT_NE(r.error().detail.find(want), std::string::npos) << r.error().detail;
  };
  refused("backend.example", 80, 1, "not an IP address");
  refused("127.0.0.1", 0, 1, "not 1..65535");
  refused("127.0.0.1", 70000, 1, "not 1..65535");
  refused("127.0.0.1", 80, 0, "weight 0");
  refused("127.0.0.1", 80, kMaxEndpointWeight + 1, "weight");
  endpoint::ClusterLoadAssignment noName;
  EXPECT_FALSE(parseEdsAssignment(noName.SerializeAsString()));
  endpoint::ClusterLoadAssignment noAddr;
  noAddr.set_cluster_name("web");
  noAddr.add_endpoints()->add_lb_endpoints();
  EXPECT_FALSE(parseEdsAssignment(noAddr.SerializeAsString()));
  endpoint::ClusterLoadAssignment many;
  many.set_cluster_name("web");
  auto* loc = many.add_endpoints();
  for (size_t i = 0; i <= kMaxEdsEndpoints; ++i) addEndpoint(*loc, "127.0.0.1", 1 + static_cast<uint32_t>(i % 60000));
  auto r = parseEdsAssignment(many.SerializeAsString());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("at most"), std::string::npos);
}

}  // namespace
}  // namespace ugate::xds
