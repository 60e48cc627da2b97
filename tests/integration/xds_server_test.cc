// The ADS server (xds.server, issue 19 §2) with ugated as a process and @grpc/grpc-js as the ADS
// client (tests/unit/xds/ads_client.js: subscribes LDS, RDS, CDS, EDS to one name as grpc-js-xds
// does, ACKs each response). It sees the four resources of a configured route; a SIGHUP with the
// route changed (a cluster target) or removed pushes the change to the open stream, in both the
// state-of-the-world and the delta API. Skipped when node, npm or the network is missing.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"
#include "unit/xds/grpc_js.h"

namespace ugate::test {
namespace {

/** AdsPeer: ads_client.js running against ugated's ADS server; its output read line by line. */
class AdsPeer {
 public:
  AdsPeer(const std::string& node, uint16_t port, const std::string& name, const std::string& mode) {
    const std::string cmd = node + xds::test::grpcJsScript("ads_client.js") + " " + std::to_string(port) + " " + name +
                            " " + mode + " '" UGATE_SOURCE_DIR "/src/xds/proto' 2>&1";
    p_ = popen(cmd.c_str(), "r");
  }
  ~AdsPeer() { finish(); }
  /** waitLine reads until the line `want` (true) or the end of the output (false). */
  bool waitLine(const std::string& want) {
    char buf[8192];
    while (p_ && fgets(buf, sizeof buf, p_)) {
      out_ += buf;
      if (want + "\n" == buf) return true;
    }
    return false;
  }
  /** finish reads the rest and returns the exit status. */
  int finish() {
    if (!p_) return -1;
    waitLine("\x01");
    const int st = pclose(p_);
    p_ = nullptr;
    return st;
  }
  const std::string& out() const { return out_; }
  bool has(const std::string& s) const { return out_.find(s) != std::string::npos; }

 private:
  FILE* p_{nullptr};
  std::string out_;
};

std::string xdsConfig(const UgatedFixture& f, uint16_t xdsPort, const std::string& routes, const std::string& clusters = "[]") {
  return f.config(UgatedFixture::listener("l", "tcp", freePort(), "reject"),
                  R"(, "xds": {"server": {"address": "127.0.0.1:)" + std::to_string(xdsPort) + R"("}}, "clusters": )" +
                      clusters + R"(, "routes": )" + routes,
                  /*workers=*/2);
}

// XdsServerTest: ugated serving ADS, with one route (svc.test → 127.0.0.1:9001) at first; skipped
// without node, npm or the network.
class XdsServerTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    node_ = xds::test::grpcJsCommand(why);
    if (node_.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(f_.start(xdsConfig(f_, xdsPort_, R"([{"match": {"host": "svc.test"}, "to": "127.0.0.1:9001"}])")))
        << f_.logs();
  }

