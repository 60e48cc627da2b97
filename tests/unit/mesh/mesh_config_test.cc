// The mesh module's config sections (upstreams, authorize, mesh), which core hands to it
// (Module::parseConfig): every error names its JSON path; routes may name upstreams.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/module.h>

#include "mesh/mesh_config.h"
#include "mesh/mesh_module.h"
#include "test_common/config_cases.h"

namespace ugate::mesh {
namespace {

using std::chrono::milliseconds;

class MeshConfigEnv : public testing::Environment {
 public:
  void SetUp() override { modules().add(std::make_unique<MeshModule>(), listenerKinds()); }
};
const auto* const kEnv = testing::AddGlobalTestEnvironment(new MeshConfigEnv);

using test::ErrCase;
using test::parseErr;
using test::parseOk;

class ConfigErrorTest : public testing::TestWithParam<ErrCase> {};

TEST_P(ConfigErrorTest, ExactMessage) { test::expectConfigError(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Mesh, ConfigErrorTest,
    testing::Values(ErrCase{"upstream without address", R"({"upstreams": [{"name": "x"}]})",
                            "upstreams[0].address: required (the gateway's mesh host:port)"},
                    ErrCase{"upstreams object", R"({"upstreams": {"x": 1}})",
                            "upstreams: expected an array, got object"},
                    ErrCase{"upstream address", R"({"upstreams": [{"address": "gw"}]})",
                            "upstreams[0].address: 'gw' is not host:port"},
                    ErrCase{"upstream id", R"({"upstreams": [{"address": "gw:15008", "id": "nope"}]})",
                            "upstreams[0].id: 'nope' is not a node ID (52 base32 characters, as printed by `ugated id`)"},
                    ErrCase{"duplicate upstream", R"({"node": {"dataDir": "/d"}, "upstreams": [{"address": "a:1"}, {"name": "upstreams[0]", "address": "b:1"}]})",
                            "upstreams[1].name: duplicate upstream name 'upstreams[0]'"},
                    ErrCase{"authorize", R"({"authorize": [1]})", "authorize: expected an object, got array"},
                    ErrCase{"authorize id", R"({"authorize": {"reverseAccept": ["x"]}})",
                            "authorize.reverseAccept[0]: 'x' is not a node ID (52 base32 characters, as printed by `ugated id`)"},
                    ErrCase{"mesh key", R"({"mesh": {"hops": 1}})", "mesh.hops: unknown key*"},
                    ErrCase{"maxHops", R"({"mesh": {"maxHops": 0}})", "mesh.maxHops: 0 out of range [1, 32]"},
                    ErrCase{"reconnect", R"({"mesh": {"reconnectMin": "10s", "reconnectMax": "1s"}})",
                            "mesh.reconnectMax: must be at least mesh.reconnectMin (which must be positive)"},
                    ErrCase{"upstream transport", R"({"node": {"dataDir": "/d"}, "upstreams": [{"address": "gw:15008", "transport": "udp"}]})",
                            "upstreams[0].transport: 'udp': one of h2, quic, auto"},
                    ErrCase{"quicAddress without QUIC", R"({"node": {"dataDir": "/d"}, "upstreams": [{"address": "gw:15008", "quicAddress": "gw:15443"}]})",
                            "upstreams[0].quicAddress: needs transport quic or auto"},
                    ErrCase{"quicAddress", R"({"node": {"dataDir": "/d"}, "upstreams": [{"address": "gw:15008", "transport": "auto", "quicAddress": "gw"}]})",
                            "upstreams[0].quicAddress: 'gw' is not host:port"},
                    ErrCase{"upstreams need identity", R"({"upstreams": [{"address": "gw:15008"}]})",
                            "node.dataDir: required when a listener or route uses TLS*"}));

TEST(ConfigTest, EveryBrokenElementIsReportedOnALineOfItsOwn) {
  // Sections, listeners, routes and upstreams are checked each on its own, up to its first
  // problem: every line is a real error with its path, and nothing is reported twice.
  std::string e = parseErr(R"({
    "workers": -1,
    "log": {"level": "x"},
    "listeners": [
      {"name": "a", "kind": "tcp", "address": "127.0.0.1:99999", "to": "x:1"},
      {"name": "b", "kind": "tcp", "address": "127.0.0.1:7001", "to": "x:1", "backlog": 0},
      {"name": "c", "kind": "tcp", "address": "127.0.0.1:7002", "to": "x:1"}
    ],
    "upstreams": [{"name": "gw", "address": "nope"}],
    "routes": [
      {"match": {"port": 0}, "to": "reject"},
      {"match": {"listener": ["a", "c", "zz"]}, "to": "x:2"},
      {"via": "gw", "to": "x:3"},
      {"to": "x:4"}
    ]
  })");
  EXPECT_EQ(e,
            "workers: -1 out of range [0, 256]\n"
            "log.level: 'x' is not a log level (trace, debug, info, warn, error, critical, off)\n"
            "listeners[0].address: port 99999 out of range\n"
            "listeners[1].backlog: 0 out of range [1, 65535]\n"
            "upstreams[0].address: 'nope' is not host:port\n"
            "routes[0].match.port: 0 out of range [1, 65535]\n"
            "routes[1].match.listener[2]: no listener or upstream named 'zz'\n"
            "node.dataDir: required when a listener or route uses TLS (the node's key and certificate "
            "live there), unless tls.certDir names the certificates (under systemd, "
            "StateDirectory= provides it through $STATE_DIRECTORY)");
  // A route naming a listener that failed to parse is not an error of its own (listeners[0] 'a'
  // above); the same for an upstream (routes[2] via 'gw'). That route does need the node's
  // identity, though: the last line is an error of its own.

  // A config that is not an object at all is one error.
  EXPECT_EQ(parseErr("[]"), "$: expected an object, got array");
  // Later elements are still checked against the earlier ones that parsed.
  std::string dup = parseErr(R"({"listeners": [{"name": "a", "kind": "nope", "address": "127.0.0.1:1"},
                                       {"name": "b", "kind": "tcp", "address": "127.0.0.1:2", "to": "x:1"},
                                       {"name": "b", "kind": "tcp", "address": "127.0.0.1:3", "to": "x:1"}]})");
  ASSERT_NE(dup.find('\n'), std::string::npos) << dup;
  EXPECT_EQ(dup.rfind("listeners[0].kind: 'nope' is not available in this build", 0), 0u) << dup;
  EXPECT_EQ(dup.substr(dup.find('\n') + 1), "listeners[2].name: duplicate listener name 'b'");
}

