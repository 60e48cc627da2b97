// Upstream clusters with real origins: ugated and every origin (tests/tools/origin.cc) run as
// processes on loopback. Round robin spreads exactly (one worker, sequential streams), weights
// hold, least_connections steers around long-lived streams, a killed origin is taken out by the
// health checks and put back when it returns, connect failures are retried on another endpoint
// without the client noticing, outlier ejection stops at maxEjectedPercent, and --check-config
// reports broken clusters. No timing is asserted: every wait polls /stats until a state is reached.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_common/test_util.h"
#include "test_common/ugated_fixture.h"

namespace ugate::test {
namespace {

// Origin: ugate_origin as a child process; answers its name to each stream (see origin.cc).
class Origin {
 public:
  explicit Origin(std::string name) : name_(std::move(name)) { start(0); }
  uint16_t port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  void kill9() { child_.kill9(); }
  /** start runs the origin (again) on `port` (0: any). */
  void start(uint16_t port) {
    child_.start({UGATE_ORIGIN, "--listen", "127.0.0.1:" + std::to_string(port), "--name", name_});
    port_ = child_.port();
    ASSERT_NE(port_, 0) << "origin " << name_ << " did not start";
  }

 private:
  std::string name_;
  ListeningChild child_;
  uint16_t port_{0};
};

// readLine: one line from fd ("" on EOF, error or timeout).
std::string readLine(int fd, int timeoutMs = 10000) {
  std::string line;
  char c;
  while (line.empty() || line.back() != '\n') {
    pollfd pf{fd, POLLIN, 0};
    if (poll(&pf, 1, timeoutMs) <= 0 || ::recv(fd, &c, 1, 0) != 1) return "";
    line.push_back(c);
  }
  line.pop_back();
  return line;
}

// Stream: one client stream through ugated: greets and learns which origin answered.
struct Stream {
  int fd{-1};
  std::string origin;
  explicit Stream(uint16_t port) {
    fd = connectTcp(port);
    if (fd < 0) return;
    if (!writeAll(fd, "hello\n", 6)) return;
    origin = readLine(fd);
  }
  ~Stream() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// spread: n sequential streams (each closed before the next opens), counted by origin ("" = failed).
std::map<std::string, int> spread(uint16_t port, int n) {
  std::map<std::string, int> out;
  for (int i = 0; i < n; ++i) {
    Stream s(port);
    ++out[s.origin];
  }
  return out;
}

std::string epKey(const std::string& family, const std::string& cluster, const Origin& o) {
  return family + "{cluster=\"" + cluster + "\",endpoint=\"" + o.addr() + "\"}";
}
std::string epKey(const std::string& family, const std::string& cluster, uint16_t port) {
  return family + "{cluster=\"" + cluster + "\",endpoint=\"127.0.0.1:" + std::to_string(port) + "\"}";
}

class ClustersTest : public testing::Test {
 protected:
  UgatedFixture f;
  uint16_t in = freePort();