  // pushed: the scenario of both APIs: the route's four resources, then a SIGHUP with `routes2`.
  void pushed(const std::string& mode, const std::string& routes2, const std::string& clusters2,
              const std::vector<std::string>& wantAfter, int ldsPushes) {
    AdsPeer peer(node_, xdsPort_, "svc.test", mode);
    ASSERT_TRUE(peer.waitLine("ready")) << peer.out() << f_.logs();
    EXPECT_TRUE(peer.has("resp lds v=1 n=1 name=svc.test rds=svc.test ads=true filters=Router")) << peer.out();
    EXPECT_TRUE(peer.has("resp rds v=1 n=1 name=svc.test domains=svc.test,* prefix_set=true cluster=svc.test"))
        << peer.out();
    EXPECT_TRUE(peer.has("resp cds v=1 n=1 name=svc.test type=3 eds=svc.test")) << peer.out();
    EXPECT_TRUE(peer.has("resp eds v=1 n=1 name=svc.test locality=true lw=1 endpoints=127.0.0.1:9001/1"))
        << peer.out();
    EXPECT_TRUE(f_.waitMetric(R"(ugate_xds_acks_total{type="eds"})", 1)) << f_.stats();
    EXPECT_EQ(f_.metric(std::string(R"(ugate_xds_streams{api=")") + mode + R"("})"), 1);

    f_.rewrite(xdsConfig(f_, xdsPort_, routes2, clusters2));
    f_.proc->signal(SIGHUP);
    ASSERT_TRUE(peer.waitLine("changed")) << peer.out() << f_.logs();
    for (const std::string& w : wantAfter) EXPECT_TRUE(peer.has(w)) << w << "\n" << peer.out();
    EXPECT_EQ(peer.finish(), 0) << peer.out();
    EXPECT_TRUE(f_.waitMetric(R"(ugate_xds_acks_total{type="eds"})", 2)) << f_.stats();
    EXPECT_EQ(f_.metric(R"(ugate_xds_nacks_total{type="eds"})"), 0);
    EXPECT_TRUE(f_.waitMetric(std::string(R"(ugate_xds_streams{api=")") + mode + R"("})", 0)) << f_.stats();
    EXPECT_EQ(f_.metric(R"(ugate_xds_pushes_total{type="lds"})"), ldsPushes) << f_.stats();
  }

  // nackThenDrain: a NACK is counted and logged (and not answered); a drain ends the stream UNAVAILABLE.
  void nackThenDrain(const std::string& mode) {
    AdsPeer peer(node_, xdsPort_, "svc.test", mode + "-nack");
    ASSERT_TRUE(peer.waitLine("nacked")) << peer.out() << f_.logs();
    EXPECT_TRUE(f_.waitMetric(R"(ugate_xds_nacks_total{type="eds"})", 1)) << f_.stats();
    EXPECT_EQ(f_.metric(R"(ugate_xds_acks_total{type="eds"})"), 0);
    EXPECT_EQ(f_.metric(R"(ugate_xds_pushes_total{type="eds"})"), 1) << "a NACK is not answered";
    EXPECT_TRUE(waitFor([&] { return f_.logs().find("NACKed") != std::string::npos; })) << f_.logs();
    EXPECT_NE(f_.logs().find("test nack"), std::string::npos) << f_.logs();
    f_.proc->signal(SIGTERM);
    peer.finish();
    EXPECT_TRUE(peer.has(" 14 ugated is shutting down")) << peer.out();
    EXPECT_EQ(f_.proc->wait(), 0) << f_.logs();
  }

  UgatedFixture f_;
  uint16_t xdsPort_{freePort()};
  std::string node_;
};

const std::string kToCluster = R"([{"match": {"host": "svc.test"}, "to": "cluster:web"}])";
const std::string kWeb = R"([{"name": "web", "endpoints": [{"address": "127.0.0.2:9002", "weight": 5}]}])";
const std::string kWebAfter = "resp eds v=2 n=1 name=svc.test locality=true lw=1 endpoints=127.0.0.2:9002/5";

TEST_F(XdsServerTest, SotwStreamSeesTheRouteThenTheReloadedTarget) {
  pushed("sotw", kToCluster, kWeb, {kWebAfter}, /*ldsPushes=*/1);  // the Listener did not change
}

TEST_F(XdsServerTest, DeltaStreamSeesTheRouteThenTheReloadedTarget) {
  pushed("delta", kToCluster, kWeb, {kWebAfter}, /*ldsPushes=*/1);
}

TEST_F(XdsServerTest, SotwRemovedRouteLeavesAnEmptyClusterSet) {
  const std::string other = R"([{"match": {"host": "other.test"}, "to": "127.0.0.1:9003"}])";
  pushed("sotw", other, "[]", {"resp cds v=2 n=0", "resp eds v=2 n=0"}, /*ldsPushes=*/2);
}

TEST_F(XdsServerTest, DeltaRemovedRouteIsInRemovedResources) {
  pushed("delta", "[]", "[]", {"resp cds v=2 n=0 removed=svc.test", "resp eds v=2 n=0 removed=svc.test"},
         /*ldsPushes=*/2);
}

TEST_F(XdsServerTest, ReloadMovesTheServerToItsNewAddress) {
  const uint16_t moved = freePort();
  f_.rewrite(xdsConfig(f_, moved, R"([{"match": {"host": "svc.test"}, "to": "127.0.0.1:9001"}])"));
  f_.proc->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] {
    return f_.logs().find("ADS server listening on 127.0.0.1:" + std::to_string(moved)) != std::string::npos;
  })) << f_.logs();
  const int old = connectTcp(xdsPort_);
  EXPECT_LT(old, 0) << "the old address is closed";
  if (old >= 0) close(old);
  AdsPeer peer(node_, moved, "svc.test", "sotw");
  ASSERT_TRUE(peer.waitLine("ready")) << peer.out() << f_.logs();
  EXPECT_EQ(f_.metric("ugate_xds_server_listening"), 1);
  f_.proc->signal(SIGTERM);  // ends the stream (UNAVAILABLE), so the client exits now
  peer.finish();
}