TEST(ConfigTest, UpstreamTransports) {
  auto c = parseOk(R"({"node": {"dataDir": "/d"},
      "upstreams": [{"name": "a", "address": "gw:15008"},
                    {"name": "b", "address": "gw:15443", "transport": "quic"},
                    {"name": "c", "address": "gw:15008", "transport": "auto", "quicAddress": "gw:15443"}]})");
  ASSERT_NE(c, nullptr);
  const auto& u = meshConfig(*c).upstreams;
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0].transport, MeshTransport::H2);
  EXPECT_EQ(u[1].transport, MeshTransport::Quic);
  EXPECT_EQ(u[1].quicAddress.str(), "gw:15443");  // the address, when not given
  EXPECT_EQ(u[2].transport, MeshTransport::Auto);
  EXPECT_EQ(u[2].quicAddress.str(), "gw:15443");
  EXPECT_EQ(transportName(u[2].transport), "auto");
  // The TLS provider builds a client context for each ALPN a transport dials with.
  auto has = [&](std::string_view alpn) {
    for (const auto& t : meshClientTls(*c, meshConfig(*c))) {
      if (t.tls.alpn == std::vector<std::string>{std::string(alpn)} && t.tls.sni == "gw") return true;
    }
    return false;
  };
  EXPECT_TRUE(has(kMeshAlpn));
  EXPECT_TRUE(has(kMeshReverseAlpn));
  EXPECT_TRUE(has(kMeshQuicAlpn));
  EXPECT_TRUE(has(kMeshQuicReverseAlpn));
  auto h2only = parseOk(R"({"node": {"dataDir": "/d"}, "upstreams": [{"address": "gw:15008"}]})");
  ASSERT_NE(h2only, nullptr);
  for (const auto& t : meshClientTls(*h2only, meshConfig(*h2only))) {
    // Only the optional one for neighbours that announce QUIC: no upstream is dialled over QUIC.
    if (t.tls.alpn == std::vector<std::string>{std::string(kMeshQuicAlpn)}) {
      EXPECT_TRUE(t.optional && t.tls.sni.empty());
    }
    EXPECT_NE(t.tls.alpn, std::vector<std::string>{std::string(kMeshQuicReverseAlpn)});
  }
}

TEST(ConfigTest, EmptyUpstreamsAndAuthorizeAccepted) {
  EXPECT_NE(parseOk(R"({"upstreams": [], "authorize": {}})"), nullptr);
  auto c = parseOk(R"({"upstreams": [], "authorize": {}})");
  ASSERT_NE(c, nullptr);
    EXPECT_FALSE(c->usesTls());
}

