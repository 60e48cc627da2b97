#pragma once
// LogThrottle: at most one log line per interval for one kind of event, with a count of the lines
// left out. For events a stranger can cause at any rate (junk on a public port): the counters and
// the access log record every one; the log says that it happens and how often.
#include <cstdint>

#include <ugate/time.h>

namespace ugate {

class LogThrottle {
 public:
  explicit LogThrottle(Duration interval = Duration(10'000)) : interval_(interval) {}

  /**
   * allow: whether the event seen at `now` may be logged. On true, `suppressed` is the number of
   * events since the last line that were not logged (0 for the first line). Single-threaded: one
   * throttle per worker (or per main thread).
   */
  bool allow(MonotonicTime now, uint64_t& suppressed) {
    if (logged_ && now - last_ < interval_) {
      ++suppressed_;
      return false;
    }
    logged_ = true;
    last_ = now;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }
  Duration interval() const { return interval_; }

 private:
  Duration interval_;
  MonotonicTime last_{};
  uint64_t suppressed_{0};
  bool logged_{false};
};

}  // namespace ugate
