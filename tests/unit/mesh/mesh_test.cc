// The mesh module's pieces that need no network: the listener kind's config, the node table, this
// node's upstream association status and the /nodes document.
#include <gtest/gtest.h>

#include <ugate/peer_directory.h>

#include <nlohmann/json.hpp>

#include <ugate/config.h>
#include "mesh/mesh_config.h"
#include "mesh/mesh_module.h"
#include "mesh/node_table.h"

namespace ugate::mesh {
namespace {

class MeshModuleTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { modules().add(std::make_unique<MeshModule>(), listenerKinds()); }
};

TEST_F(MeshModuleTest, MeshListenerHasFixedMutualTls) {
  auto c = parseConfig(R"({"node": {"dataDir": "/d"}, "listeners": [{"name": "m", "kind": "mesh",
      "address": "127.0.0.1:15008"}]})", "test");
  ASSERT_TRUE(c) << c.error().detail;
  const ListenerConfig& l = (*c)->listeners[0];
  ASSERT_TRUE(l.tls);
  EXPECT_TRUE(l.tls->requireClientCert);
  EXPECT_EQ(l.tls->alpn, (std::vector<std::string>{"h2", "h2r"}));
  EXPECT_TRUE(l.spec->acceptConnection);
  EXPECT_TRUE((*c)->usesTls());  // a mesh listener needs the node's credentials

  auto fixed = parseConfig(R"({"node": {"dataDir": "/d"}, "listeners": [{"name": "m", "kind": "mesh",
      "address": "127.0.0.1:1", "tls": {}}]})", "test");
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().detail, "listeners[0].tls: kind 'mesh' always uses mutual TLS; its settings are fixed");
  auto noIdentity = parseConfig(R"({"listeners": [{"name": "m", "kind": "mesh", "address": "127.0.0.1:1"}]})", "test");
  ASSERT_FALSE(noIdentity);
  EXPECT_EQ(noIdentity.error().detail.rfind("node.dataDir: required", 0), 0u) << noIdentity.error().detail;
}

