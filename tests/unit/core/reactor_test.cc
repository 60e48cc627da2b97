// The real epoll reactor: cross-thread post(), defer(), deferred deletion, real-time timers,
// removeFd() inside a dispatch batch and exit().
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <ugate/reactor.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ugate {
namespace {

using Clock = std::chrono::steady_clock;

// Watchdog exits a reactor from another thread if a test hangs, so a bug fails instead of blocking.
class Watchdog {
 public:
  Watchdog(Reactor& r, std::chrono::milliseconds limit)
      : thread_([this, &r, limit] {
          auto deadline = Clock::now() + limit;
          while (!done_.load() && Clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
          if (!done_.load()) {
            fired_.store(true);
            r.exit();
          }
        }) {}
  ~Watchdog() {
    done_.store(true);
    thread_.join();
  }
  bool fired() const { return fired_.load(); }

 private:
  std::atomic<bool> done_{false};
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

// EventFd is a non-blocking eventfd with a readiness watcher that records into a shared log.
class EventFd : public IoWatcher {
 public:
  EventFd(std::string name, std::vector<std::string>& log)
      : name_(std::move(name)), log_(log), fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~EventFd() override { ::close(fd_); }
  int fd() const { return fd_; }
  void signal() {
    uint64_t one = 1;
    ASSERT_EQ(::write(fd_, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }
  void onIoEvent(uint32_t events) override {
    log_.push_back(name_);
    uint64_t v;
    while (::read(fd_, &v, sizeof(v)) > 0) {
    }
    if (onEvent) {
      onEvent(events);
    }
  }
  std::function<void(uint32_t)> onEvent;

 private:
  std::string name_;
  std::vector<std::string>& log_;
  int fd_;
};

class ReactorTest : public testing::Test {
 protected:
  ReactorPtr reactor_ = newReactor(realTimeSource(), 7);
};

TEST_F(ReactorTest, IndexAndThreadIdentity) {
  EXPECT_EQ(reactor_->index(), 7);
  EXPECT_FALSE(reactor_->isThisThread()) << "not running yet";
  bool inside = false;
  reactor_->post([&] {
    inside = reactor_->isThisThread();
    reactor_->exit();
  });
  reactor_->run();
  EXPECT_TRUE(inside);
  EXPECT_FALSE(reactor_->isThisThread()) << "run() has returned";
}

TEST_F(ReactorTest, PostFromOtherThreadsRunsOnReactorThreadInOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  Watchdog dog(*reactor_, std::chrono::seconds(5));
  const auto reactorThread = std::this_thread::get_id();
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> wrongThread{0};
  int total = 0;
  std::atomic<bool> go{false};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      for (int i = 0; i < kPerThread; ++i) {
        reactor_->post([&, t, i] {
          if (std::this_thread::get_id() != reactorThread || !reactor_->isThisThread()) {
            wrongThread.fetch_add(1);
          }
          seen[t].push_back(i);
          if (++total == kThreads * kPerThread) {
            reactor_->exit();
          }
        });
        if (i % 256 == 0) {
          std::this_thread::sleep_for(
              std::chrono::microseconds(50));  // let the loop sleep sometimes
        }
      }
    });
  }
  // Start posting only once run() is (about to be) blocked, to exercise the eventfd wake-up.
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    go.store(true);
  });
  reactor_->run();
  starter.join();
  for (auto& p : posters) {
    p.join();
  }
  ASSERT_FALSE(dog.fired()) << "posted tasks did not all run";
  EXPECT_EQ(total, kThreads * kPerThread);
  EXPECT_EQ(wrongThread.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) {
      ASSERT_EQ(seen[t][i], i) << "thread " << t << " tasks out of order";
    }
  }
}

TEST_F(ReactorTest, PostBeforeRunAndFromReactorThreadRuns) {
  std::vector<int> order;
  reactor_->post([&] {
    order.push_back(1);
    // A post from the reactor thread itself needs no wake-up but must still run.
    reactor_->post([&] {
      order.push_back(3);
      reactor_->exit();
    });
  });
  reactor_->post([&] { order.push_back(2); });
  Watchdog dog(*reactor_, std::chrono::seconds(2));
  reactor_->run();
  ASSERT_FALSE(dog.fired());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_F(ReactorTest, ExitFromAnotherThreadStopsIdleRun) {
  // No fds, no timers: epoll_wait sleeps with no timeout, so only the wake-up can end it.
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reactor_->exit();
  });
  auto start = Clock::now();
  Watchdog dog(*reactor_, std::chrono::seconds(3));
  reactor_->run();
  auto took = Clock::now() - start;
  t.join();
  EXPECT_FALSE(dog.fired()) << "exit() from another thread did not wake the loop";
  EXPECT_GE(took, std::chrono::milliseconds(40));
  EXPECT_LT(took, std::chrono::milliseconds(1000));
}

