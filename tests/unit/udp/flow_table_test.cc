// FlowTable under simulated time: lookups, least-recently-used order, idle expiry and the cap,
// plus a randomized run against a plain reference model.
#include <ugate/flow_table.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace ugate::udp {
namespace {

SocketAddress addr(const char* s) { return *SocketAddress::parse(s); }

struct Entries {
  std::vector<std::unique_ptr<FlowEntry>> all;
  FlowEntry* make(const char* client, const char* dst = nullptr) {
    auto e = std::make_unique<FlowEntry>();
    e->key.client = addr(client);
    if (dst) e->key.origDst = addr(dst);
    all.push_back(std::move(e));
    return all.back().get();
  }
};

const MonotonicTime t0{std::chrono::hours(1)};

TEST(FlowTable, FindByClientAndOriginalDestination) {
  FlowTable t(10, 60s);
  Entries es;
  FlowEntry* a = es.make("10.0.0.1:1000");
  FlowEntry* b = es.make("10.0.0.1:1000", "10.9.9.9:53");
  FlowEntry* c = es.make("[fd00::1]:1000", "[fd00::9]:53");
  t.insert(a, t0);
  t.insert(b, t0);
  t.insert(c, t0);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.find(FlowKey{addr("10.0.0.1:1000"), {}}), a);
  EXPECT_EQ(t.find(FlowKey{addr("10.0.0.1:1000"), addr("10.9.9.9:53")}), b);
  EXPECT_EQ(t.find(FlowKey{addr("10.0.0.1:1000"), addr("10.9.9.9:54")}), nullptr);
  EXPECT_EQ(t.find(FlowKey{addr("10.0.0.1:1001"), {}}), nullptr);
  EXPECT_EQ(t.find(FlowKey{addr("[fd00::1]:1000"), addr("[fd00::9]:53")}), c);
  t.remove(b);
  EXPECT_EQ(t.find(FlowKey{addr("10.0.0.1:1000"), addr("10.9.9.9:53")}), nullptr);
  t.remove(b);  // twice: no-op
  EXPECT_EQ(t.size(), 2u);
}

TEST(FlowTable, IdleExpiryUnderSimulatedTime) {
  FlowTable t(10, 60s);
  Entries es;
  FlowEntry* a = es.make("10.0.0.1:1");
  FlowEntry* b = es.make("10.0.0.2:1");
  FlowEntry* c = es.make("10.0.0.3:1");
  EXPECT_FALSE(t.nextDeadline());
  t.insert(a, t0);
  t.insert(b, t0 + 10s);
  t.insert(c, t0 + 20s);
  EXPECT_EQ(*t.nextDeadline(), t0 + 60s);
  EXPECT_EQ(t.expiredAt(t0 + 59999ms), nullptr);
  // A datagram on a at 30 s: b is now the oldest.
  t.touch(a, t0 + 30s);
  EXPECT_EQ(t.oldest(), b);
  EXPECT_EQ(*t.nextDeadline(), t0 + 70s);
  EXPECT_EQ(t.expiredAt(t0 + 69999ms), nullptr);
  EXPECT_EQ(t.expiredAt(t0 + 70s), b);
  t.remove(b);
  EXPECT_EQ(t.expiredAt(t0 + 70s), nullptr);
  EXPECT_EQ(*t.nextDeadline(), t0 + 80s);  // c
  EXPECT_EQ(t.expiredAt(t0 + 90s), c);
  t.remove(c);
  EXPECT_EQ(t.expiredAt(t0 + 90s), a);
  t.remove(a);
  EXPECT_EQ(t.expiredAt(t0 + 1000s), nullptr);
  EXPECT_FALSE(t.nextDeadline());
}

TEST(FlowTable, CapAndLeastRecentlyUsedOrder) {
  FlowTable t(3, 60s);
  Entries es;
  FlowEntry* a = es.make("10.0.0.1:1");
  FlowEntry* b = es.make("10.0.0.2:1");
  FlowEntry* c = es.make("10.0.0.3:1");
  t.insert(a, t0);
  t.insert(b, t0 + 1s);
  EXPECT_FALSE(t.full());
  t.insert(c, t0 + 2s);
  EXPECT_TRUE(t.full());
  EXPECT_EQ(t.oldest(), a);
  t.touch(a, t0 + 3s);  // a is used again: b becomes the one to evict
  EXPECT_EQ(t.oldest(), b);
  t.touch(c, t0 + 4s);
  EXPECT_EQ(t.oldest(), b);
  t.remove(b);
  EXPECT_EQ(t.oldest(), a);
  t.touch(a, t0 + 5s);  // touching the newest twice keeps the order intact
  t.touch(a, t0 + 6s);
  EXPECT_EQ(t.oldest(), c);
  t.setLimits(1, 10s);
  EXPECT_TRUE(t.full());
  EXPECT_EQ(t.expiredAt(t0 + 14s), c);
}

// Randomized: the table and a map from key to last activity agree on size, lookups, the oldest
// flow and expiry after every operation.
TEST(FlowTable, MatchesReferenceModel) {
  std::mt19937 rng(1234);
  FlowTable t(50, 30s);
  std::vector<std::unique_ptr<FlowEntry>> pool;
  std::map<int, std::pair<MonotonicTime, uint64_t>> model;  // client port -> (last activity, seq)
  std::map<int, FlowEntry*> byPort;
  uint64_t seq = 0;
  MonotonicTime now = t0;
  // modelOldest: the model's least recently used flow, smallest (time, seq); also drops it.
  auto popModelOldest = [&]() {
    auto it = std::min_element(model.begin(), model.end(),
                               [](const auto& x, const auto& y) { return x.second < y.second; });
    std::pair<FlowEntry*, MonotonicTime> out{byPort[it->first], it->second.first};
    byPort.erase(it->first);
    model.erase(it);
    return out;
  };
  auto key = [](int port) { return FlowKey{*SocketAddress::fromIp("10.1.2.3", static_cast<uint16_t>(port)), {}}; };
  for (int step = 0; step < 20000; ++step) {
    now += std::chrono::milliseconds(rng() % 700);
    int port = 1 + static_cast<int>(rng() % 80);
    FlowEntry* e = t.find(key(port));
    ASSERT_EQ(e != nullptr, model.count(port) == 1) << step;
    if (e) {
      if (rng() % 5 == 0) {
        t.remove(e);
        model.erase(port);
        byPort.erase(port);
      } else {
        t.touch(e, now);
        model[port] = {now, ++seq};
      }
    } else {
      if (t.full()) {
        FlowEntry* old = t.oldest();
        ASSERT_EQ(old, popModelOldest().first) << step;
        t.remove(old);
      }
      pool.push_back(std::make_unique<FlowEntry>());
      pool.back()->key = key(port);
      t.insert(pool.back().get(), now);
      model[port] = {now, ++seq};
      byPort[port] = pool.back().get();
    }
    // Expire like the forwarder's timer does.
    while (FlowEntry* x = t.expiredAt(now)) {
      auto [want, last] = popModelOldest();
      ASSERT_EQ(x, want) << step;
      ASSERT_LE(last + 30s, now);
      t.remove(x);
    }
    ASSERT_EQ(t.size(), model.size());
    for (const auto& [p, v] : model) ASSERT_GT(v.first + 30s, now);
  }
}

}  // namespace
}  // namespace ugate::udp
