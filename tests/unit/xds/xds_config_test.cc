// The "xds" section (Module::parseConfig of the xds module): defaults (server off; loopback when
// enabled), the secure-by-default rule for non-loopback addresses, and each error with its JSON path.
#include "xds/xds_config.h"

#include <gtest/gtest.h>

#include <memory>

#include <ugate/listener.h>
#include <ugate/module.h>

#include "test_common/config_cases.h"
#include "xds/xds_module.h"

namespace ugate::xds {
namespace {

class XdsConfigEnv : public testing::Environment {
 public:
  void SetUp() override { modules().add(std::make_unique<XdsModule>(), listenerKinds()); }
};
const auto* const kEnv = testing::AddGlobalTestEnvironment(new XdsConfigEnv);

using test::ErrCase;

TEST(XdsConfig, DefaultsOff) {
  auto c = test::parseOk(R"({})");
  ASSERT_TRUE(c);
  EXPECT_FALSE(xdsConfig(*c).serverEnabled);
  EXPECT_EQ(xdsConfig(*c).serverAddress.str(), "127.0.0.1:15010");
}

TEST(XdsConfig, ServerObjectEnablesOnLoopback) {
  auto c = test::parseOk(R"({"xds": {"server": {}}})");
  ASSERT_TRUE(c);
  EXPECT_TRUE(xdsConfig(*c).serverEnabled);
  EXPECT_EQ(xdsConfig(*c).serverAddress.str(), "127.0.0.1:15010");
  EXPECT_FALSE(xdsConfig(*c).insecure);
}

TEST(XdsConfig, AddressAndExplicitOff) {
  auto c = test::parseOk(R"({"xds": {"server": {"address": "[::1]:9901"}}})");
  ASSERT_TRUE(c);
  EXPECT_EQ(xdsConfig(*c).serverAddress.str(), "[::1]:9901");
  c = test::parseOk(R"({"xds": {"server": {"enabled": false, "address": "0.0.0.0:15010"}}})");
  ASSERT_TRUE(c);
  EXPECT_FALSE(xdsConfig(*c).serverEnabled) << "an off server's address needs no insecure";
}

TEST(XdsConfig, NonLoopbackNeedsInsecure) {
  auto c = test::parseOk(R"({"xds": {"server": {"address": "0.0.0.0:15010", "insecure": true}}})");
  ASSERT_TRUE(c);
  EXPECT_TRUE(xdsConfig(*c).insecure);
  EXPECT_EQ(xdsConfig(*c).serverAddress.str(), "0.0.0.0:15010");
}

TEST(XdsConfig, TlsForServerAndClient) {
  auto c = test::parseOk(R"({"node": {"dataDir": "/tmp/x"}, "xds": {
    "server": {"address": "0.0.0.0:15010", "tls": {}},
    "client": {"address": "127.0.0.1:15011", "tls": {"sni": "cp", "peerIds": ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}}}})");
  ASSERT_TRUE(c);
  const XdsConfig& x = xdsConfig(*c);
  ASSERT_TRUE(x.serverTls);
  EXPECT_TRUE(x.serverTls->requireClientCert);
  EXPECT_EQ(x.serverTls->alpn, std::vector<std::string>{"h2"});
  ASSERT_TRUE(x.client && x.client->tls);
  EXPECT_EQ(x.client->tls->sni, "cp");
  EXPECT_EQ(x.client->tls->peerIds, std::vector<std::string>{std::string(52, 'A')});
  EXPECT_TRUE(c->fromModules.tls);
  ASSERT_EQ(c->fromModules.serverTls.size(), 1u);
  EXPECT_EQ(c->fromModules.serverTls[0].path, "xds.server.tls");
  ASSERT_EQ(c->fromModules.clientTls.size(), 1u);
  EXPECT_EQ(c->fromModules.clientTls[0].path, "xds.client.tls");
}

