// The "clusters" section and `cluster:NAME` targets: defaults, both endpoint forms, and each error
// with its JSON path.
#include <ugate/config.h>

#include <gtest/gtest.h>

#include <string>

#include "core/route_table.h"
#include "test_common/config_cases.h"

namespace ugate {
namespace {

using test::ErrCase;
using test::parseErr;
using test::parseOk;

std::string withClusters(const std::string& clusters, const std::string& to = "cluster:web") {
  return R"({"clusters": [)" + clusters +
         R"(], "listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:7000", "to": ")" + to + R"("}]})";
}

TEST(ClusterConfigTest, DefaultsAndBothEndpointForms) {
  auto c = parseOk(withClusters(
      R"({"name": "web", "endpoints": ["127.0.0.1:8001", {"address": "Backend.Example:80", "weight": 3}]})"));
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->clusters.size(), 1u);
  const ClusterConfig& k = c->clusters[0];
  EXPECT_EQ(k.name, "web");
  ASSERT_EQ(k.endpoints.size(), 2u);
  EXPECT_EQ(k.endpoints[0].address.str(), "127.0.0.1:8001");
  EXPECT_EQ(k.endpoints[0].weight, 1u);
  EXPECT_EQ(k.endpoints[1].address.host, "backend.example");
  EXPECT_EQ(k.endpoints[1].weight, 3u);
  EXPECT_EQ(k.lb, LbPolicy::RoundRobin);
  EXPECT_EQ(k.connectRetries, 2u);
  EXPECT_FALSE(k.healthCheck.enabled);
  EXPECT_FALSE(k.outlier.enabled);
  EXPECT_EQ(k.dnsRefresh.count(), 5000);
  EXPECT_EQ(c->listeners[0].to.type, Target::Type::Cluster);
  EXPECT_EQ(c->listeners[0].to.str(), "cluster:web");
}

TEST(ClusterConfigTest, HealthCheckAndOutlierDefaults) {
  auto c = parseOk(withClusters(
      R"({"name": "web", "endpoints": ["127.0.0.1:8001"], "lb": "least_connections", "healthCheck": {},
          "outlier": {}, "connectRetries": 0})"));
  ASSERT_NE(c, nullptr);
  const ClusterConfig& k = c->clusters[0];
  EXPECT_EQ(k.lb, LbPolicy::LeastConnections);
  EXPECT_EQ(k.connectRetries, 0u);
  EXPECT_TRUE(k.healthCheck.enabled);
  EXPECT_EQ(k.healthCheck.kind, HealthCheckConfig::Kind::Tcp);
  EXPECT_EQ(k.healthCheck.interval.count(), 5000);
  EXPECT_EQ(k.healthCheck.timeout.count(), 1000);
  EXPECT_EQ(k.healthCheck.healthyThreshold, 2u);
  EXPECT_EQ(k.healthCheck.unhealthyThreshold, 3u);
  EXPECT_TRUE(k.outlier.enabled);
  EXPECT_EQ(k.outlier.consecutiveFailures, 5u);
  EXPECT_EQ(k.outlier.ejectFor.count(), 30000);
  EXPECT_EQ(k.outlier.maxEjectedPercent, 50u);
}

TEST(ClusterConfigTest, RoutesTargetClusters) {
  auto c = parseOk(R"({"clusters": [{"name": "api", "endpoints": ["127.0.0.1:9000"], "lb": "hash_source",
                       "healthCheck": {"kind": "http", "path": "/healthz", "interval": "2s", "timeout": "500ms",
                                       "healthyThreshold": 1, "unhealthyThreshold": 1}}],
                       "listeners": [{"name": "s", "kind": "tcp", "address": "127.0.0.1:1080", "to": "127.0.0.1:1"}],
                       "routes": [{"match": {"host": "api.internal"}, "to": "cluster:api"}]})");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->clusters[0].healthCheck.kind, HealthCheckConfig::Kind::Http);
  EXPECT_EQ(c->clusters[0].healthCheck.path, "/healthz");
  EXPECT_EQ(c->clusters[0].healthCheck.interval.count(), 2000);
  RouteTable rt(c);
  StreamMeta m;
  m.listener = "s";
  m.host = "api.internal";
  m.port = 443;
  RouteDecision d = rt.route(m);
  EXPECT_EQ(d.action, RouteDecision::Action::DialCluster);
  EXPECT_EQ(d.cluster, "api");
}

TEST(ClusterConfigTest, ListenerTargetNamesTheClusterAfterRouting) {
  // The decision's name must point into the snapshot, not into a copy (a long name: no SSO).
  const std::string name = "a-cluster-with-a-long-name";
  auto c = parseOk(withClusters(R"({"name": ")" + name + R"(", "endpoints": ["127.0.0.1:1"]})", "cluster:" + name));
  ASSERT_NE(c, nullptr);
  RouteTable rt(c);
  StreamMeta m;
  m.listener = "l";
  RouteDecision d = rt.route(m);
  EXPECT_EQ(d.action, RouteDecision::Action::DialCluster);
  std::string overwrite(64, 'x');  // reuse the stack a copy would have used
  EXPECT_EQ(std::string(d.cluster), name);
  EXPECT_EQ(routeLogName(d, "l"), "listener:l");
}