TEST_F(XdsServerTest, SotwNackIsCountedAndDrainEndsTheStream) { nackThenDrain("sotw"); }

TEST_F(XdsServerTest, DeltaNackIsCountedAndDrainEndsTheStream) { nackThenDrain("delta"); }

// ugate's own resource type: a wildcard SotW subscription to ugate.v1.Node gets this node (its ID,
// name and mesh listener).
TEST_F(XdsServerTest, NodeResourceNamesThisNode) {
  UgatedFixture g;
  const uint16_t port = freePort(), mesh = freePort();
  ASSERT_TRUE(g.start(g.config(UgatedFixture::listener("mesh", "mesh", mesh, ""),
                               R"(, "node": {"name": "gw", "dataDir": ")" + g.dir.path() +
                                   R"(/id"}, "tls": {"trustedIds": [")" + std::string(52, 'A') +
                                   R"("]}, "xds": {"server": {"address": "127.0.0.1:)" + std::to_string(port) +
                                   R"("}})")))
      << g.logs();
  FILE* p = popen((node_ + xds::test::grpcJsScript("node_client.js") + " " + std::to_string(port) +
                   " '" UGATE_SOURCE_DIR "/src/xds/proto' 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char line[1024];
  while (fgets(line, sizeof line, p)) out += line;
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find(" name=gw source=self mesh=127.0.0.1:" + std::to_string(mesh) + " via=\n"), std::string::npos)
      << out << g.logs();
  const size_t at = out.find("node ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_EQ(out.find(' ', at + 5) - (at + 5), 52u) << "a node ID\n" << out;
  EXPECT_TRUE(g.waitMetric(R"(ugate_xds_acks_total{type="node"})", 1)) << g.stats();
}

/** nodeResources: node_client.js's lines for the ugate.v1.Node resources served on port. */
std::string nodeResources(const std::string& node, uint16_t port) {
  FILE* p = popen((node + xds::test::grpcJsScript("node_client.js") + " " + std::to_string(port) +
                   " '" UGATE_SOURCE_DIR "/src/xds/proto' 2>&1").c_str(), "r");
  if (!p) return "popen failed";
  std::string out;
  char line[1024];
  while (fgets(line, sizeof line, p)) out += line;
  const int st = pclose(p);
  return st == 0 ? out : out + "exit status " + std::to_string(st);
}

// Two ugated: node "a" holds a reverse-accept association with gateway "gw"; gw's ugate.v1.Node
// resources list a (source association, via gw, where it connected from, its SPIFFE ID), so another
// node learns that a is reachable through gw. When a stops, the next answer no longer lists it.
TEST_F(XdsServerTest, NodeResourcesListTheNodesAssociatedHere) {
  TempDir t;
  const std::string ca = t.path() + "/ca";
  auto run = [](std::vector<std::string> args) {
    DaemonProcess p(std::move(args));
    const int rc = p.wait(20000);
    return rc == 0 ? std::string() : p.logs() + " (exit " + std::to_string(rc) + ")";
  };
  ASSERT_EQ(run({"ca", "init", "--dir", ca, "--trust-domain", "it.mesh"}), "");
  for (const char* n : {"gw", "a"}) {
    ASSERT_EQ(run({"ca", "issue", "--dir", ca, "--name", n, "--out", t.path() + "/" + n, "--trust-domain", "it.mesh"}),
              "");
  }
  const uint16_t mesh = freePort(), xdsPort = freePort(), gwAdmin = freePort(), aAdmin = freePort();
  auto common = [&](const char* name, uint16_t admin) {
    return std::string(R"({"workers": 2, "node": {"name": ")") + name +
           R"(", "trustDomain": "it.mesh"}, "tls": {"certDir": ")" + t.path() + "/" + name +
           R"("}, "admin": {"address": "127.0.0.1:)" + std::to_string(admin) + R"("}, "log": {"accessLog": ""}, )";
  };
  DaemonProcess gw({"--config", t.write("gw.json", common("gw", gwAdmin) +
                                                       R"("listeners": [{"name": "mesh", "kind": "mesh", "address": "127.0.0.1:)" +
                                                       std::to_string(mesh) + R"("}], "xds": {"server": {"address": "127.0.0.1:)" +
                                                       std::to_string(xdsPort) + R"("}}})")});
  ASSERT_TRUE(gw.waitReady(gwAdmin)) << gw.logs();
  auto a = std::make_unique<DaemonProcess>(std::vector<std::string>{
      "--config", t.write("a.json", common("a", aAdmin) + R"("upstreams": [{"name": "gw", "address": "127.0.0.1:)" +
                                        std::to_string(mesh) + R"("}]})")});
  ASSERT_TRUE(a->waitReady(aAdmin)) << a->logs();
  std::string out;
  ASSERT_TRUE(waitFor([&] {
    out = nodeResources(node_, xdsPort);
    return out.find(" name=a source=association") != std::string::npos;
  }, 20000)) << out << gw.logs() << a->logs();
  EXPECT_NE(out.find(" name=gw source=self mesh=127.0.0.1:" + std::to_string(mesh) + " via=\n"), std::string::npos) << out;
  // gw's own ID (the self line) is the association's `via`.
  std::string gwId, aLine;
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) {
    if (l.find(" source=self ") != std::string::npos) gwId = l.substr(5, 52);
    if (l.find(" source=association ") != std::string::npos) aLine = l;
  }
  ASSERT_EQ(gwId.size(), 52u) << out;
  EXPECT_NE(aLine.find(" mesh= via=" + gwId + " from=127.0.0.1:"), std::string::npos) << aLine;
  EXPECT_NE(aLine.find(" spiffe=spiffe://it.mesh/"), std::string::npos) << aLine;

  // a leaves: the association ends and gw's next answer no longer has it.
  a->signal(SIGTERM);
  EXPECT_EQ(a->wait(), 0) << a->logs();
  ASSERT_TRUE(waitFor([&] {
    out = nodeResources(node_, xdsPort);
    return out.find(" source=self ") != std::string::npos && out.find(" source=association") == std::string::npos;
  }, 20000)) << out << gw.logs();
}

