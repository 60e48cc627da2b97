#pragma once
// TimerQueue: a 4-ary min-heap of timers, sans-I/O (time is passed in). Insert/cancel O(log n), the
// next expiry O(1) so the reactor sleeps exactly until it. Timeouts that are re-armed on every byte
// (idle timers) are not re-armed here: their owners keep a last-activity time and re-check on expiry.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <ugate/reactor.h>

namespace ugate {

class TimerQueue;

class TimerImpl final : public Timer {
 public:
  TimerImpl(TimerQueue& q, TimerCb cb) : q_(q), cb_(std::move(cb)) {}
  ~TimerImpl() override;
  // ugate::Timer
  void enable(Duration d) override;
  void enableAt(MonotonicTime t) override;
  void disable() override;
  bool enabled() const override { return heapIndex_ != kNotQueued; }

 private:
  friend class TimerQueue;
  static constexpr size_t kNotQueued = SIZE_MAX;
  TimerQueue& q_;
  TimerCb cb_;
  MonotonicTime when_{};
  uint64_t seq_{0};  // seq_ breaks ties so equal deadlines fire in arming order
  size_t heapIndex_{kNotQueued};
};

class TimerQueue {
 public:
  /** createTimer returns a disabled timer bound to this queue. */
  TimerPtr createTimer(TimerCb cb) { return std::make_unique<TimerImpl>(*this, std::move(cb)); }
  /** setNow sets the time relative timers are armed from (the reactor's cached now). */
  void setNow(MonotonicTime now) { now_ = now; }
  MonotonicTime now() const { return now_; }
  /** nextExpiry returns the earliest deadline, if any timer is armed. */
  std::optional<MonotonicTime> nextExpiry() const;
  /**
   * runExpired sets now and fires up to maxRun timers whose deadline is <= now, earliest first.
   * Callbacks may arm, disable or destroy any timer. Returns the number fired.
   */
  size_t runExpired(MonotonicTime now, size_t maxRun = SIZE_MAX);
  size_t size() const { return heap_.size(); }

 private:
  friend class TimerImpl;
  void schedule(TimerImpl* t, MonotonicTime when);
  void remove(TimerImpl* t);
  static bool less(const TimerImpl* a, const TimerImpl* b) {
    return a->when_ < b->when_ || (a->when_ == b->when_ && a->seq_ < b->seq_);
  }
  void siftUp(size_t i);
  void siftDown(size_t i);
  void place(size_t i, TimerImpl* t) {
    heap_[i] = t;
    t->heapIndex_ = i;
  }

  std::vector<TimerImpl*> heap_;
  MonotonicTime now_{};
  uint64_t seq_{0};
};

}  // namespace ugate