TEST_F(ReactorTest, ExitFromAnotherThreadWhileTimerArmedFarAway) {
  bool fired = false;
  TimerPtr far = reactor_->createTimer([&] { fired = true; });
  far->enable(std::chrono::milliseconds(30'000));
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    reactor_->exit();
  });
  auto start = Clock::now();
  reactor_->run();
  t.join();
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1000));
  EXPECT_FALSE(fired);
}

TEST_F(ReactorTest, PostsQueuedBeforeExitStillRun) {
  std::atomic<int> ran{0};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reactor_->post([&] { ran.fetch_add(1); });
    reactor_->exit();
  });
  reactor_->run();
  t.join();
  EXPECT_EQ(ran.load(), 1) << "a task posted before exit() was lost";
}

TEST_F(ReactorTest, DeferRunsLaterNotInline) {
  std::vector<std::string> log;
  reactor_->post([&] {
    reactor_->defer([&] { log.push_back("deferred-1"); });
    reactor_->defer([&] {
      log.push_back("deferred-2");
      reactor_->defer([&] {
        log.push_back("deferred-nested");
        reactor_->exit();
      });
    });
    log.push_back("task-end");
  });
  Watchdog dog(*reactor_, std::chrono::seconds(2));
  reactor_->run();
  ASSERT_FALSE(dog.fired());
  EXPECT_EQ(log,
            (std::vector<std::string>{"task-end", "deferred-1", "deferred-2", "deferred-nested"}));
}

TEST_F(ReactorTest, DeferRunsAfterAllReadyFdsOfTheTurn) {
  std::vector<std::string> log;
  EventFd a("fd-a", log);
  EventFd b("fd-b", log);
  ASSERT_TRUE(reactor_->addFd(a.fd(), &a, EPOLLIN));
  ASSERT_TRUE(reactor_->addFd(b.fd(), &b, EPOLLIN));
  a.onEvent = [&](uint32_t) { reactor_->defer([&] { log.push_back("defer-a"); }); };
  b.onEvent = [&](uint32_t) { reactor_->defer([&] { log.push_back("defer-b"); }); };
  a.signal();
  b.signal();
  reactor_->post([&] { reactor_->exit(); });  // one turn
  reactor_->run();
  reactor_->removeFd(a.fd(), &a);
  reactor_->removeFd(b.fd(), &b);
  ASSERT_EQ(log.size(), 4u) << testing::PrintToString(log);
  // Both fds are dispatched first (in epoll's order), then the deferred work in defer() order.
  EXPECT_TRUE((log[0] == "fd-a" && log[1] == "fd-b") || (log[0] == "fd-b" && log[1] == "fd-a"));
  EXPECT_EQ(log[2], log[0] == "fd-a" ? "defer-a" : "defer-b");
  EXPECT_EQ(log[3], log[0] == "fd-a" ? "defer-b" : "defer-a");
}

class Tracked : public DeferredDeletable {
 public:
  Tracked(std::atomic<int>& deleted, std::function<void()> onDelete = nullptr)
      : deleted_(deleted), onDelete_(std::move(onDelete)) {}
  ~Tracked() override {
    deleted_.fetch_add(1);
    if (onDelete_) {
      onDelete_();
    }
  }

 private:
  std::atomic<int>& deleted_;
  std::function<void()> onDelete_;
};