  // run: ugated with `clusters` and a tcp listener `in` to cluster:web (plus `more` listeners).
  void run(const std::string& clusters, const std::string& more = "") {
    std::string listeners = UgatedFixture::listener("in", "tcp", in, "cluster:web") + more;
    ASSERT_TRUE(f.start(f.config(listeners, ", \"clusters\": [" + clusters + "]"))) << f.logs();
  }
};

TEST_F(ClustersTest, RoundRobinSpreadsExactlyAndHonoursWeights) {
  Origin a("a"), b("b"), c("c"), h("heavy"), l("light");
  const uint16_t in2 = freePort();
  run(R"({"name": "web", "endpoints": [")" + a.addr() + R"(", ")" + b.addr() + R"(", ")" + c.addr() + R"("]},
         {"name": "weighted", "endpoints": [{"address": ")" + h.addr() + R"(", "weight": 3},
                                            {"address": ")" + l.addr() + R"(", "weight": 1}]})",
      ", " + UgatedFixture::listener("in2", "tcp", in2, "cluster:weighted"));
  // One worker, streams one after another: smooth round robin is exact, not statistical.
  auto n = spread(in, 300);
  EXPECT_EQ(n["a"], 100);
  EXPECT_EQ(n["b"], 100);
  EXPECT_EQ(n["c"], 100);
  EXPECT_EQ(n[""], 0);
  auto w = spread(in2, 200);
  EXPECT_EQ(w["heavy"], 150);
  EXPECT_EQ(w["light"], 50);
  // /stats counts the same.
  EXPECT_EQ(f.metric(epKey("ugate_cluster_connections_total", "web", a)), 100) << f.stats();
  EXPECT_EQ(f.metric(epKey("ugate_cluster_connections_total", "weighted", h)), 150);
  EXPECT_EQ(f.metric(epKey("ugate_cluster_connections_total", "weighted", l)), 50);
  EXPECT_EQ(f.metric("ugate_cluster_retries_total{cluster=\"web\"}"), 0);
  std::string body;
  ASSERT_EQ(httpGet(f.admin, "/clusters", &body), 200);
  EXPECT_NE(body.find("\"name\": \"weighted\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"address\": \"" + h.addr() + "\", \"weight\": 3, \"health\": \"healthy\""), std::string::npos)
      << body;
  EXPECT_NE(body.find("\"lb\": \"round_robin\""), std::string::npos) << body;
}

TEST_F(ClustersTest, LeastConnectionsSteersAroundLongLivedStreams) {
  Origin a("a"), b("b");
  run(R"({"name": "web", "lb": "least_connections", "endpoints": [")" + a.addr() + R"(", ")" + b.addr() + R"("]})");
  // Six long-lived streams: each pick sees the ones before it, so they split evenly.
  std::vector<std::unique_ptr<Stream>> held;
  std::map<std::string, int> n;
  for (int i = 0; i < 6; ++i) {
    held.push_back(std::make_unique<Stream>(in));
    ++n[held.back()->origin];
  }
  EXPECT_EQ(n["a"], 3);
  EXPECT_EQ(n["b"], 3);
  // Close b's: a keeps three long-lived streams, b has none (once ugated has seen them close).
  for (auto& s : held) {
    if (s->origin == "b") s->close();
  }
  ASSERT_TRUE(f.waitMetric(epKey("ugate_cluster_active_connections", "web", b), 0)) << f.stats();
  EXPECT_EQ(f.metric(epKey("ugate_cluster_active_connections", "web", a)), 3);
  // Under this uneven load the next three streams all go to b (round robin would send a half).
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Stream>(in));
    EXPECT_EQ(held.back()->origin, "b") << "stream " << i;
  }
  // Level again: the next two split.
  std::map<std::string, int> m;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<Stream>(in));
    ++m[held.back()->origin];
  }
  EXPECT_EQ(m["a"], 1);
  EXPECT_EQ(m["b"], 1);
}

TEST_F(ClustersTest, HealthChecksRemoveAKilledOriginAndReAddItWhenBack) {
  Origin a("a"), b("b");
  const uint16_t aPort = a.port();
  run(R"({"name": "web", "endpoints": [")" + a.addr() + R"(", ")" + b.addr() + R"("],
          "healthCheck": {"kind": "http", "path": "/healthz", "interval": "200ms", "timeout": "150ms",
                          "healthyThreshold": 2, "unhealthyThreshold": 2}})");
  const std::string healthyA = epKey("ugate_cluster_endpoint_healthy", "web", aPort);
  ASSERT_TRUE(f.waitMetric(epKey("ugate_cluster_health_checks_passed_total", "web", aPort), 2, 10000) ||
              f.metric(epKey("ugate_cluster_health_checks_passed_total", "web", aPort)) >= 2);
  EXPECT_EQ(f.metric(healthyA), 1);
  a.kill9();
  ASSERT_TRUE(f.waitMetric(healthyA, 0, 20000)) << f.stats();
  std::string body;
  ASSERT_EQ(httpGet(f.admin, "/clusters", &body), 200);
  EXPECT_NE(body.find("\"address\": \"127.0.0.1:" + std::to_string(aPort) + "\", \"weight\": 1, \"health\": \"unhealthy\""),
            std::string::npos)
      << body;
  // Unhealthy: not even tried (no connect failure, no retry), every stream lands on b.
  const int64_t failuresBefore = f.metric(epKey("ugate_cluster_connect_failures_total", "web", aPort));
  auto n = spread(in, 20);
  EXPECT_EQ(n["b"], 20);
  EXPECT_EQ(f.metric(epKey("ugate_cluster_connect_failures_total", "web", aPort)), failuresBefore);
  // Back on the same port: healthy again after two passed checks, and used again.
  a.start(aPort);
  ASSERT_TRUE(f.waitMetric(healthyA, 1, 20000)) << f.stats();
  auto m = spread(in, 20);
  EXPECT_GE(m["a"], 9);
  EXPECT_GE(m["b"], 9);
  EXPECT_EQ(m["a"] + m["b"], 20);
  EXPECT_NE(f.logs().find("is unhealthy after 2 failed checks"), std::string::npos) << f.logs();
  EXPECT_NE(f.logs().find("is healthy again"), std::string::npos);
}

