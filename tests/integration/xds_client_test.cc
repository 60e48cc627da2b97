// The ADS client (xds.client, issue 19 §3) as a process against real control planes: node B's
// listener targets `cluster:svc.test`, which only node A's ADS server (another ugated) defines.
// Traffic through B reaches the backend A's route names; a SIGHUP on A that moves the route moves
// B's traffic; while A is down B keeps its last endpoints, and when A is back B reconnects and
// resubscribes. Both the state-of-the-world and the delta API. A control plane written with
// @grpc/grpc-js (tests/unit/xds/ads_server.js) sends an invalid update: B NACKs it with the reason
// and keeps serving the last good endpoints (skipped without node, npm or the network).
#include <signal.h>
#include <sys/socket.h>
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

std::string nodeA(const UgatedFixture& f, uint16_t xdsPort, uint16_t backend) {
  return f.config(UgatedFixture::listener("l", "tcp", freePort(), "reject"),
                  R"(, "node": {"name": "a"}, "xds": {"server": {"address": "127.0.0.1:)" + std::to_string(xdsPort) +
                      R"("}}, "routes": [{"match": {"host": "svc.test"}, "to": "127.0.0.1:)" + std::to_string(backend) +
                      R"("}])");
}

std::string nodeB(const UgatedFixture& f, uint16_t port, uint16_t xdsPort, bool delta) {
  return f.config(UgatedFixture::listener("in", "tcp", port, "cluster:svc.test"),
                  R"(, "node": {"name": "b"}, "xds": {"client": {"address": "127.0.0.1:)" + std::to_string(xdsPort) +
                      R"(", "insecure": true, "delta": )" + (delta ? "true" : "false") +
                      R"(, "node": {"metadata": {"ROLE": "test"}}, "backoff": {"min": "100ms", "max": "1s"}}})",
                  /*workers=*/2);
}

class XdsClientTest : public testing::TestWithParam<bool> {};

TEST_P(XdsClientTest, NodeBFollowsNodeAThroughAReloadAndARestart) {
  const bool delta = GetParam();
  auto backendA = taggedServer("A"), backendB = taggedServer("B");
  const uint16_t xdsPort = freePort();
  auto a = std::make_unique<UgatedFixture>();
  ASSERT_TRUE(a->start(nodeA(*a, xdsPort, backendA->port()))) << a->logs();
  UgatedFixture b;
  const uint16_t in = freePort();
  ASSERT_TRUE(b.start(nodeB(b, in, xdsPort, delta))) << b.logs();

  // B learns svc.test (CDS) and its endpoint (EDS) from A.
  ASSERT_TRUE(waitFor([&] { return tagThrough(in) == "A"; })) << b.logs() << a->logs();
  EXPECT_EQ(b.metric("ugate_xds_client_connected"), 1);
  EXPECT_EQ(b.metric("ugate_xds_client_clusters"), 1);
  EXPECT_EQ(b.metric("ugate_xds_client_nacks_total"), 0);
  EXPECT_GE(b.metric("ugate_xds_client_acks_total"), 2);
  EXPECT_TRUE(a->waitMetric(std::string(R"(ugate_xds_streams{api=")") + (delta ? "delta" : "sotw") + R"("})", 1));
  EXPECT_TRUE(a->waitMetric(R"(ugate_xds_acks_total{type="eds"})", 1)) << a->stats();
  const std::string clusters = httpBody(b.admin, "/clusters");
  EXPECT_NE(clusters.find(R"("name": "svc.test", "lb": "round_robin", "source": "xds")"), std::string::npos) << clusters;
  EXPECT_NE(clusters.find(R"("address": "127.0.0.1:)" + std::to_string(backendA->port())), std::string::npos);
  const std::string dump = httpBody(b.admin, "/config_dump");
  EXPECT_NE(dump.find(R"("dynamicClusters": [
    {"name": "svc.test", "source": "xds", "version": "cds )"),
            std::string::npos)
      << dump;
  // The config store: the clusters are resources of the xds source, with the versions they came from.
  EXPECT_NE(dump.find(R"({"source": "xds", "location": "127.0.0.1:)" + std::to_string(xdsPort) +
                      R"(", "version": "cds )"),
            std::string::npos)
      << dump;
  EXPECT_NE(dump.find(R"({"type": "cluster", "name": "svc.test", "version": "cds )"), std::string::npos) << dump;
  EXPECT_NE(dump.find(R"({"source": "file", "location": ")"), std::string::npos) << dump;
  // The dump loaded back as B's config is a config (dynamicClusters and configSources are not keys).
  b.rewrite(dump);
  b.proc->signal(SIGHUP);
  ASSERT_TRUE(b.waitMetric(R"(ugate_config_reloads_total{result="ok"})", 1)) << b.logs();
  EXPECT_EQ(b.metric(R"(ugate_config_reloads_total{result="error"})"), 0) << b.logs();
  EXPECT_EQ(tagThrough(in), "A");
  const std::string xds = httpBody(b.admin, "/xds");
  EXPECT_NE(xds.find(std::string(R"("api": ")") + (delta ? "delta" : "sotw")), std::string::npos) << xds;
  EXPECT_NE(xds.find(R"("connected": true)"), std::string::npos) << xds;

  // A held connection through B (to backend A) is not dropped by any of what follows.
  const int held = connectTcp(in);
  ASSERT_GE(held, 0);
  char tag = 0;
  ASSERT_EQ(::recv(held, &tag, 1, MSG_WAITALL), 1);
  EXPECT_EQ(tag, 'A');

  // A SIGHUP on A moves the route: B's new connections follow.
  a->rewrite(nodeA(*a, xdsPort, backendB->port()));
  a->proc->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return tagThrough(in) == "B"; })) << b.logs() << a->logs();

  // A stops: B keeps its last endpoints meanwhile and retries.
  a->proc->signal(SIGTERM);
  EXPECT_EQ(a->proc->wait(), 0);
  ASSERT_TRUE(b.waitMetric("ugate_xds_client_connected", 0)) << b.stats();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(tagThrough(in), "B") << i;
  EXPECT_TRUE(waitFor([&] { return b.metric("ugate_xds_client_reconnects_total") >= 2; })) << b.logs();

  // A is back (its route at backend A again, same ADS port): B reconnects, resubscribes, follows.
  a = std::make_unique<UgatedFixture>();
  ASSERT_TRUE(a->start(nodeA(*a, xdsPort, backendA->port()))) << a->logs();
  ASSERT_TRUE(b.waitMetric("ugate_xds_client_connected", 1)) << b.logs();
  ASSERT_TRUE(waitFor([&] { return tagThrough(in) == "A"; })) << b.logs() << a->logs();
  EXPECT_EQ(b.metric("ugate_xds_client_nacks_total"), 0);
  EXPECT_EQ(b.metric("ugate_xds_client_clusters"), 1);

  // A reload of B keeps the clusters it has from xDS (no gap: every stream still finds endpoints).
  b.rewrite(nodeB(b, in, xdsPort, delta));
  b.proc->signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return b.logs().find("reloaded") != std::string::npos; })) << b.logs();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(tagThrough(in), "A") << i;
  EXPECT_NE(httpBody(b.admin, "/clusters").find(R"("source": "xds")"), std::string::npos);

  ASSERT_TRUE(writeAll(held, "still here", 10));
  ::shutdown(held, SHUT_WR);
  EXPECT_EQ(readAll(held, 3000), "still here") << "the connection held across the updates still flows";
  ::close(held);
  EXPECT_EQ(b.metric(R"(ugate_cluster_no_endpoint_total{cluster="svc.test"})"), 0) << b.stats();
  b.proc->signal(SIGTERM);  // with its ADS call open
  EXPECT_EQ(b.proc->wait(), 0) << b.logs();
}

