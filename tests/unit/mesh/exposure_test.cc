// mesh.expose: parsing (every error names its path; the admin port can never be exposed) and the
// exposure decision (default deny, allow by node ID, SPIFFE ID or "*", proxy listeners only with
// allowProxy).
#include <gtest/gtest.h>

#include <ugate/config.h>
#include "mesh/exposure.h"
#include "mesh/mesh_module.h"

namespace ugate::mesh {
namespace {

const std::string kIdA(52, 'A');
const std::string kIdB(52, 'B');

class ExposureTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    modules().add(std::make_unique<MeshModule>(), listenerKinds());
    // A stand-in for socks5/http-connect (their modules are not linked here): a kind whose
    // clients name their destination.
    ListenerKindSpec proxy;
    proxy.name = "test-proxy";
    proxy.dialsRequested = true;
    listenerKinds().add(std::move(proxy));
  }
  static ConfigPtr parse(const std::string& mesh, const std::string& extra = "") {
    auto c = parseConfig(R"({"node": {"dataDir": "/d"}, "admin": {"address": "127.0.0.1:15000"},
        "listeners": [{"name": "m", "kind": "mesh", "address": "0.0.0.0:15008"},
                      {"name": "px", "kind": "test-proxy", "address": "127.0.0.1:1080"},
                      {"name": "far", "kind": "test-proxy", "address": "10.0.0.1:1081"}],
        "mesh": )" + mesh + extra + "}",
                         "test");
    EXPECT_TRUE(c) << c.error().detail;
    return c ? *c : nullptr;
  }
  static std::string error(const std::string& mesh) {
    auto c = parseConfig(R"({"admin": {"address": "127.0.0.1:15000"}, "mesh": )" + mesh + "}", "test");
    return c ? std::string("parsed") : c.error().detail;
  }
  static PeerIdentity peer(const std::string& id, const std::string& spiffe = "") {
    PeerIdentity p;
    p.nodeId = id;
    p.spiffe = spiffe;
    return p;
  }
};

TEST_F(ExposureTest, NothingIsExposedByDefault) {
  ConfigPtr c = parse("{}");
  ASSERT_TRUE(c);
  EXPECT_TRUE(meshConfig(*c).expose.empty());
  PeerIdentity a = peer(kIdA);
  for (uint16_t port : {1, 22, 8080, 15008, 65535}) {
    ExposureVerdict v = checkExposure(*c, port, &a);
    EXPECT_FALSE(v.allowed) << port;
    EXPECT_EQ(v.why, "port " + std::to_string(port) + " is not exposed (mesh.expose)");
  }
}

TEST_F(ExposureTest, ParsesPortsRangesAndPeers) {
  ConfigPtr c = parse(R"({"expose": [{"port": 8080, "allow": [")" + std::string(52, 'a') +
                      R"("]}, {"port": ["9000-9010", 7000], "allow": "spiffe://td/ns/x/sa/y"},
                        {"port": "3128", "allow": ["*"], "allowProxy": true}]})");
  ASSERT_TRUE(c);
  ASSERT_EQ(meshConfig(*c).expose.size(), 3u);
  EXPECT_EQ(meshConfig(*c).expose[0].allow, std::vector<std::string>{kIdA});  // normalised to upper case
  EXPECT_EQ(meshConfig(*c).expose[1].ports.size(), 2u);
  EXPECT_EQ(meshConfig(*c).expose[1].ports[0].lo, 9000);
  EXPECT_EQ(meshConfig(*c).expose[1].ports[0].hi, 9010);
  EXPECT_FALSE(meshConfig(*c).expose[1].allowProxy);
  EXPECT_TRUE(meshConfig(*c).expose[2].allowProxy);
}