TEST_F(ClustersTest, ConnectFailuresAreRetriedInvisibly) {
  Origin a("a");
  const uint16_t refused = freePort();  // nothing listens there: connects are refused
  run(R"({"name": "web", "connectRetries": 2, "endpoints": ["127.0.0.1:)" + std::to_string(refused) + R"(", ")" +
      a.addr() + R"("]})");
  // Every client gets its data; half the picks met the refusing endpoint first.
  auto n = spread(in, 50);
  EXPECT_EQ(n["a"], 50);
  const int64_t failures = f.metric(epKey("ugate_cluster_connect_failures_total", "web", refused));
  EXPECT_GT(failures, 0) << f.stats();
  EXPECT_EQ(f.metric("ugate_cluster_retries_total{cluster=\"web\"}"), failures);
  EXPECT_EQ(f.metric(epKey("ugate_cluster_connections_total", "web", a)), 50);
  // An HTTP client sees 200 every time, too.
  for (int i = 0; i < 10; ++i) {
    std::string body;
    EXPECT_EQ(httpGet(in, "/", &body), 200);
    EXPECT_EQ(body, "a\n");
  }
  // The listener closed every stream cleanly: no connect error reached a client.
  EXPECT_EQ(f.metric("ugate_listener_errors_total{listener=\"in\",reason=\"connect_refused\"}"), 0) << f.stats();
}

TEST_F(ClustersTest, RetriesSpentGiveTheUsualFailure) {
  const uint16_t r1 = freePort(), r2 = freePort();
  run(R"({"name": "web", "connectRetries": 1, "endpoints": ["127.0.0.1:)" + std::to_string(r1) + R"(", "127.0.0.1:)" +
      std::to_string(r2) + R"("]})");
  Stream s(in);
  EXPECT_EQ(s.origin, "");  // reset: the tcp front door's usual answer to a failed connect
  ASSERT_TRUE(f.waitMetric("ugate_listener_errors_total{listener=\"in\",reason=\"connect_refused\"}", 1)) << f.stats();
  EXPECT_EQ(f.metric("ugate_cluster_retries_total{cluster=\"web\"}"), 1);
}

TEST_F(ClustersTest, OutlierEjectionStopsAtMaxEjectedPercent) {
  Origin a("a");
  std::vector<uint16_t> dead{freePort(), freePort(), freePort()};
  std::string eps = "\"" + a.addr() + "\"";
  for (uint16_t p : dead) eps += ", \"127.0.0.1:" + std::to_string(p) + "\"";
  run(R"({"name": "web", "connectRetries": 3, "endpoints": [)" + eps +
      R"(], "outlier": {"consecutiveFailures": 1, "ejectFor": "10m", "maxEjectedPercent": 50}})");
  // Streams keep coming until two endpoints are ejected and a third has been refused by the cap.
  int ok = 0;
  auto ejected = [&] {
    int64_t n = 0;
    for (uint16_t p : dead) n += f.metric(epKey("ugate_cluster_endpoint_ejected", "web", p));
    return n;
  };
  ASSERT_TRUE(waitFor(
      [&] {
        Stream s(in);
        ok += s.origin == "a";
        return ejected() == 2 && f.metric("ugate_cluster_ejections_overflow_total{cluster=\"web\"}") > 0;
      },
      30000))
      << f.stats();
  // Some more streams: the cap holds, and every client still got its data.
  for (int i = 0; i < 20; ++i) {
    Stream s(in);
    ok += s.origin == "a";
    EXPECT_EQ(s.origin, "a");
  }
  EXPECT_EQ(ejected(), 2);  // 2 of 4 = 50 %: never a third
  EXPECT_EQ(f.metric(epKey("ugate_cluster_endpoint_ejected", "web", a)), 0);
  int64_t ejections = 0;
  for (uint16_t p : dead) ejections += f.metric(epKey("ugate_cluster_ejections_total", "web", p));
  EXPECT_EQ(ejections, 2);
  std::string body;
  ASSERT_EQ(httpGet(f.admin, "/clusters", &body), 200);
  size_t shown = 0;
  for (size_t at = body.find("\"ejected\": true"); at != std::string::npos; at = body.find("\"ejected\": true", at + 1)) ++shown;
  EXPECT_EQ(shown, 2u) << body;
  EXPECT_NE(body.find("\"ejectedUntil\": "), std::string::npos) << body;
  EXPECT_EQ(f.metric("ugate_listener_errors_total{listener=\"in\",reason=\"connect_refused\"}"), 0);
  EXPECT_GT(ok, 20);
}