INSTANTIATE_TEST_SUITE_P(Api, XdsClientTest, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& p) { return p.param ? "Delta" : "Sotw"; });

/** nodeIdentity: a fresh identity in `dir` (`ugated id`); its node ID, "" on failure. */
std::string nodeIdentity(const std::string& dir) {
  DaemonProcess id({"id", "--data-dir", dir});
  if (id.wait(10000) != 0) return "";
  std::istringstream in(id.logs());
  for (std::string l; std::getline(in, l);) {
    if (l.size() == 52 && l.find(' ') == std::string::npos) return l;  // stdout's line (stderr says more)
  }
  return "";
}

// The same two nodes over mutual TLS with their node identities: A's ADS server trusts B's node ID
// (tls.trustedIds), B's client pins A's (xds.client.tls.peerIds). A node A does not trust is refused.
TEST(XdsClientTls, TwoNodesOverMutualTls) {
  auto backend = taggedServer("A");
  UgatedFixture a, b, c;
  const std::string dirA = a.dir.path() + "/id", dirB = b.dir.path() + "/id", dirC = c.dir.path() + "/id";
  const std::string idA = nodeIdentity(dirA), idB = nodeIdentity(dirB), idC = nodeIdentity(dirC);
  ASSERT_FALSE(idA.empty() || idB.empty() || idC.empty());
  const uint16_t xdsPort = freePort();
  ASSERT_TRUE(a.start(a.config(UgatedFixture::listener("l", "tcp", freePort(), "reject"),
                               R"(, "node": {"name": "a", "dataDir": ")" + dirA + R"("}, "tls": {"trustedIds": [")" + idB +
                                   R"("]}, "xds": {"server": {"address": "127.0.0.1:)" + std::to_string(xdsPort) +
                                   R"(", "tls": {}}}, "routes": [{"match": {"host": "svc.test"}, "to": "127.0.0.1:)" +
                                   std::to_string(backend->port()) + R"("}])")))
      << a.logs();
  auto client = [&](UgatedFixture& f, const std::string& dir, uint16_t in) {
    return f.config(UgatedFixture::listener("in", "tcp", in, "cluster:svc.test"),
                    R"(, "node": {"name": "n", "dataDir": ")" + dir + R"("}, "xds": {"client": {"address": "127.0.0.1:)" +
                        std::to_string(xdsPort) + R"(", "tls": {"peerIds": [")" + idA +
                        R"("]}, "backoff": {"min": "100ms", "max": "1s"}}})");
  };
  const uint16_t inB = freePort(), inC = freePort();
  ASSERT_TRUE(b.start(client(b, dirB, inB))) << b.logs();
  ASSERT_TRUE(waitFor([&] { return tagThrough(inB) == "A"; })) << b.logs() << a.logs();
  EXPECT_EQ(b.metric("ugate_xds_client_connected"), 1);
  EXPECT_EQ(b.metric("ugate_xds_tls_failures_total"), 0);
  EXPECT_NE(b.logs().find("xds: client connected to 127.0.0.1:" + std::to_string(xdsPort) + " (mTLS, sotw)"),
            std::string::npos)
      << b.logs();

  // C has an identity A does not trust: its handshakes fail, it defines no cluster.
  ASSERT_TRUE(c.start(client(c, dirC, inC))) << c.logs();
  EXPECT_TRUE(a.waitMetric("ugate_xds_tls_failures_total", 1)) << a.stats();
  EXPECT_TRUE(waitFor([&] { return c.metric("ugate_xds_client_reconnects_total") >= 1; })) << c.logs() << c.stats();
  EXPECT_EQ(c.metric("ugate_xds_client_connected"), 0);
  EXPECT_EQ(c.metric("ugate_xds_client_clusters"), 0);
  EXPECT_EQ(tagThrough(inC), "");
  EXPECT_EQ(tagThrough(inB), "A");
  for (UgatedFixture* f : {&c, &b, &a}) {
    f->proc->signal(SIGTERM);
    EXPECT_EQ(f->proc->wait(), 0) << f->logs();
  }
}

