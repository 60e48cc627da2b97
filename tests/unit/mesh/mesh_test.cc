// The mesh module's pieces that need no network: the listener kind's config and the node table.
#include <gtest/gtest.h>

#include "core/config.h"
#include "mesh/mesh_worker.h"
#include "mesh/node_table.h"

namespace ugate::mesh {
namespace {

class MeshModuleTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { registerMeshModule(); }
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
  EXPECT_TRUE((*c)->usesMesh());

  auto fixed = parseConfig(R"({"node": {"dataDir": "/d"}, "listeners": [{"name": "m", "kind": "mesh",
      "address": "127.0.0.1:1", "tls": {}}]})", "test");
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().detail, "listeners[0].tls: kind 'mesh' always uses mutual TLS; its settings are fixed");
  auto noIdentity = parseConfig(R"({"listeners": [{"name": "m", "kind": "mesh", "address": "127.0.0.1:1"}]})", "test");
  ASSERT_FALSE(noIdentity);
  EXPECT_EQ(noIdentity.error().detail.rfind("node.dataDir: required", 0), 0u) << noIdentity.error().detail;
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
  NodeTable& t = NodeTable::instance();
  t.clearForTest();
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
  t.clearForTest();
}

}  // namespace
}  // namespace ugate::mesh