TEST_F(ExposureTest, ErrorsNameThePath) {
  EXPECT_EQ(error(R"({"expose": {"port": 80}})"),
            "mesh.expose: expected an array of {\"port\", \"allow\"} objects, got object");
  EXPECT_EQ(error(R"({"expose": [{"allow": "*"}]})"),
            "mesh.expose[0].port: required (a port, \"lo-hi\" or a list of them)");
  EXPECT_EQ(error(R"({"expose": [{"port": 80}]})"),
            "mesh.expose[0].allow: required: the node IDs or spiffe:// IDs that may reach the port, or \"*\" "
            "for any authenticated peer");
  EXPECT_EQ(error(R"({"expose": [{"port": 80, "allow": []}]})"),
            "mesh.expose[0].allow: must name at least one peer (or \"*\")");
  EXPECT_EQ(error(R"({"expose": [{"port": 80, "allow": "*"}, {"port": 81, "allow": ["*", "alice"]}]})"),
            "mesh.expose[1].allow[1]: 'alice' is neither a node ID (as printed by `ugated id`) nor a spiffe:// ID "
            "nor \"*\"");
  EXPECT_EQ(error(R"({"expose": [{"port": "90-80", "allow": "*"}]})"),
            "mesh.expose[0].port: '90-80' is not a port or range lo-hi");
  EXPECT_EQ(error(R"({"expose": [{"port": 80, "allow": "*", "proxy": true}]})").rfind("mesh.expose[0].proxy: ", 0), 0u);
  EXPECT_EQ(error(R"({"expose": [{"port": 80, "allow": "*", "allowProxy": "yes"}]})").rfind(
                "mesh.expose[0].allowProxy: ", 0),
            0u);
}

TEST_F(ExposureTest, TheAdminPortCanNeverBeExposed) {
  EXPECT_EQ(error(R"({"expose": [{"port": 15000, "allow": "*"}]})"),
            "mesh.expose[0].port: covers the admin port 15000 (admin.address), which can never be exposed: it has "
            "no authentication");
  EXPECT_EQ(error(R"({"expose": [{"port": 80, "allow": "*"}, {"port": ["1-1024", "10000-20000"], "allow": "*"}]})"),
            "mesh.expose[1].port: covers the admin port 15000 (admin.address), which can never be exposed: it has "
            "no authentication");
  // With the admin endpoint off, the port is an ordinary one.
  auto off = parseConfig(R"({"admin": {"enabled": false}, "mesh": {"expose": [{"port": 15000, "allow": "*"}]}})",
                         "test");
  EXPECT_TRUE(off) << off.error().detail;
}

TEST_F(ExposureTest, AllowByNodeIdSpiffeIdOrAnyAuthenticatedPeer) {
  ConfigPtr c = parse(R"({"expose": [{"port": 8080, "allow": [")" + kIdA + R"("]},
                                     {"port": "9000-9010", "allow": "spiffe://td/ns/x/sa/y"},
                                     {"port": 7000, "allow": "*"}]})");
  ASSERT_TRUE(c);
  PeerIdentity a = peer(kIdA);
  PeerIdentity lowerA = peer(std::string(52, 'a'));
  PeerIdentity b = peer(kIdB, "spiffe://td/ns/x/sa/y");
  PeerIdentity other = peer(kIdB, "spiffe://td/ns/x/sa/z");
  EXPECT_TRUE(checkExposure(*c, 8080, &a).allowed);
  EXPECT_TRUE(checkExposure(*c, 8080, &lowerA).allowed);
  ExposureVerdict v = checkExposure(*c, 8080, &b);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.why, "port 8080 is not exposed to spiffe://td/ns/x/sa/y (mesh.expose allow)");
  EXPECT_TRUE(checkExposure(*c, 9000, &b).allowed);
  EXPECT_TRUE(checkExposure(*c, 9010, &b).allowed);
  EXPECT_FALSE(checkExposure(*c, 9011, &b).allowed);
  EXPECT_FALSE(checkExposure(*c, 9005, &other).allowed);
  EXPECT_FALSE(checkExposure(*c, 9005, &a).allowed);  // a node ID does not match a SPIFFE entry
  EXPECT_TRUE(checkExposure(*c, 7000, &a).allowed);
  EXPECT_TRUE(checkExposure(*c, 7000, &other).allowed);
  // "*" means any *authenticated* peer.
  PeerIdentity anonymous;
  EXPECT_FALSE(checkExposure(*c, 7000, &anonymous).allowed);
  EXPECT_EQ(checkExposure(*c, 7000, nullptr).why, "port 7000: the stream has no authenticated identity");
}

