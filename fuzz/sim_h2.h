#pragma once
// Shared by the fuzzers that run an HTTP/2 server connection without sockets (h2_server_fuzz.cc,
// grpc_server_fuzz.cc): a reactor on a hand-advanced clock and an in-memory transport that feeds
// the client's bytes and swallows the server's.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/stream.h>

#include "core/timer_queue.h"

namespace ugate::fuzz {

// SimReactor: timers, defer and deferred deletes on a hand-advanced clock; no fds.
class SimReactor final : public Reactor {
 public:
  bool addFd(int, IoWatcher*, uint32_t) override { return true; }
  bool modFd(int, IoWatcher*, uint32_t) override { return true; }
  void removeFd(int, IoWatcher*) override {}
  void forgetFd(IoWatcher*) override {}
  TimerPtr createTimer(TimerCb cb) override { return timers_.createTimer(std::move(cb)); }
  void post(std::function<void()> fn) override { deferred_.push_back(std::move(fn)); }
  void defer(std::function<void()> fn) override { deferred_.push_back(std::move(fn)); }
  void deferredDelete(DeferredDeletablePtr p) override { toDelete_.push_back(std::move(p)); }
  MonotonicTime now() const override { return now_; }
  MonotonicTime updateNow() override { return now_; }
  void run() override {}
  void exit() override {}
  int index() const override { return 0; }
  bool isThisThread() const override { return true; }

  /** turn: one loop turn after `advance` of simulated time. */
  void turn(Duration advance) {
    now_ += advance;
    timers_.setNow(now_);
    for (int i = 0; i < 8 && !deferred_.empty(); ++i) {
      std::vector<std::function<void()>> batch;
      batch.swap(deferred_);
      for (auto& fn : batch) fn();
    }
    timers_.runExpired(now_, 4096);
    while (!toDelete_.empty()) {
      std::vector<DeferredDeletablePtr> b;
      b.swap(toDelete_);
    }
  }

 private:
  MonotonicTime now_{std::chrono::seconds(1000)};
  TimerQueue timers_;
  std::vector<std::function<void()>> deferred_;
  std::vector<DeferredDeletablePtr> toDelete_;
};

// MemTransport: the client's bytes come from `in` in chunks; writes are swallowed (optionally a
// few bytes at a time, with EAGAIN in between).
class MemTransport final : public Stream {
 public:
  explicit MemTransport(bool smallWrites) : smallWrites_(smallWrites) { writeReady_ = true; }
  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }
  IoResult read(uint8_t* buf, size_t len) override {
    if (closed_) return IoResult{0, EBADF};
    if (off_ < in_.size()) {
      size_t n = std::min(len, in_.size() - off_);
      memcpy(buf, in_.data() + off_, n);
      off_ += n;
      return IoResult{static_cast<int64_t>(n), 0};
    }
    if (eof_) return IoResult{0, 0};
    readReady_ = false;
    return IoResult{0, EAGAIN};
  }
  IoResult write(const uint8_t*, size_t len) override {
    if (closed_) return IoResult{0, EPIPE};
    if (smallWrites_) {
      if (!writeReady_) return IoResult{0, EAGAIN};
      writeReady_ = false;  // the next write blocks until writable() is called
      return IoResult{static_cast<int64_t>(std::min<size_t>(len, 700)), 0};
    }
    written_ += len;
    return IoResult{static_cast<int64_t>(len), 0};
  }
  void shutdownWrite() override {}
  void close(bool) override {
    closed_ = true;
    cb_ = nullptr;
  }

  void feed(const uint8_t* p, size_t n, bool eof) {
    in_.assign(reinterpret_cast<const char*>(p), n);
    off_ = 0;
    eof_ = eof;
    readReady_ = true;
    if (cb_ != nullptr) cb_->onStreamReadable(*this);
  }
  void writable() {
    writeReady_ = true;
    if (cb_ != nullptr) cb_->onStreamWritable(*this);
  }

 private:
  StreamCallbacks* cb_{nullptr};
  std::string in_;
  size_t off_{0};
  bool eof_{false};
  bool closed_{false};
  bool smallWrites_;
  size_t written_{0};
};

/** readStep: the read split size a control byte asks for in bits 0-3 (1 + n*97 bytes). */
inline size_t readStep(uint8_t ctl) { return 1 + static_cast<size_t>(ctl & 15) * 97; }

/**
 * feedInput hands the client's bytes data[1..size) to `t` in reads of `step` bytes (EOF after the
 * last when `eof`), running four loop turns of 1 ms after each (the transport made writable between
 * them when `smallWrites`), and stops early once `stop()` holds.
 */
inline void feedInput(SimReactor& r, MemTransport& t, const uint8_t* data, size_t size, size_t step,
                      bool eof, bool smallWrites, const std::function<bool()>& stop) {
  size_t off = 1;
  while (off < size && !stop()) {
    const size_t n = std::min(step, size - off);
    t.feed(data + off, n, eof && off + n == size);
    off += n;
    for (int i = 0; i < 4; ++i) {
      r.turn(Duration{1});
      if (smallWrites) t.writable();
    }
  }
}

}  // namespace ugate::fuzz
