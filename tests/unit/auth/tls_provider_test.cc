// makeTlsProvider and CredentialSource: contexts per distinct setting, errors with config paths,
// and change detection on the credential files.
#include "auth/tls_provider.h"

#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "auth/mesh_ca.h"
#include "auth_test_util.h"

namespace ugate::auth {
namespace {

ConfigPtr cfgOf(const std::string& json) {
  auto c = parseConfig(json, "test");
  EXPECT_TRUE(c) << (c ? "" : c.error().detail);
  return c ? *c : nullptr;
}

NodeCredentials selfSigned(const std::string& name) { return test::selfSignedCredentials(name); }

class TmpDir {
 public:
  TmpDir() {
    char tmpl[] = "/tmp/ugate-tlsprov.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TmpDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(TlsProviderTest, MutualListenerNeedsSomethingToTrust) {
  auto cfg = cfgOf(R"({"tls": {"certDir": "/unused"}, "listeners": [{"name": "in", "kind": "tcp",
      "address": "127.0.0.1:1", "to": "x:1", "tls": {}}]})");
  auto p = makeTlsProvider(*cfg, selfSigned("n"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().detail.rfind("listeners[0].tls: mutual TLS but nothing to trust", 0), 0u) << p.error().detail;

  // Server-only TLS (no client certificates) needs no trust; pinned IDs are trust.
  auto serverOnly = cfgOf(R"({"tls": {"certDir": "/unused"}, "listeners": [{"name": "in", "kind": "tcp",
      "address": "127.0.0.1:1", "to": "x:1", "tls": {"requireClientCert": false}}]})");
  EXPECT_TRUE(makeTlsProvider(*serverOnly, selfSigned("n")));
  NodeCredentials peer = selfSigned("peer");
  auto pinned = cfgOf(R"({"tls": {"certDir": "/unused", "trustedIds": [")" + peer.nodeId() +
                      R"("]}, "listeners": [{"name": "in", "kind": "tcp", "address": "127.0.0.1:1",
                      "to": "x:1", "tls": {}}]})");
  EXPECT_TRUE(makeTlsProvider(*pinned, selfSigned("n")));
}

TEST(TlsProviderTest, UpstreamNeedsAWayToVerifyTheServer) {
  auto cfg = cfgOf(R"({"tls": {"certDir": "/unused"}, "routes": [{"to": "x:1", "upstreamTls": {}}]})");
  auto p = makeTlsProvider(*cfg, selfSigned("n"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().detail.rfind("routes[0].upstreamTls: cannot verify the server", 0), 0u) << p.error().detail;
  NodeCredentials gw = selfSigned("gw");
  auto withPin = cfgOf(R"({"tls": {"certDir": "/unused"}, "routes": [{"to": "x:1",
      "upstreamTls": {"peerIds": [")" + gw.nodeId() + R"("]}}]})");
  auto ok = makeTlsProvider(*withPin, selfSigned("n"));
  ASSERT_TRUE(ok) << ok.error().detail;
  EXPECT_EQ((*ok)->nodeId().size(), 52u);
}

TEST(TlsProviderTest, CredentialSourceCreatesOnceAndSeesFileChanges) {
  TmpDir dir;
  std::string data = dir.path() + "/node";
  auto cfg = cfgOf(R"({"node": {"name": "n1", "dataDir": ")" + data + R"("},
      "tls": {"trustedIds": []}, "listeners": [{"name": "in", "kind": "tcp", "address": "127.0.0.1:1",
      "to": "x:1", "tls": {"requireClientCert": false}}]})");
  CredentialSource src(*cfg);
  auto first = src.load();
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_TRUE(first->created);
  EXPECT_FALSE(src.changed());
  auto again = src.load();
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->nodeId(), first->nodeId());
  EXPECT_FALSE(src.changed());

  // A CA-issued identity dropped into the directory (Istio layout) takes over.
  std::string caDir = dir.path() + "/ca";
  CaInitOptions caOpts;
  caOpts.dir = caDir;
  caOpts.trustDomain = "mesh.test";
  auto ca = initMeshCa(caOpts);
  ASSERT_TRUE(ca);
  IssueOptions io;
  io.name = "n1";
  auto issued = issueNodeCredentials(*ca, io);
  ASSERT_TRUE(issued) << issued.error().detail;
  ASSERT_TRUE(saveIstioDir(data, *issued));
  EXPECT_TRUE(src.changed());
  // The periodic check waits until the files stop changing: the first look after a change says
  // "not yet", a second with the same files says "reload"; a further change in between restarts it.
  EXPECT_FALSE(src.changedAndSettled());
  {
    std::ofstream touch(data + "/root-cert.pem", std::ios::app);
    touch << "\n";
  }
  EXPECT_FALSE(src.changedAndSettled());
  EXPECT_TRUE(src.changedAndSettled());
  auto third = src.load();
  ASSERT_TRUE(third) << third.error().detail;
  EXPECT_EQ(third->nodeId(), issued->nodeId());
  EXPECT_FALSE(third->rootsPem.empty());
  EXPECT_FALSE(src.changed());
  EXPECT_TRUE(src.sameSettings(*cfg));
  auto other = cfgOf(R"({"node": {"name": "n2", "dataDir": ")" + data + R"("}})");
  EXPECT_FALSE(src.sameSettings(*other));
}

}  // namespace
}  // namespace ugate::auth