class ClusterConfigErrorTest : public testing::TestWithParam<ErrCase> {};

TEST_P(ClusterConfigErrorTest, Refused) { test::expectConfigError(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Cases, ClusterConfigErrorTest,
    testing::Values(
        ErrCase{"unknown cluster", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"]})", "cluster:wbe"),
                "listeners[0].to: no cluster named 'wbe' (clusters: web)"},
        ErrCase{"no clusters at all",
                R"({"listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:7000", "to": "cluster:x"}]})",
                "listeners[0].to: no cluster named 'x' (the config has no clusters)"},
        ErrCase{"unknown cluster in a route",
                R"({"clusters": [{"name": "a", "endpoints": ["127.0.0.1:1"]}],
                    "listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:7000", "to": "cluster:a"}],
                    "routes": [{"to": "cluster:b"}]})",
                "routes[0].to: no cluster named 'b' (clusters: a)"},
        ErrCase{"bad cluster name in a target", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"]})", "cluster:"),
                "listeners[0].to: 'cluster:': a cluster name is 1 to 64 letters, digits, '.', '_' or '-'"},
        ErrCase{"empty endpoints", withClusters(R"({"name": "web", "endpoints": []})"),
                "clusters[0].endpoints: empty: a cluster needs at least one endpoint"},
        ErrCase{"missing endpoints", withClusters(R"({"name": "web"})"), "clusters[0].endpoints: required"},
        ErrCase{"zero weight", withClusters(R"({"name": "web", "endpoints": [{"address": "127.0.0.1:1", "weight": 0}]})"),
                "clusters[0].endpoints[0].weight: 0 out of range [1, 10000]"},
        ErrCase{"fractional weight",
                withClusters(R"({"name": "web", "endpoints": [{"address": "127.0.0.1:1", "weight": 1.5}]})"),
                "clusters[0].endpoints[0].weight: expected an integer 1..10000, got 1.5"},
        ErrCase{"string weight",
                withClusters(R"({"name": "web", "endpoints": [{"address": "127.0.0.1:1", "weight": "2"}]})"),
                "clusters[0].endpoints[0].weight: expected an integer 1..10000, got string"},
        ErrCase{"bad address", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1"]})"),
                "clusters[0].endpoints[0]: '127.0.0.1' is not host:port (a literal IP or a DNS name, and a port 1..65535)"},
        ErrCase{"duplicate endpoint", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1", "127.0.0.1:1"]})"),
                "clusters[0].endpoints[1]: duplicate endpoint 127.0.0.1:1 (give it a weight instead)"},
        ErrCase{"bad lb", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "lb": "roundrobin"})"),
                "clusters[0].lb: 'roundrobin' is not one of round_robin, least_connections, random_two, hash_source"},
        ErrCase{"duplicate cluster",
                withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"]}, {"name": "web", "endpoints": ["127.0.0.1:2"]})"),
                "clusters[1].name: duplicate cluster name 'web'"},
        ErrCase{"bad health kind",
                withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "healthCheck": {"kind": "udp"}})"),
                "clusters[0].healthCheck.kind: 'udp' is not one of tcp, http"},
        ErrCase{"path on tcp",
                withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "healthCheck": {"path": "/h"}})"),
                "clusters[0].healthCheck.path: applies to kind \"http\" only"},
        ErrCase{"timeout over interval",
                withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "healthCheck": {"interval": "1s", "timeout": "2s"}})"),
                "clusters[0].healthCheck.timeout: must not be longer than the interval"},
        ErrCase{"eject percent",
                withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "outlier": {"maxEjectedPercent": 150}})"),
                "clusters[0].outlier.maxEjectedPercent: 150 out of range [0, 100]"},
        ErrCase{"retries", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "connectRetries": -1})"),
                "clusters[0].connectRetries: -1 out of range [0, 10]"},
        ErrCase{"unknown key", withClusters(R"({"name": "web", "endpoints": ["127.0.0.1:1"], "weights": 1})"),
                "clusters[0].weights: unknown key*"},
        ErrCase{"via a gateway",
                R"({"clusters": [{"name": "a", "endpoints": ["127.0.0.1:1"]}],
                    "listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:7000", "to": "cluster:a"}],
                    "routes": [{"to": "cluster:a", "via": "gw.example:15008"}]})",
                "routes[0].via: a cluster's endpoints are dialled directly; `via` does not apply to 'cluster:a'"}));

TEST(ClusterConfigTest, BrokenClusterIsReportedOnceNotAgainInTargets) {
  std::string err = parseErr(withClusters(R"({"name": "web", "endpoints": []})"));
  EXPECT_EQ(err, "clusters[0].endpoints: empty: a cluster needs at least one endpoint");
}

}  // namespace
}  // namespace ugate