TEST_F(ReactorTest, DeferredDeleteFreesAtEndOfTurn) {
  std::atomic<int> deleted{0};
  std::vector<std::string> log;
  // Both tasks are queued before run(), so they run in the same turn.
  reactor_->post([&] {
    auto p = std::make_unique<Tracked>(deleted);
    reactor_->deferredDelete(std::move(p));
    log.push_back(deleted.load() == 0 ? "alive-after-call" : "freed-inline");
    reactor_->defer([&] {
      // Runs in the next turn (defer from a posted task): by then the object is gone.
      log.push_back(deleted.load() == 1 ? "freed-next-turn" : "still-alive-next-turn");
      reactor_->exit();
    });
  });
  reactor_->post(
      [&] { log.push_back(deleted.load() == 0 ? "alive-same-turn" : "freed-too-early"); });
  Watchdog dog(*reactor_, std::chrono::seconds(2));
  reactor_->run();
  ASSERT_FALSE(dog.fired());
  EXPECT_EQ(log,
            (std::vector<std::string>{"alive-after-call", "alive-same-turn", "freed-next-turn"}));
  EXPECT_EQ(deleted.load(), 1);
}

TEST_F(ReactorTest, DeferredDeleteQueuedByADestructorIsFreedInTheSameTurn) {
  std::atomic<int> deleted{0};
  bool checked = false;
  reactor_->post([&] {
    auto inner = std::make_unique<Tracked>(deleted);
    Tracked* raw = inner.release();
    auto outer = std::make_unique<Tracked>(
        deleted, [&, raw] { reactor_->deferredDelete(DeferredDeletablePtr(raw)); });
    reactor_->deferredDelete(std::move(outer));
    reactor_->post([&] {
      checked = true;
      EXPECT_EQ(deleted.load(), 2);
      reactor_->exit();
    });
  });
  reactor_->run();
  EXPECT_TRUE(checked);
  EXPECT_EQ(deleted.load(), 2);
}

TEST_F(ReactorTest, DestructionFreesPendingDeferredDeletes) {
  std::atomic<int> deleted{0};
  {
    ReactorPtr r = newReactor(realTimeSource(), 0);
    r->deferredDelete(std::make_unique<Tracked>(deleted));
    EXPECT_EQ(deleted.load(), 0);
  }
  EXPECT_EQ(deleted.load(), 1);
}

TEST_F(ReactorTest, TimersFireInOrderNotBeforeTheirDeadline) {
  std::vector<int> order;
  std::vector<Clock::duration> when(4);
  auto start = Clock::now();
  TimerPtr t1 = reactor_->createTimer([&] {
    order.push_back(1);
    when[1] = Clock::now() - start;
  });
  TimerPtr t2 = reactor_->createTimer([&] {
    order.push_back(2);
    when[2] = Clock::now() - start;
  });
  TimerPtr t3 = reactor_->createTimer([&] {
    order.push_back(3);
    when[3] = Clock::now() - start;
    reactor_->exit();
  });
  TimerPtr cancelled = reactor_->createTimer([&] { order.push_back(-1); });
  TimerPtr destroyed = reactor_->createTimer([&] { order.push_back(-2); });
  EXPECT_FALSE(t1->enabled());
  // Arm relative to the reactor's cached now, which is no later than `start`.
  reactor_->updateNow();
  start = Clock::now();
  t3->enable(std::chrono::milliseconds(60));
  t1->enable(std::chrono::milliseconds(20));
  t2->enable(std::chrono::milliseconds(40));
  cancelled->enable(std::chrono::milliseconds(10));
  destroyed->enable(std::chrono::milliseconds(30));
  EXPECT_TRUE(t1->enabled());
  cancelled->disable();
  EXPECT_FALSE(cancelled->enabled());
  destroyed.reset();

  Watchdog dog(*reactor_, std::chrono::seconds(2));
  reactor_->run();
  ASSERT_FALSE(dog.fired());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(when[1], std::chrono::milliseconds(19));
  EXPECT_GE(when[2], std::chrono::milliseconds(39));
  EXPECT_GE(when[3], std::chrono::milliseconds(59));
  EXPECT_LT(when[3], std::chrono::milliseconds(500));
  EXPECT_FALSE(t1->enabled());
}

TEST_F(ReactorTest, TimerCallbackCanReArmItself) {
  int count = 0;
  TimerPtr t;
  t = reactor_->createTimer([&] {
    if (++count == 5) {
      reactor_->exit();
      return;
    }
    t->enable(std::chrono::milliseconds(2));
  });
  t->enable(std::chrono::milliseconds(2));
  auto start = Clock::now();
  Watchdog dog(*reactor_, std::chrono::seconds(2));
  reactor_->run();
  ASSERT_FALSE(dog.fired());
  EXPECT_EQ(count, 5);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(9));
}

