#pragma once
// SimulatedTime: a clock for reactors under test, advanced by hand (timers fire without sleeping).
#include <ugate/time.h>

#include <chrono>
#include <mutex>

namespace ugate::test {

/** SimulatedTime: monotonic time starts at an arbitrary point and moves only by advance().
 * Thread-safe. */
class SimulatedTime final : public TimeSource {
 public:
  MonotonicTime monotonicTime() override {
    std::lock_guard<std::mutex> lk(mu_);
    return now_;
  }
  std::chrono::system_clock::time_point systemTime() override {
    return std::chrono::system_clock::now();
  }
  void advance(Duration d) {
    std::lock_guard<std::mutex> lk(mu_);
    now_ += d;
  }

 private:
  std::mutex mu_;
  MonotonicTime now_{std::chrono::hours(1000)};
};

}  // namespace ugate::test
