#pragma once
// AccessLog: one JSON line per stream at close, buffered per worker and written once per loop turn.
#include <string>

#include <ugate/json_writer.h>
#include <ugate/access_log_sink.h>
#include <ugate/reactor.h>
#include <ugate/stream.h>

namespace ugate {

class AccessLog final : public AccessLogSink {
 public:
  /** fd: where lines go (-1 = disabled). Not owned. */
  AccessLog(Reactor& r, int fd) : reactor_(r), fd_(fd) {}
  ~AccessLog() override { flush(); }
  void setFd(int fd) {
    flush();
    fd_ = fd;
  }
  bool enabled() const { return fd_ >= 0; }
  /** log formats meta as one JSON line; duration is measured against the reactor's now. */
  void log(const StreamMeta& meta) override;
  void flush();

  /** formatLine is the pure formatter (exposed for tests). */
  static void formatLine(std::string& out, const StreamMeta& meta, MonotonicTime now,
                         std::chrono::system_clock::time_point wall);

 private:
  Reactor& reactor_;
  int fd_;
  std::string buf_;
  bool flushScheduled_{false};
};

}  // namespace ugate
