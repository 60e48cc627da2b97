// The epoll reactor. One loop turn: epoll_wait -> cache now -> ready fds -> deferred callbacks ->
// expired timers (bounded) -> posted tasks -> deferred deletes.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/timer_queue.h"

namespace ugate {
namespace {

constexpr int kMaxEvents = 256;
constexpr size_t kMaxTimersPerTurn = 4096;

class ReactorImpl final : public Reactor, private IoWatcher {
 public:
  ReactorImpl(TimeSource& ts, int index) : ts_(ts), index_(index) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd_ < 0 || wakeFd_ < 0) {
      spdlog::critical("reactor: epoll/eventfd: {}", strerror(errno));
      std::abort();
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = static_cast<IoWatcher*>(this);
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakeFd_, &ev);
    now_ = ts_.monotonicTime();
    timers_.setNow(now_);
  }

  ~ReactorImpl() override {
    runDeferredDeletes();
    close(wakeFd_);
    close(epfd_);
  }

  bool addFd(int fd, IoWatcher* w, uint32_t events) override {
    epoll_event ev{};
    ev.events = events | EPOLLET;
    ev.data.ptr = w;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  bool modFd(int fd, IoWatcher* w, uint32_t events) override {
    epoll_event ev{};
    ev.events = events | EPOLLET;
    ev.data.ptr = w;
    return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
  }

  void removeFd(int fd, IoWatcher* w) override {
    epoll_event ev{};
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
    // Drop events for w still pending in the batch being dispatched.
    for (int i = dispatchPos_ + 1; i < dispatchCount_; ++i) {
      if (events_[i].data.ptr == w) {
        events_[i].data.ptr = nullptr;
      }
    }
  }

  void forgetFd(IoWatcher* w) override {
    for (int i = dispatchPos_ + 1; i < dispatchCount_; ++i) {
      if (events_[i].data.ptr == w) {
        events_[i].data.ptr = nullptr;
      }
    }
  }

  TimerPtr createTimer(TimerCb cb) override { return timers_.createTimer(std::move(cb)); }

  void post(std::function<void()> fn) override {
    bool wake;
    {
      std::lock_guard<std::mutex> lk(postMu_);
      wake = posted_.empty();
      posted_.push_back(std::move(fn));
    }
    if (wake && !isThisThread()) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(wakeFd_, &one, sizeof(one));
    }
  }

  void defer(std::function<void()> fn) override { deferred_.push_back(std::move(fn)); }

  void deferredDelete(DeferredDeletablePtr p) override { toDelete_.push_back(std::move(p)); }

  MonotonicTime now() const override { return now_; }
  MonotonicTime updateNow() override {
    now_ = ts_.monotonicTime();
    timers_.setNow(now_);
    return now_;
  }

  void run() override {
    thread_.store(std::this_thread::get_id());
    running_.store(true);
    while (!exit_.load(std::memory_order_relaxed)) {
      turn();
    }
    // Run what is left so posted work and deletions are not lost.
    runPosted();
    runDeferredDeletes();
    running_.store(false);
  }

  void exit() override {
    exit_.store(true);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wakeFd_, &one, sizeof(one));
  }

  int index() const override { return index_; }
  bool isThisThread() const override {
    return running_.load(std::memory_order_acquire) && thread_.load() == std::this_thread::get_id();
  }

 private:
  int computeTimeoutMs() {
    if (!deferred_.empty() || !toDelete_.empty()) {
      return 0;
    }
    {
      std::lock_guard<std::mutex> lk(postMu_);
      if (!posted_.empty()) {
        return 0;
      }
    }
    auto next = timers_.nextExpiry();
    if (!next) {
      return -1;
    }
    auto now = ts_.monotonicTime();
    if (*next <= now) {
      return 0;
    }
    // Round up so we never wake before the deadline and spin.
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(*next - now).count();
    int64_t ms = (us + 999) / 1000;
    return static_cast<int>(std::min<int64_t>(ms, 60'000));
  }

  void turn() {
    int timeout = computeTimeoutMs();
    int n = epoll_wait(epfd_, events_, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("reactor {}: epoll_wait: {}", index_, strerror(errno));
    }
    updateNow();
    dispatchCount_ = n > 0 ? n : 0;
    for (dispatchPos_ = 0; dispatchPos_ < dispatchCount_; ++dispatchPos_) {
      auto* w = static_cast<IoWatcher*>(events_[dispatchPos_].data.ptr);
      if (w == nullptr) {
        continue;
      }
      w->onIoEvent(events_[dispatchPos_].events);
    }
    dispatchCount_ = 0;
    dispatchPos_ = 0;
    runDeferred();
    timers_.runExpired(now_, kMaxTimersPerTurn);
    runPosted();
    runDeferredDeletes();
  }

  // IoWatcher for the wake eventfd.
  void onIoEvent(uint32_t) override {
    uint64_t v;
    while (read(wakeFd_, &v, sizeof(v)) > 0) {
    }
  }

  void runDeferred() {
    if (deferred_.empty()) {
      return;
    }
    std::vector<std::function<void()>> batch;
    batch.swap(deferred_);
    for (auto& fn : batch) {
      fn();
    }
  }

  void runPosted() {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lk(postMu_);
      batch.swap(posted_);
    }
    for (auto& fn : batch) {
      fn();
    }
  }

  void runDeferredDeletes() {
    // Deleting may queue more deletions; loop until stable.
    while (!toDelete_.empty()) {
      std::vector<DeferredDeletablePtr> batch;
      batch.swap(toDelete_);
      batch.clear();
    }
  }

  TimeSource& ts_;
  const int index_;
  int epfd_{-1};
  int wakeFd_{-1};
  MonotonicTime now_{};
  TimerQueue timers_;
  epoll_event events_[kMaxEvents]{};
  int dispatchPos_{0};
  int dispatchCount_{0};
  std::vector<std::function<void()>> deferred_;
  std::vector<DeferredDeletablePtr> toDelete_;
  std::mutex postMu_;
  std::vector<std::function<void()>> posted_;
  std::atomic<bool> exit_{false};
  std::atomic<bool> running_{false};
  std::atomic<std::thread::id> thread_{};
};

}  // namespace

ReactorPtr newReactor(TimeSource& ts, int index) { return std::make_unique<ReactorImpl>(ts, index); }

}  // namespace ugate
