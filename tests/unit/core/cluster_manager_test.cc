// The cluster manager's owner applying a module's clusters (ClusterUpdater::setCluster): endpoints
// that stay keep their ClusterEndpoint and counters whatever their position, new ones start from
// zero, removed ones go, an unchanged update publishes nothing; per-worker counters beyond the
// inline slots. Real core Workers on their threads; the owner is called on worker 0's thread.
#include "core/cluster_manager.h"
#include "core/worker.h"

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

namespace ugate {
namespace {

SocketAddress addr(int i) { return *SocketAddress::fromIp("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), 80); }

DynamicCluster dyn(const std::vector<int>& ids, const std::string& version) {
  DynamicCluster d;
  d.name = "svc";
  d.source = "xds";
  d.version = version;
  for (int i : ids) d.endpoints.push_back(DynamicEndpoint{addr(i), static_cast<uint32_t>(1 + i % 3), true});
  return d;
}

class ClusterManagerTest : public ::testing::Test {
 protected:
  void start(int n) {
    cfg_ = *parseConfig("{}", "<test>", ConfigDefaults{});
    for (int i = 0; i < n; ++i) {
      workers_.push_back(std::make_unique<Worker>(i, cfg_, 100, -1));
      ptrs_.push_back(workers_.back().get());
    }
    mgr_ = std::make_unique<ClusterManager>(ptrs_);
    ClusterSetPtr first = mgr_->prepare(*cfg_);
    for (auto& w : workers_) {
      w->startThread();
      w->reactor().post([w = w.get(), c = cfg_, first] {
        w->setClusters(first);
        w->applyConfig(c, {});
      });
    }
    mgr_->start(cfg_, first);
  }
  void TearDown() override {
    for (auto& w : workers_) w->reactor().post([w = w.get()] { w->drain(); });
    for (auto& w : workers_) w->reactor().exit();
    for (auto& w : workers_) w->join();
    mgr_.reset();
    workers_.clear();
  }
  // on0 runs fn on worker 0's thread and waits for it.
  template <class Fn>
  void on0(Fn fn) {
    std::promise<void> done;
    workers_[0]->reactor().post([&] {
      fn();
      done.set_value();
    });
    done.get_future().get();
  }
  bool set(DynamicCluster d) {
    bool ok = false;
    on0([&] { ok = workers_[0]->clusterUpdater()->setCluster(std::move(d)); });
    return ok;
  }
  ClusterPtr svc() const {
    ClusterSetPtr s = mgr_->current();
    return s ? s->find("svc") : nullptr;
  }

  ConfigPtr cfg_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> ptrs_;
  std::unique_ptr<ClusterManager> mgr_;
};

TEST_F(ClusterManagerTest, EndpointsThatStayKeepTheirCountersWhereverTheyMove) {
  start(2);
  ASSERT_TRUE(set(dyn({1, 2, 3, 4, 5}, "v1")));
  ClusterPtr v1 = svc();
  ASSERT_TRUE(v1);
  ASSERT_EQ(v1->endpoints.size(), 5u);
  for (size_t i = 0; i < v1->endpoints.size(); ++i) {
    v1->endpoints[i].stats->worker(1).connections.add(10 + i);
    EXPECT_EQ(v1->endpoints[i].label(), addr(static_cast<int>(i) + 1).str());
  }
  // 1 goes, 6 comes, the rest are reordered (the first miss builds the index), 3 changes weight.
  DynamicCluster d = dyn({5, 3, 6, 2, 4}, "v2");
  d.endpoints[1].weight = 7;
  d.endpoints[3].healthy = false;
  ASSERT_TRUE(set(d));
  ClusterPtr v2 = svc();
  ASSERT_TRUE(v2);
  ASSERT_NE(v2, v1);
  EXPECT_EQ(v2->version, "v2");
  EXPECT_EQ(v2->stats, v1->stats);  // the cluster's own counters stay too
  ASSERT_EQ(v2->endpoints.size(), 5u);
  const int want[] = {5, 3, 6, 2, 4};
  for (size_t i = 0; i < 5; ++i) {
    const ClusterEndpoint& e = v2->endpoints[i];
    EXPECT_EQ(e.address, addr(want[i])) << i;
    EXPECT_EQ(e.weight, d.endpoints[i].weight) << i;
    EXPECT_EQ(e.healthy, d.endpoints[i].healthy) << i;
    if (want[i] == 6) {
      EXPECT_EQ(e.stats->connections(), 0u);
      continue;
    }
    const ClusterEndpoint& before = v1->endpoints[static_cast<size_t>(want[i] - 1)];
    EXPECT_EQ(e.stats, before.stats) << i;
    EXPECT_EQ(e.stats->connections(), 10u + static_cast<uint64_t>(want[i] - 1)) << i;
  }
  EXPECT_TRUE(v2->endpoints[3].name.empty());
  // /clusters shows a module's endpoint under its address.
  const std::string json = mgr_->renderJson();
  EXPECT_NE(json.find("\"name\": \"10.0.0.6:80\", \"address\": \"10.0.0.6:80\""), std::string::npos) << json;
}

TEST_F(ClusterManagerTest, ALargeShiftedUpdateKeepsEveryEndpointThatStays) {
  start(1);
  std::vector<int> a, b;
  for (int i = 0; i < 3000; ++i) a.push_back(1 + i);
  for (int i = 0; i < 3000; ++i) b.push_back(8 + i);  // 7 go at the front, 7 come at the end
  ASSERT_TRUE(set(dyn(a, "1")));
  ClusterPtr v1 = svc();
  ASSERT_TRUE(v1);
  ASSERT_TRUE(set(dyn(b, "2")));
  ClusterPtr v2 = svc();
  ASSERT_TRUE(v2);
  ASSERT_EQ(v2->endpoints.size(), 3000u);
  size_t kept = 0;
  for (size_t i = 0; i < v2->endpoints.size(); ++i) {
    const bool stays = i + 7 < 3000;
    if (stays) {
      ASSERT_EQ(v2->endpoints[i].stats, v1->endpoints[i + 7].stats) << i;
      ++kept;
    } else {
      for (const auto& old : v1->endpoints) ASSERT_NE(v2->endpoints[i].stats, old.stats) << i;
    }
  }
  EXPECT_EQ(kept, 2993u);
}

TEST_F(ClusterManagerTest, AnUnchangedUpdatePublishesNothingAndRemovalDropsTheCluster) {
  start(1);
  ASSERT_TRUE(set(dyn({1, 2}, "v1")));
  ClusterSetPtr s1 = mgr_->current();
  ASSERT_TRUE(set(dyn({1, 2}, "v1")));
  EXPECT_EQ(mgr_->current(), s1);
  on0([&] { workers_[0]->clusterUpdater()->removeCluster("svc"); });
  EXPECT_FALSE(svc());
  EXPECT_TRUE(mgr_->current()->newerThan(*s1));
}

TEST_F(ClusterManagerTest, MoreWorkersThanInlineSlotsCountEach) {
  EndpointStats s(EndpointStats::kInlineWorkers + 3);
  for (size_t i = 0; i < EndpointStats::kInlineWorkers + 3; ++i) {
    s.worker(i).connections.add(i + 1);
    s.worker(i).active.inc();
  }
  const uint64_t n = EndpointStats::kInlineWorkers + 3;
  EXPECT_EQ(s.connections(), n * (n + 1) / 2);
  EXPECT_EQ(s.active(), static_cast<int64_t>(n));
  EXPECT_EQ(s.activeOn(n - 1), 1);
  EndpointStats one(1);
  one.worker(5).connectFailures.add();  // clamped to slot 0
  EXPECT_EQ(one.connectFailures(), 1u);
}

}  // namespace
}  // namespace ugate