/** JsBackend: grpc_js_server.js with a reply tag. */
struct JsBackend : xds::test::JsServer {
  JsBackend(const std::string& node, const std::string& tag)
      : JsServer(node + xds::test::grpcJsScript("grpc_js_server.js") + " " + tag) {}
};

// A real proxyless gRPC client: @grpc/grpc-js-xds resolves xds:///svc.test through ugated's ADS
// server and calls the backend the route names; after a SIGHUP that points the route at another
// backend, its calls go there.
TEST(XdsServerGrpcJsXds, ProxylessClientFollowsTheRouteAcrossAReload) {
  std::string why;
  const std::string node = xds::test::grpcJsCommand(why, "@grpc/grpc-js-xds@1.14");
  if (node.empty()) GTEST_SKIP() << why;
  JsBackend a(node, "A"), b(node, "B");
  ASSERT_TRUE(a.port() && b.port());
  UgatedFixture f;
  const uint16_t xdsPort = freePort();
  auto routeTo = [](unsigned port) {
    return R"([{"match": {"host": "svc.test"}, "to": "127.0.0.1:)" + std::to_string(port) + R"("}])";
  };
  ASSERT_TRUE(f.start(xdsConfig(f, xdsPort, routeTo(a.port())))) << f.logs();
  FILE* client = popen((node + xds::test::grpcJsScript("xds_client.js") + " " + std::to_string(xdsPort) +
                        " svc.test B: 2>&1").c_str(), "r");
  ASSERT_NE(client, nullptr);
  std::string out;
  char line[1024];
  while (fgets(line, sizeof line, client)) {
    out += line;
    if (std::string(line) == "reply A:hi\n") break;
  }
  ASSERT_NE(out.find("reply A:hi"), std::string::npos) << out << f.logs();
  f.rewrite(xdsConfig(f, xdsPort, routeTo(b.port())));
  f.proc->signal(SIGHUP);
  while (fgets(line, sizeof line, client)) out += line;
  EXPECT_EQ(pclose(client), 0) << out;
  EXPECT_NE(out.find("reply B:hi"), std::string::npos) << out << f.logs();
  EXPECT_EQ(f.metric(R"(ugate_xds_nacks_total{type="lds"})") + f.metric(R"(ugate_xds_nacks_total{type="rds"})") +
                f.metric(R"(ugate_xds_nacks_total{type="cds"})") + f.metric(R"(ugate_xds_nacks_total{type="eds"})"),
            0)
      << f.stats();
  EXPECT_TRUE(f.waitMetric(R"(ugate_xds_acks_total{type="eds"})", 2)) << f.stats();
}

}  // namespace
}  // namespace ugate::test
