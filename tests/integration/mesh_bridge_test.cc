// Cross-worker mesh streams, with ugated as processes on loopback: gw runs 2 workers, node A dials
// it (reverse accept) and its association lands on one of them, so about half of the client
// connections to gw's `tcp` listener (`to: a.mesh:ECHO`) are accepted on the other worker and
// joined to the association through a StreamBridge. Checked: every byte of a 300 KiB echo per
// stream (rings wrap, backpressure), the bridges exist while the streams idle but hold no ring
// storage, a second exchange after the release, and nothing left once the clients close.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_common/test_util.h"

namespace ugate::test {
namespace {

// metric: the value of an unlabelled metric on /stats, -1 when absent.
int64_t metric(uint16_t admin, const std::string& name) {
  std::string body;
  if (httpGet(admin, "/stats", &body) != 200) return -1;
  const std::string key = "\n" + name + " ";
  size_t at = body.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(body.substr(at + key.size()));
}

int runUgated(std::vector<std::string> args, std::string* out) {
  DaemonProcess p(std::move(args));
  int rc = p.wait(20000);
  *out = p.logs();
  return rc;
}

// echoedBack writes `payload` on fd while reading as many bytes back; true when they are the same.
bool echoedBack(int fd, const std::string& payload) {
  std::string got(payload.size(), '\0');
  bool read = false;
  std::thread reader([&] { read = readN(fd, got.data(), got.size(), 20000); });
  bool wrote = writeAll(fd, payload.data(), payload.size());
  reader.join();
  return wrote && read && fnv1a64(got.data(), got.size()) == fnv1a64(payload.data(), payload.size());
}

TEST(MeshBridge, CrossWorkerStreamsCarryEveryByteAndHoldNoRingsWhileIdle) {
  TempDir t;
  const std::string ca = t.path() + "/ca";
  std::string out;
  ASSERT_EQ(runUgated({"ca", "init", "--dir", ca, "--trust-domain", "it.mesh"}, &out), 0) << out;
  for (const char* n : {"gw", "a"}) {
    ASSERT_EQ(runUgated({"ca", "issue", "--dir", ca, "--name", n, "--out", t.path() + "/" + n,
                         "--trust-domain", "it.mesh"},
                        &out),
              0)
        << out;
  }
  TcpServer echo;
  const uint16_t mesh = freePort(), rev = freePort(), gwAdmin = freePort(), aAdmin = freePort();
  auto common = [&](const char* name, uint16_t admin, int workers) {
    return std::string(R"({"workers": )") + std::to_string(workers) + R"(, "node": {"name": ")" + name +
           R"(", "trustDomain": "it.mesh"}, "tls": {"certDir": ")" + t.path() + "/" + name +
           R"("}, "admin": {"address": "127.0.0.1:)" + std::to_string(admin) +
           R"("}, "log": {"level": "info", "accessLog": ""}, )";
  };
  const std::string gwCfg =
      common("gw", gwAdmin, 2) + R"("listeners": [{"name": "mesh", "kind": "mesh", "address": "127.0.0.1:)" +
      std::to_string(mesh) + R"("}, {"name": "rev", "kind": "tcp", "address": "127.0.0.1:)" +
      std::to_string(rev) + R"(", "to": "a.mesh:)" + std::to_string(echo.port()) + R"("}]})";
  const std::string aCfg = common("a", aAdmin, 1) + R"("upstreams": [{"name": "gw", "address": "127.0.0.1:)" +
                           std::to_string(mesh) + R"("}], "mesh": {"expose": [{"port": [)" +
                           std::to_string(echo.port()) +
                           R"(], "allow": "spiffe://it.mesh/ns/default/sa/gw"}]}})";
  DaemonProcess gw({"--config", t.write("gw.json", gwCfg)});
  ASSERT_TRUE(gw.waitReady(gwAdmin)) << gw.logs();
  DaemonProcess a({"--config", t.write("a.json", aCfg)});
  ASSERT_TRUE(a.waitReady(aAdmin)) << a.logs();
  ASSERT_TRUE(waitFor([&] { return metric(gwAdmin, "ugate_mesh_nodes") == 1; }, 20000)) << gw.logs();
  EXPECT_EQ(metric(gwAdmin, "ugate_mesh_bridges"), 0);
  EXPECT_EQ(metric(gwAdmin, "ugate_mesh_bridge_buffer_bytes"), 0);

  // 32 streams (the chance that all land on the association's worker is 2^-31), 300 KiB echoed
  // on each at once: more than a ring and an HTTP/2 window, so both directions wrap and block.
  constexpr int kStreams = 32;
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    fds.push_back(connectTcp(rev));
    ASSERT_GE(fds.back(), 0);
  }
  std::atomic<int> ok{0};
  auto round = [&](size_t bytes, uint32_t seed) {
    ok = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < kStreams; ++i) {
      ts.emplace_back([&, i] {
        if (echoedBack(fds[i], pattern(bytes + i * 131, seed + i))) ++ok;
      });
    }
    for (auto& th : ts) th.join();
  };
  round(300 * 1024, 100);
  EXPECT_EQ(ok.load(), kStreams);
  const int64_t bridges = metric(gwAdmin, "ugate_mesh_bridges");
  RecordProperty("bridges", std::to_string(bridges));
  EXPECT_GE(bridges, 1);
  EXPECT_LT(bridges, kStreams + 0LL);  // the association's own worker opens its streams directly

  // Idle, still open: the bridges stay, their rings go.
  EXPECT_TRUE(waitFor([&] { return metric(gwAdmin, "ugate_mesh_bridge_buffer_bytes") == 0; }, 20000));
  EXPECT_EQ(metric(gwAdmin, "ugate_mesh_bridges"), bridges);
  const int64_t allocs = metric(gwAdmin, "ugate_mesh_bridge_buffer_allocations_total");
  RecordProperty("allocations", std::to_string(allocs));
  EXPECT_GE(allocs, 2 * bridges);  // both directions of each bridge carried bytes

  // A second exchange on every stream: each direction of each bridge allocates again.
  round(20 * 1024, 200);
  EXPECT_EQ(ok.load(), kStreams);
  EXPECT_GE(metric(gwAdmin, "ugate_mesh_bridge_buffer_allocations_total"), allocs + 2 * bridges);
  EXPECT_TRUE(waitFor([&] { return metric(gwAdmin, "ugate_mesh_bridge_buffer_bytes") == 0; }, 20000));

  for (int fd : fds) close(fd);
  EXPECT_TRUE(waitFor([&] { return metric(gwAdmin, "ugate_mesh_bridges") == 0; }, 20000)) << gw.logs();
  EXPECT_EQ(metric(gwAdmin, "ugate_mesh_bridge_buffer_bytes"), 0);
}

}  // namespace
}  // namespace ugate::test