TEST(XdsConfig, ClientAndItsClusters) {
  // With a client, `cluster:NAME` may name clusters the control plane defines (routes and listeners).
  auto c = test::parseOk(R"({"node": {"name": "gw"},
    "listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:0", "to": "cluster:svc.test"}],
    "xds": {"client": {"address": "127.0.0.1:15010", "insecure": true, "delta": true,
                       "node": {"cluster": "c1", "metadata": {"NAME": "gw"}}, "backoff": {"min": "100ms"}}},
    "routes": [{"match": {"port": 1}, "to": "cluster:web"}]})");
  ASSERT_TRUE(c);
  const auto& k = xdsConfig(*c).client;
  ASSERT_TRUE(k);
  EXPECT_EQ(k->address.str(), "127.0.0.1:15010");
  EXPECT_TRUE(k->delta);
  EXPECT_EQ(k->nodeId, "gw") << "node.name by default";
  EXPECT_EQ(k->nodeCluster, "c1");
  EXPECT_EQ(k->metadata.at("NAME"), "gw");
  EXPECT_EQ(k->backoffMin.count(), 100);
  EXPECT_FALSE(xdsConfig(*c).serverEnabled);
  EXPECT_FALSE(k->messages) << "Message mailboxes only when asked for";
  auto msgs = test::parseOk(R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true,
                                                    "messages": {"topics": ["news", "a_b-9"]}}}})");
  ASSERT_TRUE(msgs);
  EXPECT_TRUE(xdsConfig(*msgs).client->messages);
  EXPECT_EQ(xdsConfig(*msgs).client->messageTopics, (std::vector<std::string>{"news", "a_b-9"}));
  auto own = test::parseOk(R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "messages": true}}})");
  ASSERT_TRUE(own);
  EXPECT_TRUE(xdsConfig(*own).client->messages);
  EXPECT_TRUE(xdsConfig(*own).client->messageTopics.empty());
  auto off = test::parseOk(R"({"xds": {"client": {"enabled": false}}})");
  ASSERT_TRUE(off);
  EXPECT_FALSE(xdsConfig(*off).client);
}

class XdsConfigErrorTest : public testing::TestWithParam<ErrCase> {};

TEST_P(XdsConfigErrorTest, ExactMessage) { test::expectConfigError(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Xds, XdsConfigErrorTest,
    testing::Values(
        ErrCase{"not an object", R"({"xds": []})", "xds: expected an object, got array"},
        ErrCase{"unknown key", R"({"xds": {"agent": {}}})", "xds.agent: unknown key (*"},
        ErrCase{"client without address", R"({"xds": {"client": {"insecure": true}}})",
                "xds.client.address: required: the control plane's host:port"},
        ErrCase{"client needs insecure", R"({"xds": {"client": {"address": "127.0.0.1:15010"}}})",
                "xds.client.tls: required: mutual TLS with the node's identity ({} verifies the server against "
                "tls.trustedIds or the CA; \"peerIds\" pins it), or \"insecure\": true for h2c"},
        ErrCase{"client tls and insecure", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "tls": {}}}})",
                "xds.client.insecure: \"insecure\" and \"tls\" exclude each other"},
        ErrCase{"client peerIds", R"({"xds": {"client": {"address": "127.0.0.1:1", "tls": {"peerIds": ["x"]}}}})",
                "xds.client.tls.peerIds*"},
        ErrCase{"server tls key", R"({"xds": {"server": {"tls": {"alpn": ["h2"]}}}})", "xds.server.tls.alpn: unknown key (*"},
        ErrCase{"client address without port", R"({"xds": {"client": {"address": "istiod", "insecure": true}}})",
                "xds.client.address: 'istiod' is not host:port (*"},
        ErrCase{"client metadata", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "node": {"metadata": {"A": 1}}}}})",
                "xds.client.node.metadata.A: *"},
        ErrCase{"client backoff", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "backoff": {"min": "2s", "max": "1s"}}}})",
                "xds.client.backoff.max: must not be shorter than backoff.min"},
        ErrCase{"unknown cluster without client", R"({"routes": [{"match": {"port": 1}, "to": "cluster:web"}]})",
                "routes[0].to: no cluster named 'web' (the config has no clusters)"},
        ErrCase{"server not an object", R"({"xds": {"server": "127.0.0.1:1"}})",
                "xds.server: expected an object, got string"},
        ErrCase{"server unknown key", R"({"xds": {"server": {"mtls": {}}}})", "xds.server.mtls: unknown key (*"},
        ErrCase{"bad address", R"({"xds": {"server": {"address": "localhost:1"}}})",
                "xds.server.address: 'localhost:1' is not an IP address and port (\"127.0.0.1:15010\", \"[::1]:15010\")"},
        ErrCase{"enabled type", R"({"xds": {"server": {"enabled": 1}}})", "xds.server.enabled: *"},
        ErrCase{"messages type", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "messages": 1}}})",
                "xds.client.messages: expected true, false or {\"topics\": [...]}, got number"},
        ErrCase{"messages topic", R"({"xds": {"client": {"address": "127.0.0.1:1", "insecure": true, "messages": {"topics": ["a/b"]}}}})",
                "xds.client.messages.topics[0]: 'a/b' is not 1-32 URL-safe base64 characters"},
        ErrCase{"insecure type", R"({"xds": {"server": {"insecure": "yes"}}})", "xds.server.insecure: *"},
        ErrCase{"non-loopback", R"({"xds": {"server": {"address": "0.0.0.0:15010"}}})",
                "xds.server.address: '0.0.0.0:15010' is not a loopback address: serving other hosts needs \"tls\" "
                "(mutual TLS with the node's identity) or \"insecure\": true (clients can read every route it "
                "publishes)"}));

}  // namespace
}  // namespace ugate::xds
