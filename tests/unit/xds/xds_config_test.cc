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

class XdsConfigErrorTest : public testing::TestWithParam<ErrCase> {};

TEST_P(XdsConfigErrorTest, ExactMessage) { test::expectConfigError(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Xds, XdsConfigErrorTest,
    testing::Values(
        ErrCase{"not an object", R"({"xds": []})", "xds: expected an object, got array"},
        ErrCase{"unknown key", R"({"xds": {"client": {}}})", "xds.client: unknown key (*"},
        ErrCase{"server not an object", R"({"xds": {"server": "127.0.0.1:1"}})",
                "xds.server: expected an object, got string"},
        ErrCase{"server unknown key", R"({"xds": {"server": {"tls": {}}}})", "xds.server.tls: unknown key (*"},
        ErrCase{"bad address", R"({"xds": {"server": {"address": "localhost:1"}}})",
                "xds.server.address: 'localhost:1' is not an IP address and port (\"127.0.0.1:15010\", \"[::1]:15010\")"},
        ErrCase{"enabled type", R"({"xds": {"server": {"enabled": 1}}})", "xds.server.enabled: *"},
        ErrCase{"insecure type", R"({"xds": {"server": {"insecure": "yes"}}})", "xds.server.insecure: *"},
        ErrCase{"non-loopback", R"({"xds": {"server": {"address": "0.0.0.0:15010"}}})",
                "xds.server.address: '0.0.0.0:15010' is not a loopback address: the ADS server has no TLS yet, so "
                "serving other hosts needs \"insecure\": true (clients can read every route it publishes)"}));

}  // namespace
}  // namespace ugate::xds