TEST_F(ExposureTest, AdminPortRefusedEvenIfTheConfigSlippedIt) {
  ConfigPtr c = parse("{}");
  ASSERT_TRUE(c);
  Config copy = *c;
  auto slipped = std::make_shared<MeshConfig>(meshConfig(*c));
  slipped->expose.push_back(MeshExpose{{{1, 65535}}, {"*"}, true});
  copy.modules["mesh"] = slipped;
  PeerIdentity a = peer(kIdA);
  ExposureVerdict v = checkExposure(copy, 15000, &a);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.why, "port 15000 is the admin port, which is never exposed to the mesh");
  EXPECT_TRUE(checkExposure(copy, 15001, &a).allowed);
}

TEST_F(ExposureTest, ProxyListenersNeedAllowProxy) {
  ConfigPtr c = parse(R"({"expose": [{"port": "1000-2000", "allow": "*"}]})");
  ASSERT_TRUE(c);
  PeerIdentity a = peer(kIdA);
  ExposureVerdict v = checkExposure(*c, 1080, &a);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.why, "port 1080 is the test-proxy listener 'px', a proxy: its mesh.expose entry needs "
                   "\"allowProxy\": true");
  EXPECT_TRUE(checkExposure(*c, 1081, &a).allowed);  // 'far' listens on 10.0.0.1, not on loopback
  EXPECT_TRUE(checkExposure(*c, 1079, &a).allowed);

  ConfigPtr p = parse(R"({"expose": [{"port": "1000-2000", "allow": "*"},
                                     {"port": 1080, "allow": [")" + kIdA + R"("], "allowProxy": true}]})");
  ASSERT_TRUE(p);
  EXPECT_TRUE(checkExposure(*p, 1080, &a).allowed);
  PeerIdentity b = peer(kIdB);
  EXPECT_FALSE(checkExposure(*p, 1080, &b).allowed);
}

TEST_F(ExposureTest, LoopbackHosts) {
  for (const char* h : {"localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1"}) EXPECT_TRUE(isLoopbackHost(h)) << h;
  for (const char* h : {"10.0.0.1", "localhost.example", "a.mesh", "::", "0.0.0.0"}) EXPECT_FALSE(isLoopbackHost(h)) << h;
}

TEST_F(ExposureTest, RoutesMayNameAnUpstreamForStreamsOverItsAssociation) {
  auto c = parseConfig(R"({"node": {"dataDir": "/d"},
      "upstreams": [{"name": "gw", "address": "10.0.0.1:15008"}],
      "listeners": [{"name": "m", "kind": "mesh", "address": "0.0.0.0:15008"}],
      "routes": [{"match": {"listener": "gw", "port": 8080}, "to": "reject"},
                 {"match": {"listener": ["upstream:gw", "m"]}, "to": "reject"}]})",
                       "test");
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ((*c)->routes[0].match.listeners, std::vector<std::string>{"upstream:gw"});
  EXPECT_EQ((*c)->routes[1].match.listeners, (std::vector<std::string>{"upstream:gw", "m"}));
  auto bad = parseConfig(R"({"routes": [{"match": {"listener": "gw"}, "to": "reject"}]})", "test");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().detail, "routes[0].match.listener: no listener or upstream named 'gw'");
  auto clash = parseConfig(R"({"node": {"dataDir": "/d"},
      "upstreams": [{"name": "m", "address": "10.0.0.1:15008"}],
      "listeners": [{"name": "m", "kind": "mesh", "address": "0.0.0.0:15008"}]})",
                           "test");
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().detail,
            "upstreams[0].name: 'm' is also a listener's name: routes' match.listener names either");
}

}  // namespace
}  // namespace ugate::mesh
