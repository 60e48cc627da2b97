#pragma once
// AccessLogSink: where a stream's access-log line goes when the stream ends.
#include <ugate/stream.h>

namespace ugate {

/**
 * AccessLogSink: one call per stream, at its end, on the worker's thread. Implementations buffer
 * (the worker's writes one JSON line per stream, flushed once per loop turn) and never block.
 */
class AccessLogSink {
 public:
  virtual ~AccessLogSink() = default;
  /** log records meta (close reason, bytes, addresses, route) as one line. */
  virtual void log(const StreamMeta& meta) = 0;
};

}  // namespace ugate
