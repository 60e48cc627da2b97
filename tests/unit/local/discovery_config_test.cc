// The "discovery" section (Module::parseConfig of the local module): defaults, and every error
// names its JSON path. Also the netlink message walk (link_events.h).
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/module.h>

#include "local/discovery_config.h"
#include "local/discovery_module.h"
#include "local/link_events.h"
#include "test_common/config_cases.h"

namespace ugate::local {
namespace {

class DiscoveryConfigEnv : public testing::Environment {
 public:
  void SetUp() override { modules().add(std::make_unique<DiscoveryModule>(), listenerKinds()); }
};
const auto* const kEnv = testing::AddGlobalTestEnvironment(new DiscoveryConfigEnv);

using test::ErrCase;

TEST(DiscoveryConfig, DefaultsOff) {
  auto c = test::parseOk(R"({"node": {"name": "Gw1"}})");
  ASSERT_TRUE(c);
  const DiscoveryConfig& d = discoveryConfig(*c);
  EXPECT_FALSE(d.enabled);
  EXPECT_FALSE(c->fromModules.tls);
}

TEST(DiscoveryConfig, EnabledDefaults) {
  // (The default tcpPort, the first `mesh` listener's port, is checked by discovery_test.sh: the
  // mesh kind is not linked here.)
  auto c = test::parseOk(R"({"node": {"name": "Gw1", "dataDir": "/tmp/x"}, "discovery": {"enabled": true}})");
  ASSERT_TRUE(c);
  const DiscoveryConfig& d = discoveryConfig(*c);
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.group4.str(), "224.0.0.250");
  EXPECT_EQ(d.group6.str(), "ff02::5227");
  EXPECT_TRUE(d.ipv4 && d.ipv6);
  EXPECT_EQ(d.port, 5227);
  EXPECT_EQ(d.interval, Duration(120'000));
  EXPECT_EQ(d.expire, Duration(360'000));
  EXPECT_EQ(d.name, "gw1");      // node.name, lower-cased
  EXPECT_EQ(d.tcpPort, 0);  // no mesh listener
  EXPECT_EQ(d.quicPort, 0);
  EXPECT_TRUE(d.interfaces.empty());
  EXPECT_TRUE(c->fromModules.tls);  // the node's key signs the announcements
}

TEST(DiscoveryConfig, Explicit) {
  auto c = test::parseOk(R"({"node": {"dataDir": "/tmp/x"}, "discovery": {"enabled": true, "interfaces": ["eth0", "wlan0"],
    "groups": ["ff02::1234"], "port": 6000, "interval": "2s", "name": "box-7", "tcpPort": 0, "quicPort": 443,
    "announceAddresses": false, "clockSkew": "30s", "maxNeighbours": 8, "ratePerSecond": 5, "rateBurst": 20, "verifyPerSecond": 50}})");
  ASSERT_TRUE(c);
  const DiscoveryConfig& d = discoveryConfig(*c);
  EXPECT_EQ(d.interfaces, (std::vector<std::string>{"eth0", "wlan0"}));
  EXPECT_FALSE(d.ipv4);
  EXPECT_TRUE(d.ipv6);
  EXPECT_EQ(d.group6.str(), "ff02::1234");
  EXPECT_EQ(d.port, 6000);
  EXPECT_EQ(d.interval, Duration(2000));
  EXPECT_EQ(d.expire, Duration(6000));
  EXPECT_EQ(d.name, "box-7");
  EXPECT_EQ(d.quicPort, 443);
  EXPECT_FALSE(d.announceAddresses);
  EXPECT_EQ(d.clockSkew, Duration(30'000));
  EXPECT_EQ(d.maxNeighbours, 8u);
  EXPECT_EQ(d.ratePerSecond, 5);
  EXPECT_EQ(d.rateBurst, 20);
  EXPECT_EQ(d.verifyPerSecond, 50);
}

class DiscoveryConfigErrorTest : public testing::TestWithParam<ErrCase> {};

TEST_P(DiscoveryConfigErrorTest, ExactMessage) { test::expectConfigError(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Discovery, DiscoveryConfigErrorTest,
    testing::Values(
        ErrCase{"not an object", R"({"discovery": true})", "discovery: expected an object, got boolean"},
        ErrCase{"unknown key", R"({"discovery": {"enable": true}})", "discovery.enable: unknown key (*"},
        ErrCase{"group not multicast", R"({"discovery": {"groups": ["10.0.0.1"]}})",
                "discovery.groups[0]: '10.0.0.1' is not an IPv4 multicast address (224.0.0.0/4)"},
        ErrCase{"group v6 not multicast", R"({"discovery": {"groups": ["fe80::1"]}})",
                "discovery.groups[0]: 'fe80::1' is not an IPv6 multicast address (ff00::/8)"},
        ErrCase{"group not ip", R"({"discovery": {"groups": ["x"]}})", "discovery.groups[0]: 'x' is not an IP address"},
        ErrCase{"two v4 groups", R"({"discovery": {"groups": ["224.0.0.250", "224.0.0.251"]}})",
                "discovery.groups[1]: a second IPv4 group"},
        ErrCase{"no group", R"({"discovery": {"groups": []}})",
                "discovery.groups: expected one IPv4 and/or one IPv6 multicast group"},
        ErrCase{"port", R"({"discovery": {"port": 0}})", "discovery.port: *"},
        ErrCase{"interval", R"({"discovery": {"interval": "100ms"}})", "discovery.interval: must be at least 200ms"},
        ErrCase{"expire", R"({"discovery": {"interval": "10s", "expire": "5s"}})",
                "discovery.expire: must be longer than discovery.interval"},
        ErrCase{"name", R"({"discovery": {"name": "Bad_Name"}})",
                "discovery.name: 'Bad_Name' is not a DNS label: 1-63 of [a-z0-9-], no '-' at either end"},
        ErrCase{"node name", R"({"node": {"name": "a.b", "dataDir": "/tmp/x"}, "discovery": {"enabled": true}})",
                "discovery.name: not set, and the node name 'a.b' is not a DNS label (1-63 of [a-z0-9-]): set discovery.name"},
        ErrCase{"interface", R"({"discovery": {"interfaces": ["a/b"]}})",
                "discovery.interfaces[0]: 'a/b' is not an interface name"}));

// appendMsg adds one netlink message of type t with body b (padded) to d.
template <class Body>
void appendMsg(std::vector<uint8_t>& d, uint16_t t, const Body& b) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(sizeof(Body)));
  h.nlmsg_type = t;
  const size_t at = d.size();
  d.resize(at + NLMSG_SPACE(sizeof(Body)));
  std::memcpy(&d[at], &h, sizeof(h));
  std::memcpy(&d[at + NLMSG_HDRLEN], &b, sizeof(b));
}

TEST(LinkEvents, AddressAndLinkMessages) {
  std::vector<uint8_t> d;
  ifaddrmsg a{};
  a.ifa_index = 7;
  appendMsg(d, RTM_NEWADDR, a);
  ifinfomsg i{};
  i.ifi_index = 3;
  appendMsg(d, RTM_DELLINK, i);
  rtmsg r{};
  appendMsg(d, RTM_NEWROUTE, r);  // routes are not interface changes
  a.ifa_index = 9;
  appendMsg(d, RTM_DELADDR, a);
  std::set<int> changed;
  EXPECT_EQ(linkEvents(d, changed), 3u);
  EXPECT_EQ(changed, (std::set<int>{3, 7, 9}));
}

TEST(LinkEvents, TruncatedStops) {
  std::vector<uint8_t> d;
  ifaddrmsg a{};
  a.ifa_index = 7;
  appendMsg(d, RTM_NEWADDR, a);
  std::set<int> changed;
  std::vector<uint8_t> cut(d.begin(), d.end() - 4);  // the header promises more than is there
  EXPECT_EQ(linkEvents(cut, changed), 0u);
  std::vector<uint8_t> tiny(d.begin(), d.begin() + 10);
  EXPECT_EQ(linkEvents(tiny, changed), 0u);
  EXPECT_TRUE(changed.empty());
}

}  // namespace
}  // namespace ugate::local
