// xds.client.ambient and xds.client.tokenFile (xds_config.cc): the node metadata ztunnel sends,
// delta implied, the HBONE TLS context asked of core, and each error with its JSON path.
#include <gtest/gtest.h>

#include "test_common/config_cases.h"
#include "xds/xds_config.h"

namespace ugate::xds {
namespace {

TEST(AmbientConfig, MetadataDeltaAndTls) {
  auto c = test::parseOk(R"({"tls": {"certDir": "/etc/ugate/certs"}, "xds": {"client": {"address": "istiod.istio-system.svc:15012", "insecure": true,
    "tokenFile": "/var/run/secrets/tokens/istio-token",
    "ambient": {"name": "ztunnel-abc", "namespace": "istio-system", "instanceIps": ["10.0.0.5", "fd00::5"],
                "nodeName": "node-1", "clusterId": "Kubernetes"}}}})");
  ASSERT_TRUE(c);
  const XdsClientConfig& k = *xdsConfig(*c).client;
  EXPECT_TRUE(k.ambient);
  EXPECT_TRUE(k.delta) << "ambient implies delta";
  EXPECT_EQ(k.tokenFile, "/var/run/secrets/tokens/istio-token");
  EXPECT_EQ(k.clusterId, "Kubernetes");
  EXPECT_EQ(k.metadata, (std::map<std::string, std::string>{{"NAME", "ztunnel-abc"},
                                                              {"NAMESPACE", "istio-system"},
                                                              {"INSTANCE_IPS", "10.0.0.5,fd00::5"},
                                                              {"NODE_NAME", "node-1"},
                                                              {"CLUSTER_ID", "Kubernetes"}}));
  EXPECT_TRUE(c->fromModules.tls) << "HBONE needs the node's identity";
  bool hbone = false;
  for (const auto& t : c->fromModules.clientTls) hbone |= t.path == "xds.client.ambient (HBONE)" && t.tls.alpn == std::vector<std::string>{"h2"};
  EXPECT_TRUE(hbone);
}

TEST(AmbientConfig, OffByDefaultAndExplicitOff) {
  auto c = test::parseOk(R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true}}})");
  ASSERT_TRUE(c);
  EXPECT_FALSE(xdsConfig(*c).client->ambient);
  EXPECT_FALSE(xdsConfig(*c).client->delta);
  c = test::parseOk(R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "ambient": {"enabled": false}}}})");
  ASSERT_TRUE(c);
  EXPECT_FALSE(xdsConfig(*c).client->ambient);
}

class AmbientConfigErrorTest : public testing::TestWithParam<test::ErrCase> {};
TEST_P(AmbientConfigErrorTest, Refused) { test::expectConfigError(GetParam()); }
INSTANTIATE_TEST_SUITE_P(
    Cases, AmbientConfigErrorTest,
    testing::Values(
        test::ErrCase{"ambient over sotw", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "delta": false, "ambient": {}}}})",
                      "xds.client.ambient: the ambient types are served over delta ADS only (\"delta\": true)"},
        test::ErrCase{"unknown key", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "ambient": {"pod": "x"}}}})",
                      "xds.client.ambient.pod: unknown key (*"},
        test::ErrCase{"bad instance IP", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "ambient": {"instanceIps": ["pod-1"]}}}})",
                      "xds.client.ambient.instanceIps: 'pod-1' is not an IP address"},
        test::ErrCase{"empty token file", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "tokenFile": ""}}})",
                      "xds.client.tokenFile: must not be empty"}));

}  // namespace
}  // namespace ugate::xds
