// PeerDirectory: each source's set replaced whole, lookups by ID or name, ambiguous names refused.
#include <ugate/peer_directory.h>

#include <gtest/gtest.h>

namespace ugate {
namespace {

DirectPeer peer(std::string id, std::string name, const char* addr = "10.0.0.2:15008") {
  DirectPeer p;
  p.id = std::move(id);
  p.name = std::move(name);
  p.meshTcp.push_back(*SocketAddress::parse(addr));
  return p;
}

TEST(PeerDirectory, FindsByIdCaseInsensitiveAndByName) {
  PeerDirectory d;
  d.publish("local", {peer("abcdef", "Bee")});
  ASSERT_EQ(d.size(), 1u);
  auto byId = d.find("ABCDEF");
  ASSERT_TRUE(byId);
  EXPECT_EQ(byId->id, "ABCDEF");  // stored upper case
  EXPECT_EQ(byId->source, "local");
  EXPECT_EQ(byId->meshTcp.front().str(), "10.0.0.2:15008");
  auto byName = d.find("bee");
  ASSERT_TRUE(byName);
  EXPECT_EQ(byName->id, "ABCDEF");
  EXPECT_FALSE(d.find("nobody"));
}

TEST(PeerDirectory, PublishReplacesTheSourcesWholeSet) {
  PeerDirectory d;
  d.publish("local", {peer("AAA", "a"), peer("BBB", "b")});
  d.publish("other", {peer("CCC", "c")});
  EXPECT_EQ(d.size(), 3u);
  d.publish("local", {peer("BBB", "b")});
  EXPECT_FALSE(d.find("a"));
  EXPECT_TRUE(d.find("b"));
  EXPECT_TRUE(d.find("c"));  // another source's peers stay
  d.publish("local", {});
  EXPECT_EQ(d.size(), 1u);
  auto all = d.list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].source, "other");
}

TEST(PeerDirectory, SkipsPeersWithoutIdOrAddress) {
  PeerDirectory d;
  DirectPeer noAddr = peer("AAA", "a");
  noAddr.meshTcp.clear();
  d.publish("local", {noAddr, peer("", "b")});
  EXPECT_EQ(d.size(), 0u);
}

TEST(PeerDirectory, ANameTwoNodesShareResolvesToNeither) {
  PeerDirectory d;
  d.publish("local", {peer("AAA", "twin"), peer("BBB", "twin")});
  EXPECT_FALSE(d.find("twin"));  // a direct dial must not guess
  EXPECT_TRUE(d.find("AAA"));
  EXPECT_TRUE(d.find("bbb"));
}

}  // namespace
}  // namespace ugate
