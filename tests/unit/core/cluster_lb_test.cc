// The cluster pickers (sans-I/O): each policy's choice, weights, health, ejection, panic, retries
// excluding endpoints already tried, and the outlier streak reported by WorkerClusters.
#include "core/cluster_lb.h"
#include "core/health_check.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace ugate {
namespace {

const MonotonicTime kNow = MonotonicTime{} + std::chrono::hours(1);

SocketAddress addr(int i) { return *SocketAddress::fromIp("10.0.0." + std::to_string(i), 80); }

Cluster makeCluster(LbPolicy lb, std::vector<uint32_t> weights) {
  Cluster c;
  c.name = "c";
  c.lb = lb;
  c.stats = std::make_shared<ClusterStats>(1);
  for (size_t i = 0; i < weights.size(); ++i) {
    ClusterEndpoint e;
    e.name = "e" + std::to_string(i);
    e.address = addr(static_cast<int>(i) + 1);
    e.weight = weights[i];
    e.stats = std::make_shared<EndpointStats>(1);
    c.endpoints.push_back(std::move(e));
  }
  return c;
}

// counts picks n times with no tried endpoints and no client.
std::vector<int> counts(ClusterLb& lb, const Cluster& c, int n, const SocketAddress& client = {}) {
  std::vector<int> out(c.endpoints.size(), 0);
  for (int i = 0; i < n; ++i) {
    int k = lb.pick(c, 0, client, {}, kNow);
    EXPECT_GE(k, 0);
    if (k >= 0) ++out[static_cast<size_t>(k)];
  }
  return out;
}

TEST(ClusterLbTest, RoundRobinIsExactlyEven) {
  Cluster c = makeCluster(LbPolicy::RoundRobin, {1, 1, 1});
  ClusterLb lb(1);
  EXPECT_EQ(counts(lb, c, 300), (std::vector<int>{100, 100, 100}));
  // And in turn, not in runs.
  int a = lb.pick(c, 0, {}, {}, kNow), b = lb.pick(c, 0, {}, {}, kNow), d = lb.pick(c, 0, {}, {}, kNow);
  EXPECT_NE(a, b);
  EXPECT_NE(b, d);
  EXPECT_NE(a, d);
}

TEST(ClusterLbTest, RoundRobinHonoursWeightsExactly) {
  Cluster c = makeCluster(LbPolicy::RoundRobin, {5, 1, 2});
  ClusterLb lb(1);
  EXPECT_EQ(counts(lb, c, 800), (std::vector<int>{500, 100, 200}));
  // Smooth: the heavy endpoint never gets more than its share in a row (5 of every 8, interleaved).
  int run = 0, longest = 0;
  for (int i = 0; i < 80; ++i) {
    run = lb.pick(c, 0, {}, {}, kNow) == 0 ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  EXPECT_LE(longest, 3);
}

TEST(ClusterLbTest, UnhealthyAndEjectedEndpointsAreSkipped) {
  Cluster c = makeCluster(LbPolicy::RoundRobin, {1, 1, 1});
  c.endpoints[1].healthy = false;
  c.endpoints[2].ejectedUntil = kNow + std::chrono::seconds(1);
  ClusterLb lb(1);
  EXPECT_EQ(counts(lb, c, 50), (std::vector<int>{50, 0, 0}));
  // An ejection that has ended counts no more.
  c.endpoints[2].ejectedUntil = kNow;
  EXPECT_EQ(counts(lb, c, 50), (std::vector<int>{25, 0, 25}));
}

TEST(ClusterLbTest, PanicSpreadsOverAllWhenNoneIsAvailable) {
  for (LbPolicy p : {LbPolicy::RoundRobin, LbPolicy::LeastConnections, LbPolicy::RandomTwo, LbPolicy::HashSource}) {
    Cluster c = makeCluster(p, {1, 1});
    c.endpoints[0].healthy = false;
    c.endpoints[1].ejectedUntil = kNow + std::chrono::seconds(5);
    ClusterLb lb(7);
    auto n = counts(lb, c, 40);
    EXPECT_EQ(n[0] + n[1], 40) << lbPolicyName(p);
    if (p != LbPolicy::HashSource) {
      EXPECT_GT(n[0], 0) << lbPolicyName(p);
      EXPECT_GT(n[1], 0) << lbPolicyName(p);
    }
  }
}

TEST(ClusterLbTest, RetriesAvoidEndpointsTried) {
  for (LbPolicy p : {LbPolicy::RoundRobin, LbPolicy::LeastConnections, LbPolicy::RandomTwo, LbPolicy::HashSource}) {
    Cluster c = makeCluster(p, {1, 1, 1});
    ClusterLb lb(3);
    const SocketAddress client = *SocketAddress::fromIp("192.0.2.7", 5555);
    std::vector<SocketAddress> tried;
    std::vector<int> seen;
    for (int i = 0; i < 3; ++i) {
      int k = lb.pick(c, 0, client, tried, kNow);
      ASSERT_GE(k, 0);
      seen.push_back(k);
      tried.push_back(c.endpoints[static_cast<size_t>(k)].address);
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2})) << lbPolicyName(p);
    // All tried: a further retry still gets an endpoint.
    EXPECT_GE(lb.pick(c, 0, client, tried, kNow), 0) << lbPolicyName(p);
  }
}