TEST_F(ReactorTest, NowIsCachedPerTurnAndMonotonic) {
  MonotonicTime a{}, b{}, c{};
  reactor_->post([&] {
    a = reactor_->now();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    b = reactor_->now();  // still the cached value
    c = reactor_->updateNow();
    reactor_->exit();
  });
  reactor_->run();
  EXPECT_EQ(a, b);
  EXPECT_GE(c - a, std::chrono::milliseconds(5));
  EXPECT_EQ(reactor_->now(), c);
}

TEST_F(ReactorTest, EventsDispatchedToWatcher) {
  std::vector<std::string> log;
  EventFd a("fd-a", log);
  uint32_t got = 0;
  a.onEvent = [&](uint32_t ev) {
    got = ev;
    reactor_->exit();
  };
  ASSERT_TRUE(reactor_->addFd(a.fd(), &a, EPOLLIN));
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    a.signal();
  });
  Watchdog dog(*reactor_, std::chrono::seconds(2));
  reactor_->run();
  t.join();
  reactor_->removeFd(a.fd(), &a);
  ASSERT_FALSE(dog.fired());
  EXPECT_EQ(log, (std::vector<std::string>{"fd-a"}));
  EXPECT_TRUE(got & EPOLLIN);
}

// Control for the next test: with nothing removed, both ready fds are dispatched in one turn.
TEST_F(ReactorTest, BothReadyFdsDispatchedInOneTurn) {
  std::vector<std::string> log;
  EventFd a("fd-a", log);
  EventFd b("fd-b", log);
  ASSERT_TRUE(reactor_->addFd(a.fd(), &a, EPOLLIN));
  ASSERT_TRUE(reactor_->addFd(b.fd(), &b, EPOLLIN));
  a.signal();
  b.signal();
  reactor_->post([&] { reactor_->exit(); });
  reactor_->run();
  EXPECT_EQ(log.size(), 2u);
  reactor_->removeFd(a.fd(), &a);
  reactor_->removeFd(b.fd(), &b);
}

TEST_F(ReactorTest, RemoveFdDropsPendingEventsOfThatWatcherInTheSameBatch) {
  std::vector<std::string> log;
  auto a = std::make_unique<EventFd>("fd-a", log);
  auto b = std::make_unique<EventFd>("fd-b", log);
  ASSERT_TRUE(reactor_->addFd(a->fd(), a.get(), EPOLLIN));
  ASSERT_TRUE(reactor_->addFd(b->fd(), b.get(), EPOLLIN));
  // Whichever is dispatched first unregisters the other and destroys it: if the other's pending
  // event were still dispatched it would run on a freed watcher (and log a second entry).
  std::unique_ptr<EventFd> graveyard;
  a->onEvent = [&](uint32_t) {
    reactor_->removeFd(b->fd(), b.get());
    graveyard = std::move(b);
  };
  b->onEvent = [&](uint32_t) {
    reactor_->removeFd(a->fd(), a.get());
    graveyard = std::move(a);
  };
  a->signal();
  b->signal();
  reactor_->post([&] { reactor_->exit(); });  // exactly one turn
  reactor_->run();
  ASSERT_EQ(log.size(), 1u) << "removed watcher still got its pending event: "
                            << testing::PrintToString(log);
  ASSERT_NE(graveyard, nullptr);
  EventFd* survivor = a ? a.get() : b.get();
  ASSERT_NE(survivor, nullptr);
  EXPECT_EQ(log[0], survivor == a.get() ? "fd-a" : "fd-b");
  reactor_->removeFd(survivor->fd(), survivor);
}

TEST_F(ReactorTest, WatcherCanRemoveItselfAndOthersStillDispatch) {
  std::vector<std::string> log;
  EventFd a("fd-a", log);
  EventFd b("fd-b", log);
  ASSERT_TRUE(reactor_->addFd(a.fd(), &a, EPOLLIN));
  ASSERT_TRUE(reactor_->addFd(b.fd(), &b, EPOLLIN));
  a.onEvent = [&](uint32_t) { reactor_->removeFd(a.fd(), &a); };
  b.onEvent = [&](uint32_t) { reactor_->removeFd(b.fd(), &b); };
  a.signal();
  b.signal();
  reactor_->post([&] { reactor_->exit(); });
  reactor_->run();
  EXPECT_EQ(log.size(), 2u) << "removing itself must not drop another watcher's event";
}

}  // namespace
}  // namespace ugate