TEST_F(MeshModuleTest, TrustedGatewaysAreNodeIdsOrSpiffeIds) {
  const std::string id = std::string(52, 'a');
  auto c = parseConfig(R"({"mesh": {"trustedGateways": [")" + id + R"(", "spiffe://td/ns/gw/sa/gw2"]}})", "test");
  ASSERT_TRUE(c) << c.error().detail;
  EXPECT_EQ(meshConfig(**c).trustedGateways, (std::vector<std::string>{std::string(52, 'A'), "spiffe://td/ns/gw/sa/gw2"}));
  auto one = parseConfig(R"({"mesh": {"trustedGateways": "spiffe://td/x"}})", "test");
  ASSERT_TRUE(one) << one.error().detail;
  EXPECT_EQ(meshConfig(**one).trustedGateways.size(), 1u);
  EXPECT_TRUE(meshConfig(*parseConfig(R"({})", "test").value()).trustedGateways.empty());  // nobody by default

  auto bad = parseConfig(R"({"mesh": {"trustedGateways": ["spiffe://td/x", "gw2"]}})", "test");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().detail,
            "mesh.trustedGateways[1]: 'gw2' is neither a node ID (as printed by `ugated id`) nor a spiffe:// ID");
  EXPECT_FALSE(parseConfig(R"({"mesh": {"trustedGateways": ["spiffe://"]}})", "test"));
}

NodeEntry entry(const std::string& id, const std::string& name, uint64_t handle) {
  NodeEntry e;
  e.id = id;
  e.name = name;
  e.handle = handle;
  e.worker = 0;
  return e;
}

TEST(NodeTableTest, FindByIdOrNameReplaceAndNameConflicts) {
  NodeTable t;
  const std::string a = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const std::string b = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
  auto r = t.add(entry(a, "alice", 1));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 0u);
  ASSERT_TRUE(t.find("alice"));
  EXPECT_EQ(t.find("ALICE")->id, a);                   // names are case-insensitive
  EXPECT_EQ(t.find(std::string(52, 'a'))->name, "alice");  // so are node IDs

  // Another node may not take the name.
  auto clash = t.add(entry(b, "Alice", 2));
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().detail, "name 'Alice' is already held by node " + a);
  EXPECT_FALSE(t.find(b));

  // The same node registering again replaces its older association.
  auto again = t.add(entry(a, "alice", 3));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1u);
  EXPECT_EQ(t.find("alice")->handle, 3u);
  // The old association going away does not remove the new one.
  t.remove(a, 1);
  ASSERT_TRUE(t.find(a));
  t.remove(a, 3);
  EXPECT_FALSE(t.find(a));
  EXPECT_FALSE(t.find("alice"));
  // Now the name is free.
  EXPECT_TRUE(t.add(entry(b, "alice", 4)));
  EXPECT_EQ(t.list().size(), 1u);
}

// Lookups read a published snapshot: one taken before a change still sees the table as it was.
TEST(NodeTableTest, ListIsASnapshotAndWritersDoNotDisturbIt) {
  NodeTable t;
  ASSERT_TRUE(t.add(entry(std::string(52, 'A'), "alice", t.nextHandle())));
  auto before = t.list();
  ASSERT_TRUE(t.add(entry(std::string(52, 'B'), "bob", t.nextHandle())));
  EXPECT_EQ(before.size(), 1u);
  EXPECT_EQ(t.list().size(), 2u);
  EXPECT_NE(t.find("alice")->handle, t.find("bob")->handle);  // handles are unique
}

TEST(UpstreamTableTest, SetReplaceRemoveAndNodesDocument) {
  MeshShared shared;
  UpstreamTable& t = shared.upstreams;
  UpstreamStatus s;
  s.name = "gw1";
  s.address = "10.0.0.1:15008";
  s.gatewayId = std::string(52, 'G');
  s.state = UpstreamStatus::State::Connected;
  s.sinceUnixMs = 1000;
  t.set(s);
  UpstreamStatus b = s;
  b.name = "backup";
  b.state = UpstreamStatus::State::BackingOff;
  b.attempts = 3;
  b.nextRetryUnixMs = 5000;
  b.lastError = "connect_refused: mesh connection to 10.0.0.2:15008: Connection \"refused\"";
  t.set(b);
  ASSERT_EQ(t.list().size(), 2u);
  EXPECT_EQ(t.list()[0].name, "backup");  // sorted by name

  auto doc = nlohmann::json::parse(shared.nodesJson());
  EXPECT_TRUE(doc["nodes"].empty());
  ASSERT_EQ(doc["upstreams"].size(), 2u);
  const auto& up = doc["upstreams"][1];
  EXPECT_EQ(up["name"], "gw1");
  EXPECT_EQ(up["address"], "10.0.0.1:15008");
  EXPECT_EQ(up["gateway_id"], std::string(52, 'G'));
  EXPECT_EQ(up["state"], "connected");
  EXPECT_EQ(up["since_unix_ms"], 1000);
  EXPECT_EQ(up["attempts"], 0);
  EXPECT_FALSE(up.contains("next_retry_unix_ms"));  // only while backing off
  EXPECT_FALSE(up.contains("last_error"));
  const auto& off = doc["upstreams"][0];
  EXPECT_EQ(off["state"], "backing-off");
  EXPECT_EQ(off["attempts"], 3);
  EXPECT_EQ(off["next_retry_unix_ms"], 5000);
  EXPECT_EQ(off["last_error"], b.lastError);  // escaped, and back

  // A newer state replaces the older one; removed upstreams disappear.
  s.state = UpstreamStatus::State::BackingOff;
  t.set(s);
  EXPECT_EQ(t.list()[1].state, UpstreamStatus::State::BackingOff);
  t.remove("backup", 0);
  ASSERT_EQ(t.list().size(), 1u);
  EXPECT_EQ(t.list()[0].name, "gw1");

  // A reload moved gw1 to worker 1, which published first: worker 0's late removal is ignored.
  s.owner = 1;
  s.state = UpstreamStatus::State::Connected;
  t.set(s);
  t.remove("gw1", 0);
  ASSERT_EQ(t.list().size(), 1u);
  EXPECT_EQ(t.list()[0].owner, 1);
  EXPECT_EQ(t.list()[0].state, UpstreamStatus::State::Connected);

  // Registered nodes are listed beside them.
  NodeEntry n = entry(std::string(52, 'A'), "alice", 7);
  n.spiffe = "spiffe://td/ns/default/sa/alice";
  ASSERT_TRUE(shared.nodes.add(n));
  doc = nlohmann::json::parse(shared.nodesJson());
  ASSERT_EQ(doc["nodes"].size(), 1u);
  EXPECT_EQ(doc["nodes"][0]["name"], "alice");
  EXPECT_EQ(doc["nodes"][0]["spiffe"], "spiffe://td/ns/default/sa/alice");
  t.remove("gw1", 1);
  shared.nodes.remove(n.id, 7);
  EXPECT_EQ(shared.nodesJson(), "{\"nodes\": [],\n\"neighbours\": [],\n\"upstreams\": []}\n");
  // Neighbours a discovery module published (ugate/peer_directory.h) are listed with their source.
  DirectPeer d;
  d.id = "bbbb";
  d.name = "bee";
  d.interface = "eth0";
  d.meshTcp = {*SocketAddress::parse("10.0.0.2:15008")};
  d.lastSeenUnixMs = 1234;
  peerDirectory().publish("local", {d});
  doc = nlohmann::json::parse(shared.nodesJson());
  peerDirectory().publish("local", {});
  ASSERT_EQ(doc["neighbours"].size(), 1u);
  EXPECT_EQ(doc["neighbours"][0]["id"], "BBBB");
  EXPECT_EQ(doc["neighbours"][0]["name"], "bee");
  EXPECT_EQ(doc["neighbours"][0]["source"], "local");
  EXPECT_EQ(doc["neighbours"][0]["mesh_tcp"], nlohmann::json::array({"10.0.0.2:15008"}));
  EXPECT_EQ(doc["neighbours"][0]["mesh_quic"], nlohmann::json::array());
  EXPECT_EQ(doc["neighbours"][0]["last_seen_unix_ms"], 1234);
}

}  // namespace
}  // namespace ugate::mesh