TEST(ConfigTest, MeshSectionsAndMeshHosts) {
  const std::string id = "3A3RVJPB6SLNTV5PURJRWVI3EJIYAKCVJZUIIXZXKQHPK4C5GNOA";
  auto c = parseOk(R"({"node": {"name": "n1", "dataDir": "/d", "meshSuffix": "Mesh"},
      "upstreams": [{"name": "gw", "address": "gw.example.net:15008", "id": ")" + id + R"("},
                    {"address": "10.0.0.1:15008"}],
      "authorize": {"reverseAccept": [")" + id + R"("], "reverseAcceptTrustDomain": false},
      "mesh": {"maxHops": 3, "streamWindow": 1048576, "pingInterval": "5s", "reconnectMin": "500ms",
               "reconnectMax": "1m", "idleConnectionTimeout": "30s", "maxStreamsPerConnection": 10},
      "routes": [{"match": {"host": "*.mesh"}, "to": "original", "via": "gw"},
                 {"to": "10.1.1.1:80", "via": "10.0.0.9:15008"}]})");
  ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->usesTls());
  ASSERT_EQ(meshConfig(*c).upstreams.size(), 2u);
  EXPECT_EQ(meshConfig(*c).upstreams[0].name, "gw");
  EXPECT_EQ(meshConfig(*c).upstreams[0].address.str(), "gw.example.net:15008");
  EXPECT_EQ(meshConfig(*c).upstreams[0].id, id);
  EXPECT_EQ(meshConfig(*c).upstreams[1].name, "upstreams[1]");
  EXPECT_TRUE(meshConfig(*c).upstreams[1].id.empty());
  EXPECT_EQ(meshConfig(*c).reverseAccept, std::vector<std::string>{id});
  EXPECT_FALSE(meshConfig(*c).reverseAcceptTrustDomain);
  EXPECT_EQ(meshConfig(*c).maxHops, 3u);
  EXPECT_EQ(meshConfig(*c).streamWindow, 1048576u);
  EXPECT_EQ(meshConfig(*c).pingInterval, milliseconds(5000));
  EXPECT_EQ(meshConfig(*c).maxStreamsPerConnection, 10u);
  EXPECT_EQ(c->routes[0].via, "gw");
  EXPECT_EQ(c->routes[1].via, "10.0.0.9:15008");
  // Client TLS settings the mesh dials with: per upstream h2r + h2, one unpinned h2 for via
  // host:port, and the optional ones for neighbours (verified by trust, ID checked after), over
  // TCP and over QUIC.
  auto tlsList = meshClientTls(*c, meshConfig(*c));
  ASSERT_EQ(tlsList.size(), 7u);
  EXPECT_EQ(c->fromModules.clientTls.size(), 7u);  // what the TLS provider builds contexts for
  EXPECT_EQ(tlsList[0].tls.alpn, std::vector<std::string>{"h2r"});
  EXPECT_EQ(tlsList[0].tls.peerIds, std::vector<std::string>{id});
  EXPECT_EQ(tlsList[0].tls.sni, "gw.example.net");
  EXPECT_TRUE(tlsList[2].tls.sni.empty());  // an IP: no SNI
  EXPECT_TRUE(tlsList[4].tls.peerIds.empty());
  EXPECT_FALSE(tlsList[4].optional);
  EXPECT_TRUE(tlsList[5].tls.peerIds.empty());
  EXPECT_EQ(tlsList[5].tls.alpn, std::vector<std::string>{"h2"});
  EXPECT_TRUE(tlsList[5].optional);  // skipped when the node trusts no one
  EXPECT_EQ(tlsList[6].tls.alpn, std::vector<std::string>{"ugate"});
  EXPECT_TRUE(tlsList[6].optional);

  std::string node;
  EXPECT_TRUE(isMeshHost(*c, "alice.mesh", &node));
  EXPECT_EQ(node, "alice");
  EXPECT_TRUE(isMeshHost(*c, "ALICE.MESH", &node));
  EXPECT_EQ(node, "ALICE");
  EXPECT_FALSE(isMeshHost(*c, "mesh"));
  EXPECT_FALSE(isMeshHost(*c, ".mesh"));
  EXPECT_FALSE(isMeshHost(*c, "a.b.mesh"));  // one label only: a node ID or a name
  EXPECT_FALSE(isMeshHost(*c, "alice.meshy"));
  EXPECT_FALSE(isMeshHost(*c, "alicemesh"));
}

TEST(ConfigTest, TheMeshsSectionsAreKnownKeysOnlyWithTheModule) {
  // Core lists its own keys and each registered module's sections.
  std::string e = parseErr(R"({"bogus": 1})");
  EXPECT_NE(e.find("upstreams, authorize, mesh"), std::string::npos) << e;
  EXPECT_EQ(meshConfig(*parseOk("{}")).upstreams.size(), 0u);  // defaults when absent
}

}  // namespace
}  // namespace ugate::mesh
