#pragma once
// Time is injected: nothing on the data path calls a clock directly.
#include <chrono>

namespace ugate {

using MonotonicTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::milliseconds;
using std::chrono_literals::operator""ms;
using std::chrono_literals::operator""s;

/** TimeSource: where a Reactor reads the time. Real in production, simulated in tests. */
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  /** monotonicTime returns the current monotonic time. Thread-safe. */
  virtual MonotonicTime monotonicTime() = 0;
  /** systemTime returns wall-clock time (for logs only). */
  virtual std::chrono::system_clock::time_point systemTime() = 0;
};

/** realTimeSource returns the process-wide real clock. */
TimeSource& realTimeSource();

}  // namespace ugate
