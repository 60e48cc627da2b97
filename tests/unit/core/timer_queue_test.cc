// TimerQueue in simulated time: nothing here reads a clock. Every test passes `now` explicitly.
#include "core/timer_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace ugate {
namespace {

using std::chrono::milliseconds;

// kT0 is an arbitrary non-zero origin so "deadline 0" bugs cannot hide behind the epoch.
const MonotonicTime kT0 = MonotonicTime{} + std::chrono::hours(1000);

MonotonicTime at(int64_t ms) { return kT0 + milliseconds(ms); }

class TimerQueueTest : public testing::Test {
 protected:
  void SetUp() override { q_.setNow(kT0); }

  // make returns a timer that appends `id` to fired_ when it fires.
  TimerPtr make(int id) {
    return q_.createTimer([this, id] { fired_.push_back(id); });
  }

  TimerQueue q_;
  std::vector<int> fired_;
};

TEST_F(TimerQueueTest, NewTimerIsDisabledAndQueueEmpty) {
  TimerPtr t = make(1);
  EXPECT_FALSE(t->enabled());
  EXPECT_EQ(q_.size(), 0u);
  EXPECT_FALSE(q_.nextExpiry().has_value());
  EXPECT_EQ(q_.runExpired(at(1'000'000)), 0u);
  EXPECT_TRUE(fired_.empty());
}

TEST_F(TimerQueueTest, FiresInDeadlineOrder) {
  TimerPtr t30 = make(30);
  TimerPtr t10 = make(10);
  TimerPtr t20 = make(20);
  TimerPtr t40 = make(40);
  t30->enableAt(at(30));
  t10->enableAt(at(10));
  t40->enableAt(at(40));
  t20->enableAt(at(20));
  EXPECT_EQ(q_.size(), 4u);

  EXPECT_EQ(q_.runExpired(at(9)), 0u);
  EXPECT_TRUE(fired_.empty());

  EXPECT_EQ(q_.runExpired(at(25)), 2u);
  EXPECT_EQ(fired_, (std::vector<int>{10, 20}));
  EXPECT_FALSE(t10->enabled());
  EXPECT_FALSE(t20->enabled());
  EXPECT_TRUE(t30->enabled());
  EXPECT_EQ(q_.size(), 2u);

  // A deadline equal to now is expired.
  EXPECT_EQ(q_.runExpired(at(30)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{10, 20, 30}));

  EXPECT_EQ(q_.runExpired(at(1000)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{10, 20, 30, 40}));
  EXPECT_EQ(q_.size(), 0u);
  EXPECT_EQ(q_.runExpired(at(2000)), 0u);
}

TEST_F(TimerQueueTest, EqualDeadlinesFireInArmingOrder) {
  std::vector<TimerPtr> timers;
  for (int i = 0; i < 50; ++i) {
    timers.push_back(make(i));
  }
  // Arm in a scrambled order; that order is the expected firing order.
  std::vector<int> order(50);
  for (int i = 0; i < 50; ++i) {
    order[i] = (i * 17) % 50;
  }
  for (int id : order) {
    timers[id]->enableAt(at(100));
  }
  EXPECT_EQ(q_.runExpired(at(100)), 50u);
  EXPECT_EQ(fired_, order);
}

TEST_F(TimerQueueTest, ReArmingToSameDeadlineMovesToTheBackOfTies) {
  TimerPtr a = make(1);
  TimerPtr b = make(2);
  TimerPtr c = make(3);
  a->enableAt(at(50));
  b->enableAt(at(50));
  c->enableAt(at(50));
  a->enableAt(at(50));  // re-armed last: now fires last
  EXPECT_EQ(q_.size(), 3u);
  EXPECT_EQ(q_.runExpired(at(50)), 3u);
  EXPECT_EQ(fired_, (std::vector<int>{2, 3, 1}));
}

TEST_F(TimerQueueTest, EnableIsRelativeToQueueNow) {
  TimerPtr t = make(1);
  q_.setNow(at(500));
  t->enable(250ms);
  ASSERT_TRUE(q_.nextExpiry().has_value());
  EXPECT_EQ(*q_.nextExpiry(), at(750));
  EXPECT_EQ(q_.runExpired(at(749)), 0u);
  // runExpired also moves now: a timer armed afterwards is relative to the new now.
  EXPECT_EQ(q_.now(), at(749));
  EXPECT_EQ(q_.runExpired(at(750)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{1}));

  t->enable(0ms);
  EXPECT_EQ(*q_.nextExpiry(), at(750));
  EXPECT_EQ(q_.runExpired(at(750)), 1u);
}

TEST_F(TimerQueueTest, NextExpiryTracksEarliestDeadline) {
  EXPECT_FALSE(q_.nextExpiry().has_value());
  TimerPtr a = make(1);
  TimerPtr b = make(2);
  TimerPtr c = make(3);
  a->enableAt(at(300));
  EXPECT_EQ(q_.nextExpiry(), at(300));
  b->enableAt(at(100));
  EXPECT_EQ(q_.nextExpiry(), at(100));
  c->enableAt(at(200));
  EXPECT_EQ(q_.nextExpiry(), at(100));

  b->disable();
  EXPECT_EQ(q_.nextExpiry(), at(200));
  c.reset();
  EXPECT_EQ(q_.nextExpiry(), at(300));
  a->enableAt(at(5));
  EXPECT_EQ(q_.nextExpiry(), at(5));
  EXPECT_EQ(q_.runExpired(at(5)), 1u);
  EXPECT_FALSE(q_.nextExpiry().has_value());
}

TEST_F(TimerQueueTest, ReArmingMovesTheTimer) {
  TimerPtr t = make(1);
  TimerPtr other = make(2);
  other->enableAt(at(30));
  t->enableAt(at(10));
  t->enableAt(at(50));  // later
  EXPECT_TRUE(t->enabled());
  EXPECT_EQ(q_.size(), 2u) << "re-arming must not queue the timer twice";
  EXPECT_EQ(q_.nextExpiry(), at(30));

  EXPECT_EQ(q_.runExpired(at(40)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{2}));
  EXPECT_EQ(q_.runExpired(at(50)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{2, 1}));

  // Moving earlier works too.
  t->enableAt(at(500));
  t->enableAt(at(60));
  EXPECT_EQ(q_.nextExpiry(), at(60));
  EXPECT_EQ(q_.runExpired(at(60)), 1u);
  EXPECT_EQ(q_.runExpired(at(10'000)), 0u);
  EXPECT_EQ(fired_, (std::vector<int>{2, 1, 1}));
}

TEST_F(TimerQueueTest, DisableCancels) {
  TimerPtr a = make(1);
  TimerPtr b = make(2);
  a->enableAt(at(10));
  b->enableAt(at(20));
  a->disable();
  EXPECT_FALSE(a->enabled());
  EXPECT_EQ(q_.size(), 1u);
  a->disable();  // idempotent
  EXPECT_EQ(q_.size(), 1u);
  EXPECT_EQ(q_.runExpired(at(100)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{2}));

  // A disabled timer can be armed again.
  a->enableAt(at(150));
  EXPECT_EQ(q_.runExpired(at(150)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{2, 1}));
}

TEST_F(TimerQueueTest, DestroyCancels) {
  TimerPtr a = make(1);
  TimerPtr b = make(2);
  TimerPtr c = make(3);
  a->enableAt(at(10));
  b->enableAt(at(10));
  c->enableAt(at(10));
  b.reset();
  EXPECT_EQ(q_.size(), 2u);
  EXPECT_EQ(q_.runExpired(at(10)), 2u);
  EXPECT_EQ(fired_, (std::vector<int>{1, 3}));

  // Destroying a disabled or fired timer is harmless.
  TimerPtr d = make(4);
  d.reset();
  a.reset();
  EXPECT_EQ(q_.size(), 0u);
}

TEST_F(TimerQueueTest, CallbackReArmsItselfRelativeToRunNow) {
  int count = 0;
  TimerPtr t;
  t = q_.createTimer([&] {
    ++count;
    if (count < 5) {
      t->enable(10ms);  // relative to the now passed to runExpired
    }
  });
  t->enableAt(at(10));
  // One runExpired call fires it once: the re-arm lands at now + 10ms, in the future.
  EXPECT_EQ(q_.runExpired(at(10)), 1u);
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(t->enabled());
  EXPECT_EQ(q_.nextExpiry(), at(20));
  EXPECT_EQ(q_.runExpired(at(19)), 0u);
  EXPECT_EQ(q_.runExpired(at(25)), 1u);
  EXPECT_EQ(q_.nextExpiry(), at(35));
  EXPECT_EQ(q_.runExpired(at(35)), 1u);
  EXPECT_EQ(q_.runExpired(at(45)), 1u);
  EXPECT_EQ(q_.runExpired(at(55)), 1u);
  EXPECT_EQ(count, 5);
  EXPECT_FALSE(t->enabled());
  EXPECT_EQ(q_.runExpired(at(1000)), 0u);
}

TEST_F(TimerQueueTest, CallbackReArmingAtAbsoluteDeadlinesCatchesUpInOrder) {
  // A periodic timer that re-arms at its previous deadline + 10ms: a late runExpired catches up,
  // interleaving with another timer strictly by deadline.
  std::vector<std::string> log;
  MonotonicTime next = at(10);
  TimerPtr periodic;
  periodic = q_.createTimer([&] {
    log.push_back("p" + std::to_string((next - kT0) / 1ms));
    next += 10ms;
    if (next <= at(40)) {
      periodic->enableAt(next);
    }
  });
  TimerPtr once = q_.createTimer([&] { log.push_back("o25"); });
  periodic->enableAt(next);
  once->enableAt(at(25));
  EXPECT_EQ(q_.runExpired(at(100)), 5u);
  EXPECT_EQ(log, (std::vector<std::string>{"p10", "p20", "o25", "p30", "p40"}));
}

TEST_F(TimerQueueTest, CallbackDisablesAnotherExpiredTimer) {
  TimerPtr victim = make(2);
  TimerPtr later = make(3);
  TimerPtr killer = q_.createTimer([&] {
    fired_.push_back(1);
    victim->disable();
  });
  killer->enableAt(at(10));
  victim->enableAt(at(20));
  later->enableAt(at(30));
  EXPECT_EQ(q_.runExpired(at(100)), 2u);
  EXPECT_EQ(fired_, (std::vector<int>{1, 3}));
  EXPECT_FALSE(victim->enabled());
  EXPECT_EQ(q_.size(), 0u);
}

TEST_F(TimerQueueTest, CallbackDestroysAnotherExpiredTimer) {
  // Many same-deadline victims so the destroyed timers sit at various heap positions.
  std::vector<TimerPtr> victims;
  for (int i = 0; i < 20; ++i) {
    victims.push_back(make(100 + i));
  }
  TimerPtr killer = q_.createTimer([&] {
    fired_.push_back(1);
    for (size_t i = 0; i < victims.size(); i += 2) {
      victims[i].reset();
    }
  });
  killer->enableAt(at(10));
  for (auto& v : victims) {
    v->enableAt(at(10));
  }
  EXPECT_EQ(q_.runExpired(at(10)), 11u);
  std::vector<int> expected{1};
  for (int i = 1; i < 20; i += 2) {
    expected.push_back(100 + i);
  }
  EXPECT_EQ(fired_, expected);
  EXPECT_EQ(q_.size(), 0u);
}

TEST_F(TimerQueueTest, CallbackDestroysItself) {
  TimerPtr self;
  self = q_.createTimer([&] {
    fired_.push_back(1);
    self.reset();  // nothing of the timer may be touched after this
  });
  TimerPtr after = make(2);
  self->enableAt(at(10));
  after->enableAt(at(10));
  EXPECT_EQ(q_.runExpired(at(10)), 2u);
  EXPECT_EQ(self, nullptr);
  EXPECT_EQ(fired_, (std::vector<int>{1, 2}));
}

TEST_F(TimerQueueTest, CallbackArmsAnotherTimerInTheFuture) {
  TimerPtr b = make(2);
  TimerPtr a = q_.createTimer([&] {
    fired_.push_back(1);
    b->enable(5ms);  // relative to run now (at 10): due at 15
  });
  a->enableAt(at(10));
  EXPECT_EQ(q_.runExpired(at(10)), 1u);
  EXPECT_EQ(q_.nextExpiry(), at(15));
  EXPECT_EQ(q_.runExpired(at(15)), 1u);
  EXPECT_EQ(fired_, (std::vector<int>{1, 2}));
}

TEST_F(TimerQueueTest, RunExpiredRespectsMaxRun) {
  std::vector<TimerPtr> timers;
  for (int i = 0; i < 10; ++i) {
    timers.push_back(make(i));
    timers.back()->enableAt(at(10 - i));  // deadlines 10..1: id 9 is earliest
  }
  TimerPtr future = make(99);
  future->enableAt(at(1000));

  EXPECT_EQ(q_.runExpired(at(100), 0), 0u);
  EXPECT_TRUE(fired_.empty());
  EXPECT_EQ(q_.runExpired(at(100), 3), 3u);
  EXPECT_EQ(fired_, (std::vector<int>{9, 8, 7}));
  EXPECT_EQ(q_.size(), 8u);
  EXPECT_EQ(q_.nextExpiry(), at(4));
  EXPECT_EQ(q_.runExpired(at(100), 1), 1u);
  EXPECT_EQ(fired_.back(), 6);
  // The bound is a maximum, not a quota: only expired timers fire.
  EXPECT_EQ(q_.runExpired(at(100), 100), 6u);
  EXPECT_EQ(fired_, (std::vector<int>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_TRUE(future->enabled());
  EXPECT_EQ(q_.size(), 1u);
}

TEST_F(TimerQueueTest, SelfReArmAtZeroDelayIsBoundedByMaxRun) {
  int count = 0;
  TimerPtr t;
  t = q_.createTimer([&] {
    ++count;
    t->enable(0ms);  // due immediately again
  });
  t->enableAt(at(1));
  EXPECT_EQ(q_.runExpired(at(1), 7), 7u);
  EXPECT_EQ(count, 7);
  EXPECT_TRUE(t->enabled());
}

// ---------------------------------------------------------------------------------------------
// Randomised comparison against a reference model: an ordered set of (deadline, armSeq, id).

class Model {
 public:
  void arm(int id, MonotonicTime when) {
    cancel(id);
    auto key = std::make_tuple(when, ++seq_, id);
    set_.insert(key);
    byId_[id] = key;
  }
  void cancel(int id) {
    auto it = byId_.find(id);
    if (it != byId_.end()) {
      set_.erase(it->second);
      byId_.erase(it);
    }
  }
  bool armed(int id) const { return byId_.count(id) != 0; }
  std::optional<MonotonicTime> next() const {
    if (set_.empty()) {
      return std::nullopt;
    }
    return std::get<0>(*set_.begin());
  }
  // pop removes and returns the earliest id due at `now`, or -1.
  int pop(MonotonicTime now) {
    if (set_.empty() || std::get<0>(*set_.begin()) > now) {
      return -1;
    }
    int id = std::get<2>(*set_.begin());
    byId_.erase(id);
    set_.erase(set_.begin());
    return id;
  }
  size_t size() const { return set_.size(); }

 private:
  using Key = std::tuple<MonotonicTime, uint64_t, int>;
  std::set<Key> set_;
  std::map<int, Key> byId_;
  uint64_t seq_{0};
};

TEST(TimerQueueRandomTest, TenThousandTimersMatchReferenceModel) {
  constexpr int kTimers = 10'000;
  std::mt19937 rng(20240611);
  TimerQueue q;
  q.setNow(kT0);
  Model model;

  // Each timer may, when it fires, cancel (or destroy) a victim chosen up front, so the real
  // queue and the model can apply the same mutation at the same point.
  std::vector<TimerPtr> timers(kTimers);
  std::vector<int> victim(kTimers, -1);
  std::vector<bool> victimDestroy(kTimers, false);
  std::vector<int> fireCount(kTimers, 0);
  std::vector<int> actual;
  actual.reserve(kTimers);
  std::vector<MonotonicTime> firedAt(kTimers);
  MonotonicTime runNow = kT0;

  for (int i = 0; i < kTimers; ++i) {
    timers[i] = q.createTimer([&, i] {
      ++fireCount[i];
      actual.push_back(i);
      firedAt[i] = runNow;
      int v = victim[i];
      if (v >= 0 && timers[v]) {
        if (victimDestroy[i]) {
          timers[v].reset();
        } else {
          timers[v]->disable();
        }
      }
    });
    if (rng() % 10 == 0) {
      victim[i] = static_cast<int>(rng() % kTimers);
      victimDestroy[i] = rng() % 2 == 0;
    }
  }

  // Arm with coarse deadlines (0..2000 ms) so many deadlines tie; re-arm some; cancel ~20%.
  for (int i = 0; i < kTimers; ++i) {
    auto when = at(rng() % 2001);
    timers[i]->enableAt(when);
    model.arm(i, when);
  }
  for (int k = 0; k < kTimers / 5; ++k) {
    int i = static_cast<int>(rng() % kTimers);
    auto when = at(rng() % 2001);
    timers[i]->enableAt(when);
    model.arm(i, when);
  }
  std::vector<bool> cancelled(kTimers, false);
  for (int k = 0; k < kTimers / 5; ++k) {
    int i = static_cast<int>(rng() % kTimers);
    if (!timers[i]) {
      continue;
    }
    if (rng() % 2 == 0) {
      timers[i]->disable();
    } else {
      timers[i].reset();
    }
    model.cancel(i);
    cancelled[i] = true;
  }
  ASSERT_EQ(q.size(), model.size());
  ASSERT_EQ(q.nextExpiry(), model.next());

  // Advance simulated time in random steps with random maxRun bounds, replaying each run in the
  // model, then compare the exact firing sequence.
  std::vector<int> expected;
  expected.reserve(kTimers);
  int64_t nowMs = 0;
  while (model.size() > 0 || q.size() > 0) {
    nowMs += static_cast<int64_t>(rng() % 40);
    runNow = at(nowMs);
    size_t maxRun = rng() % 4 == 0 ? static_cast<size_t>(rng() % 8) : SIZE_MAX;

    size_t modelFired = 0;
    while (modelFired < maxRun) {
      int id = model.pop(runNow);
      if (id < 0) {
        break;
      }
      ++modelFired;
      expected.push_back(id);
      if (victim[id] >= 0) {
        model.cancel(victim[id]);
      }
    }
    size_t fired = q.runExpired(runNow, maxRun);
    ASSERT_EQ(fired, modelFired) << "at " << nowMs << " ms";
    ASSERT_EQ(q.size(), model.size()) << "at " << nowMs << " ms";
    ASSERT_EQ(q.nextExpiry(), model.next()) << "at " << nowMs << " ms";
    ASSERT_LT(nowMs, 1'000'000) << "queue never drained";
  }
  EXPECT_EQ(actual, expected);

  // Every timer fired at most once, never before its deadline, and only if it was not cancelled
  // before its deadline.
  size_t firedTotal = 0;
  for (int i = 0; i < kTimers; ++i) {
    ASSERT_LE(fireCount[i], 1) << "timer " << i;
    if (cancelled[i]) {
      EXPECT_EQ(fireCount[i], 0) << "cancelled timer " << i << " fired";
    }
    firedTotal += static_cast<size_t>(fireCount[i]);
  }
  EXPECT_EQ(firedTotal, actual.size());
  EXPECT_GT(firedTotal, static_cast<size_t>(kTimers / 2));  // the test exercised something
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.nextExpiry().has_value());
}

TEST(TimerQueueRandomTest, FiresNeverEarlyAndInNonDecreasingDeadlineOrder) {
  std::mt19937 rng(7);
  TimerQueue q;
  q.setNow(kT0);
  constexpr int kTimers = 10'000;
  std::vector<MonotonicTime> deadline(kTimers);
  std::vector<std::pair<MonotonicTime, MonotonicTime>> fires;  // (deadline, run now)
  MonotonicTime runNow = kT0;
  std::vector<TimerPtr> timers;
  for (int i = 0; i < kTimers; ++i) {
    timers.push_back(q.createTimer([&, i] { fires.emplace_back(deadline[i], runNow); }));
    deadline[i] = at(static_cast<int64_t>(rng() % 100'000));
    timers[i]->enableAt(deadline[i]);
  }
  for (int64_t ms = 0; ms <= 100'000; ms += 997) {
    runNow = at(ms);
    q.runExpired(runNow);
  }
  runNow = at(200'000);
  q.runExpired(runNow);
  ASSERT_EQ(fires.size(), static_cast<size_t>(kTimers));
  for (size_t i = 0; i < fires.size(); ++i) {
    EXPECT_LE(fires[i].first, fires[i].second) << "fired early";
    if (i > 0) {
      EXPECT_LE(fires[i - 1].first, fires[i].first) << "out of order at " << i;
    }
  }
}

}  // namespace
}  // namespace ugate