TEST(ClusterLbTest, RetryPrefersAvailableOverUnhealthy) {
  Cluster c = makeCluster(LbPolicy::RoundRobin, {1, 1, 1});
  c.endpoints[2].healthy = false;
  ClusterLb lb(1);
  std::vector<SocketAddress> tried{c.endpoints[0].address, c.endpoints[1].address};
  for (int i = 0; i < 10; ++i) {
    int k = lb.pick(c, 0, {}, tried, kNow);
    EXPECT_TRUE(k == 0 || k == 1) << k;
  }
}

TEST(ClusterLbTest, LeastConnectionsFollowsActiveStreams) {
  Cluster c = makeCluster(LbPolicy::LeastConnections, {1, 1, 1});
  ClusterLb lb(1);
  c.endpoints[0].stats->worker(0).active.add(10);
  c.endpoints[1].stats->worker(0).active.add(3);
  // Endpoint 2 is idle: it gets every stream until it is as busy as endpoint 1.
  for (int i = 0; i < 3; ++i) {
    int k = lb.pick(c, 0, {}, {}, kNow);
    ASSERT_EQ(k, 2);
    c.endpoints[2].stats->worker(0).active.inc();
  }
  // Then 1 and 2 alternate; 0 stays untouched while it is the busiest.
  auto n = std::vector<int>(3, 0);
  for (int i = 0; i < 14; ++i) {
    int k = lb.pick(c, 0, {}, {}, kNow);
    ++n[static_cast<size_t>(k)];
    c.endpoints[static_cast<size_t>(k)].stats->worker(0).active.inc();
  }
  EXPECT_EQ(n, (std::vector<int>{0, 7, 7}));
}

TEST(ClusterLbTest, LeastConnectionsRelativeToWeight) {
  Cluster c = makeCluster(LbPolicy::LeastConnections, {3, 1});
  ClusterLb lb(1);
  auto n = std::vector<int>(2, 0);
  for (int i = 0; i < 400; ++i) {  // streams that stay open: the load ends 3:1
    int k = lb.pick(c, 0, {}, {}, kNow);
    ++n[static_cast<size_t>(k)];
    c.endpoints[static_cast<size_t>(k)].stats->worker(0).active.inc();
  }
  EXPECT_EQ(n, (std::vector<int>{300, 100}));
}

TEST(ClusterLbTest, LeastConnectionsCountsOnlyThisWorker) {
  Cluster c = makeCluster(LbPolicy::LeastConnections, {1, 1});
  for (auto& e : c.endpoints) e.stats = std::make_shared<EndpointStats>(2);
  c.endpoints[0].stats->worker(1).active.add(100);  // busy on the other worker only
  c.endpoints[1].stats->worker(0).active.add(1);
  ClusterLb lb(1);
  EXPECT_EQ(lb.pick(c, 0, {}, {}, kNow), 0);
}

TEST(ClusterLbTest, RandomTwoAvoidsTheLoadedEndpoint) {
  Cluster c = makeCluster(LbPolicy::RandomTwo, {1, 1, 1, 1});
  c.endpoints[3].stats->worker(0).active.add(1000);
  ClusterLb lb(42);
  auto n = counts(lb, c, 400);
  // Endpoint 3 loses every comparison it is part of: it is never chosen while it is the busiest.
  EXPECT_EQ(n[3], 0);
  EXPECT_EQ(n[0] + n[1] + n[2], 400);
  for (int i = 0; i < 3; ++i) EXPECT_GT(n[static_cast<size_t>(i)], 0);
}

