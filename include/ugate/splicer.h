#pragma once
// Splicer: joins two Streams, copying both directions with half-close propagation and backpressure.
// When both ends are kernel sockets and a direction moves bulk data, bytes go socket -> pipe -> socket
// with splice(2) and never enter userland. Small exchanges use one per-worker scratch buffer; only
// bytes the destination could not take are parked in a per-direction buffer, freed once written.
#include <cstdint>
#include <algorithm>
#include <memory>
#include <string>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/stats.h>
#include <ugate/stream.h>

#include <ugate/pipe_pool.h>

namespace ugate {

/** SpliceContext: per-worker resources shared by all splicers of a reactor. */
struct SpliceContext {
  Reactor& reactor;
  PipePool& pipes;
  uint8_t* scratch;     // shared copy buffer; used only within one call
  size_t scratchSize;
  enum class Mode : uint8_t { Auto, Always, Never } mode{Mode::Auto};
};

class SplicerCallbacks {
 public:
  virtual ~SplicerCallbacks() = default;
  /** onSpliceDone: both directions finished cleanly (EOF seen and forwarded each way). The owner
   *  must then close both streams: for a kernel socket (spliceFd() >= 0) the last FIN is left to
   *  close(), which sends it (its input was read to EOF), saving a shutdown(2) per connection. */
  virtual void onSpliceDone() = 0;
  /** onSpliceError: a read or write failed; fromClient tells which side's failure. */
  virtual void onSpliceError(Errc reason, bool clientSide) = 0;
};

class Splicer final : private StreamCallbacks {
 public:
  /** a is the client (downstream), b the upstream. Neither is owned. */
  Splicer(SpliceContext& ctx, Stream& a, Stream& b, SplicerCallbacks& cb);
  ~Splicer() override;

  /**
   * setPrefix queues bytes to write before anything read: dir 0 toward b (e.g. the bytes a front door
   * peeked), dir 1 toward a (e.g. a SOCKS success reply). Call before start().
   */
  void setPrefix(int dir, const uint8_t* data, size_t len);
  /** setByteCounters: counters advanced as bytes move (a->b, b->a), so /stats is live. */
  void setByteCounters(Counter* aToB, Counter* bToA) {
    dirs_[0].counter = aToB;
    dirs_[1].counter = bToA;
  }
  /** start begins moving bytes (there may already be readiness to act on). */
  void start();
  /** stop detaches from both streams and drops in-flight bytes (pipes discarded). */
  void stop();

  /**
   * InFlight: one direction's state for carrying the connection to another process (an upgrade):
   * bytes in its pipe and parked, bytes moved so far, and whether its EOF was forwarded.
   */
  struct InFlight {
    Pipe pipe;
    size_t inPipe{0};
    std::string parked;
    uint64_t bytes{0};
    bool finished{false};
  };
  /** parkedBytes: the most bytes parked in userland in one direction now. */
  size_t parkedBytes() const { return std::max(dirs_[0].parkedLen, dirs_[1].parkedLen); }
  /**
   * detach stops moving bytes and gives up both directions' in-flight state (the pipes too: the
   * caller owns them). The streams are left as they are; the splicer is finished.
   */
  void detach(InFlight out[2]);
  /** restore: before start(), carry on from another splicer's detach() (takes the pipes). */
  void restore(InFlight in[2]);

  uint64_t bytesAtoB() const { return dirs_[0].bytes; }
  uint64_t bytesBtoA() const { return dirs_[1].bytes; }
  MonotonicTime lastActivity() const { return lastActivity_; }
  bool usedSplice() const { return dirs_[0].spliced || dirs_[1].spliced; }

 private:
  struct Direction {
    Stream* src{nullptr};
    Stream* dst{nullptr};
    Pipe pipe;
    size_t inPipe{0};
    std::unique_ptr<uint8_t[]> parked;  // bytes read but not yet written
    uint32_t parkedOff{0};
    uint32_t parkedLen{0};
    uint64_t bytes{0};
    Counter* counter{nullptr};
    uint8_t fullReads{0};  // consecutive reads that filled the scratch buffer
    bool useSplice{false};
    bool spliced{false};
    bool srcEof{false};
    bool finished{false};  // EOF forwarded (shutdownWrite sent)
    bool scheduled{false};
  };

  // ugate::StreamCallbacks
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream& s) override;

  void pump(int d);
  // Each returns false when the splicer failed (callbacks already invoked).
  bool flush(Direction& d, bool& blocked);
  bool pumpSplice(Direction& d, size_t& budget, bool& blocked);
  bool pumpCopy(Direction& d, size_t& budget, bool& blocked);
  void fail(int err, bool clientSide);
  void releasePipe(Direction& d);
  void moved(Direction& d, uint64_t n);
  void maybeDone();

  SpliceContext& ctx_;
  SplicerCallbacks& cb_;
  Direction dirs_[2];
  MonotonicTime lastActivity_{};
  bool failed_{false};
  bool done_{false};
  std::shared_ptr<bool> alive_;  // alive_ guards deferred re-runs against destruction
};

}  // namespace ugate