/** JsControlPlane: ads_server.js serving svc.test at `backend` (and `pad` unhealthy endpoints). */
struct JsControlPlane : xds::test::JsServer {
  JsControlPlane(const std::string& node, uint16_t backend, int pad)
      : JsServer(node + xds::test::grpcJsScript("ads_server.js") + " svc.test " + std::to_string(backend) +
                 " '" UGATE_SOURCE_DIR "/src/xds/proto' " + std::to_string(pad)) {}
};

// The parameter: unhealthy endpoints padding each assignment. 0: small responses, decoded on worker
// 0; 3000 (~60 KB): decoded on the xds module's DecodeThread and applied back on worker 0, in order.
class XdsClientNack : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Padding, XdsClientNack, ::testing::Values(0, 3000));

TEST_P(XdsClientNack, AnInvalidUpdateIsNackedWithTheReasonAndTheLastGoodEndpointsStay) {
  std::string why;
  const std::string node = xds::test::grpcJsCommand(why);
  if (node.empty()) GTEST_SKIP() << why;
  auto backend = taggedServer("A");
  JsControlPlane cp(node, backend->port(), GetParam());
  ASSERT_NE(cp.port(), 0);
  UgatedFixture b;
  const uint16_t in = freePort();
  // (The control plane by name: "localhost" is resolved, its addresses tried in turn.)
  std::string cfg = nodeB(b, in, cp.port(), false);
  const std::string ip = "127.0.0.1:" + std::to_string(cp.port());
  cfg.replace(cfg.find(ip), ip.size(), "localhost:" + std::to_string(cp.port()));
  ASSERT_TRUE(b.start(cfg)) << b.logs();
  ASSERT_TRUE(cp.waitFor("nack=")) << cp.out() << b.logs();
  EXPECT_NE(cp.out().find("req cds v= nonce= names=svc.test"), std::string::npos) << cp.out();
  EXPECT_NE(cp.out().find("req eds v=1 nonce=2 names=svc.test\n"), std::string::npos) << "the ACK\n" << cp.out();
  EXPECT_NE(cp.out().find("req eds v=1 nonce=3 names=svc.test nack=assignment svc.test: endpoint 0: "
                          "'backend.example' is not an IP address"),
            std::string::npos)
      << "the NACK keeps version 1\n" << cp.out();
  EXPECT_TRUE(b.waitMetric("ugate_xds_client_nacks_total", 1)) << b.stats();
  EXPECT_TRUE(waitFor([&] { return b.logs().find("xds: client NACKs") != std::string::npos; })) << b.logs();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(tagThrough(in), "A") << i;
  const std::string clusters = httpBody(b.admin, "/clusters");
  EXPECT_NE(clusters.find(R"("version": "cds 1, eds 1")"), std::string::npos) << clusters;
  const std::string status = httpBody(b.admin, "/xds");
  EXPECT_NE(status.find("\"endpoints\": " + std::to_string(1 + GetParam()) + "}"), std::string::npos) << status;
}

}  // namespace
}  // namespace ugate::test