TEST(ClusterLbTest, HashSourceIsStickyAndConsistent) {
  Cluster c = makeCluster(LbPolicy::HashSource, {1, 1, 1, 1});
  ClusterLb lb(1), other(99);  // another worker: same answer
  std::map<std::string, int> chosen;
  std::vector<int> spread(4, 0);
  for (int i = 0; i < 200; ++i) {
    SocketAddress client = *SocketAddress::fromIp("198.51.100." + std::to_string(i % 250), 1000 + i);
    int k = lb.pick(c, 0, client, {}, kNow);
    ASSERT_GE(k, 0);
    chosen[client.ip()] = k;
    ++spread[static_cast<size_t>(k)];
    // The port does not matter, nor the worker.
    SocketAddress samePeer = *SocketAddress::fromIp(client.ip(), 40000);
    EXPECT_EQ(other.pick(c, 0, samePeer, {}, kNow), k);
  }
  for (int n : spread) EXPECT_GT(n, 0);  // 200 clients over 4 endpoints all land somewhere
  // Endpoint 1 goes away: only its clients move.
  c.endpoints[1].healthy = false;
  for (const auto& [ip, k] : chosen) {
    int now = lb.pick(c, 0, *SocketAddress::fromIp(ip, 1), {}, kNow);
    if (k != 1) EXPECT_EQ(now, k) << ip;
    else EXPECT_NE(now, 1) << ip;
  }
}

TEST(ClusterLbTest, EmptyClusterHasNoPick) {
  Cluster c = makeCluster(LbPolicy::RoundRobin, {});
  ClusterLb lb(1);
  EXPECT_EQ(lb.pick(c, 0, {}, {}, kNow), -1);
}

TEST(WorkerClustersTest, StreakReachesTheOutlierThresholdOnce) {
  std::vector<std::string> ejections;
  WorkerClusters wc(0, [&](const std::string& cluster, const ClusterEndpoint& e) {
    ejections.push_back(cluster + "/" + e.name);
  });
  auto c = std::make_shared<Cluster>(makeCluster(LbPolicy::RoundRobin, {1, 1}));
  c->outlier.enabled = true;
  c->outlier.consecutiveFailures = 3;
  wc.connectResult(*c, 0, false);
  wc.connectResult(*c, 0, false);
  wc.connectResult(*c, 0, true);  // a success ends the streak
  wc.connectResult(*c, 0, false);
  wc.connectResult(*c, 0, false);
  EXPECT_TRUE(ejections.empty());
  wc.connectResult(*c, 0, false);
  wc.connectResult(*c, 0, false);  // past the threshold: no second request for the same streak
  EXPECT_EQ(ejections, (std::vector<std::string>{"c/e0"}));
  EXPECT_EQ(c->endpoints[0].stats->connectFailures(), 6u);
  EXPECT_EQ(c->endpoints[0].stats->connections(), 1u);
  // Without outlier detection nothing is asked.
  c->outlier.enabled = false;
  for (int i = 0; i < 10; ++i) wc.connectResult(*c, 1, false);
  EXPECT_EQ(ejections.size(), 1u);
}

TEST(WorkerClustersTest, OlderSnapshotsAreIgnored) {
  WorkerClusters wc(0, nullptr);
  auto s1 = std::make_shared<ClusterSet>();
  s1->generation = 2;
  s1->seq = 5;
  s1->clusters["a"] = std::make_shared<Cluster>(makeCluster(LbPolicy::RoundRobin, {1}));
  wc.setSet(s1);
  auto late = std::make_shared<ClusterSet>();
  late->generation = 1;
  late->seq = 9;  // an update of the previous config, arriving after the reload
  wc.setSet(late);
  EXPECT_NE(wc.find("a"), nullptr);
  auto s2 = std::make_shared<ClusterSet>();
  s2->generation = 2;
  s2->seq = 6;
  wc.setSet(s2);
  EXPECT_EQ(wc.find("a"), nullptr);
}

TEST(HealthCheckTest, HttpStatusLine) {
  EXPECT_EQ(httpStatusOf("HTTP/1.1 200 OK\r\n"), 200);
  EXPECT_EQ(httpStatusOf("HTTP/1.0 503 Service Unavailable\r\n"), 503);
  EXPECT_EQ(httpStatusOf("HTTP/1.1 204\r\n"), 204);
  EXPECT_EQ(httpStatusOf("HTTP/1.1 20"), -1);  // incomplete
  EXPECT_EQ(httpStatusOf("SSH-2.0-OpenSSH\r\n"), 0);
  EXPECT_EQ(httpStatusOf("HTTP/1.1 2x0 OK\r\n"), 0);
}

}  // namespace
}  // namespace ugate