TEST_F(ClustersTest, NamesAreResolvedAsynchronously) {
  Origin a("a");
  // /etc/hosts names localhost (c-ares reads it): an address or two (127.0.0.1, maybe ::1, which
  // refuses: retried unseen).
  run(R"({"name": "web", "dnsRefresh": "200ms", "endpoints": ["localhost:)" + std::to_string(a.port()) + R"("]})");
  ASSERT_TRUE(waitFor([&] { return f.metric("ugate_cluster_endpoints{cluster=\"web\"}") >= 1; })) << f.logs();
  auto n = spread(in, 10);
  EXPECT_EQ(n["a"], 10);
  EXPECT_GE(f.metric(epKey("ugate_cluster_connections_total", "web", a)), 5) << f.stats();
  std::string body;
  ASSERT_EQ(httpGet(f.admin, "/clusters", &body), 200);
  EXPECT_NE(body.find("\"name\": \"localhost:" + std::to_string(a.port()) + "\", \"address\": \"" + a.addr() + "\""),
            std::string::npos)
      << body;
}

TEST_F(ClustersTest, ANameResolvingToAnotherEntrysAddressIsNotAddedTwice) {
  Origin a("a");
  const std::string port = std::to_string(a.port());
  run(R"({"name": "web", "endpoints": ["127.0.0.1:)" + port + R"(", "localhost:)" + port + R"("]})");
  ASSERT_TRUE(waitFor([&] { return f.logs().find("which is endpoint 127.0.0.1:" + port + " already") != std::string::npos; }))
      << f.logs();
  // One series per endpoint address in /stats (no duplicate label sets), and the streams all reach a.
  const std::string stats = f.stats();
  size_t series = 0;
  const std::string key = epKey("ugate_cluster_connections_total", "web", a) + " ";
  for (size_t at = stats.find(key); at != std::string::npos; at = stats.find(key, at + 1)) ++series;
  EXPECT_EQ(series, 1u) << stats;
  EXPECT_EQ(spread(in, 6)["a"], 6);
}

TEST_F(ClustersTest, ReloadAddsAnEndpointAndKeepsTheCounters) {
  Origin a("a"), b("b");
  run(R"({"name": "web", "endpoints": [")" + a.addr() + R"("]})");
  EXPECT_EQ(spread(in, 10)["a"], 10);
  f.rewrite(f.config(UgatedFixture::listener("in", "tcp", in, "cluster:web"),
                     R"(, "clusters": [{"name": "web", "endpoints": [")" + a.addr() + R"(", ")" + b.addr() + R"("]}])"));
  f.proc->signal(SIGHUP);
  ASSERT_TRUE(f.waitMetric(R"(ugate_config_reloads_total{result="ok"})", 1)) << f.logs();
  ASSERT_TRUE(f.waitMetric("ugate_cluster_endpoints{cluster=\"web\"}", 2)) << f.stats();
  auto n = spread(in, 20);
  EXPECT_EQ(n["a"], 10);
  EXPECT_EQ(n["b"], 10);
  EXPECT_EQ(f.metric(epKey("ugate_cluster_connections_total", "web", a)), 20);  // 10 before the reload
  // A reload that names a cluster nobody defines is rejected; the running clusters stay.
  f.rewrite(f.config(UgatedFixture::listener("in", "tcp", in, "cluster:gone")));
  f.proc->signal(SIGHUP);
  ASSERT_TRUE(f.waitMetric(R"(ugate_config_reloads_total{result="error"})", 1)) << f.logs();
  EXPECT_NE(f.logs().find("listeners[0].to: no cluster named 'gone'"), std::string::npos);
  EXPECT_EQ(spread(in, 2).size(), 2u);  // a and b still serve
}

TEST(ClustersCheckConfigTest, BrokenClustersAreReportedWithTheirPaths) {
  TempDir dir;
  std::string path = dir.write("bad.json", R"({
    "clusters": [{"name": "web", "endpoints": []},
                 {"name": "api", "endpoints": [{"address": "127.0.0.1:80", "weight": 0}], "lb": "fastest"}],
    "listeners": [{"name": "l", "kind": "tcp", "address": "127.0.0.1:1", "to": "cluster:nope"},
                  {"name": "u", "kind": "udp", "address": "127.0.0.1:1", "to": "cluster:api"}]
  })");
  DaemonProcess p({"--check-config", path});
  EXPECT_EQ(p.wait(20000), 2);  // 2: the config cannot run
  const std::string out = p.logs();
  EXPECT_NE(out.find("clusters[0].endpoints: empty: a cluster needs at least one endpoint"), std::string::npos) << out;
  EXPECT_NE(out.find("clusters[1].endpoints[0].weight: 0 out of range [1, 10000]"), std::string::npos) << out;
  EXPECT_NE(out.find("listeners[0].to: no cluster named 'nope'"), std::string::npos) << out;
  EXPECT_NE(out.find("listeners[1].to: 'cluster:api': clusters serve TCP streams, not kind 'udp'"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace ugate::test
