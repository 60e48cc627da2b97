#include "core/stream_bridge.h"

#include <atomic>
#include <cstring>

namespace ugate {

namespace {

class BridgeEnd;

// Ring: bytes from one end to the other. head_ advances only on the producer's thread, tail_ only
// on the consumer's; each reads the other's index with acquire ordering.
struct Ring {
  explicit Ring(size_t capacity) : buf(new uint8_t[capacity]), cap(capacity) {}
  std::unique_ptr<uint8_t[]> buf;
  const size_t cap;
  std::atomic<uint64_t> head{0};
  std::atomic<uint64_t> tail{0};
  std::atomic<bool> eof{false};             // the producer shut down writing (FIN)
  std::atomic<bool> readerWaiting{false};   // the consumer saw the ring empty and wants a wake-up
  std::atomic<bool> writerWaiting{false};   // the producer saw the ring full and wants a wake-up
};

struct Shared : std::enable_shared_from_this<Shared> {
  Shared(Reactor& a, Reactor& b, size_t cap) : rings{Ring(cap), Ring(cap)}, reactors{&a, &b} {}
  Ring rings[2];            // rings[i]: written by end i, read by end 1-i
  Reactor* reactors[2];
  BridgeEnd* ends[2]{};     // ends[i]: touched only on reactors[i]'s thread
  std::atomic<bool> reset{false};      // an end aborted: the other sees ECONNRESET
  std::atomic<bool> closed[2]{};       // end i closed (its reads are over too)

  // wake asks end `side` (on its own thread) to re-check readiness.
  void wake(int side) {
    reactors[side]->post([self = shared_from_this(), side] { self->notify(side); });
  }
  void notify(int side);
};

class BridgeEnd final : public Stream {
 public:
  BridgeEnd(std::shared_ptr<Shared> sh, int side) : sh_(std::move(sh)), side_(side) {
    sh_->ends[side_] = this;
    // Readiness starts unknown: a first read/write finds out (and arms the wake-up when blocked).
    readReady_ = true;
    writeReady_ = true;
  }
  ~BridgeEnd() override {
    close(true);
    sh_->ends[side_] = nullptr;
  }

  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }

  IoResult read(uint8_t* buf, size_t len) override {
    if (sh_->reset.load(std::memory_order_acquire)) return IoResult{0, ECONNRESET};
    if (sh_->closed[side_].load(std::memory_order_relaxed)) return IoResult{0, EBADF};
    Ring& r = in();
    uint64_t tail = r.tail.load(std::memory_order_relaxed);
    uint64_t head = r.head.load(std::memory_order_acquire);
    if (head == tail) {
      if (r.eof.load(std::memory_order_acquire)) {
        // EOF is published after the last byte: re-read head to not lose bytes written before it.
        if (r.head.load(std::memory_order_acquire) == tail) return IoResult{0, 0};
        return read(buf, len);
      }
      r.readerWaiting.store(true, std::memory_order_seq_cst);
      // Re-check after announcing: a write that raced with us either sees the flag or we see it.
      if (r.head.load(std::memory_order_seq_cst) == tail && !r.eof.load(std::memory_order_seq_cst) &&
          !sh_->reset.load(std::memory_order_seq_cst)) {
        readReady_ = false;
        return IoResult{0, EAGAIN};
      }
      r.readerWaiting.store(false, std::memory_order_relaxed);
      return read(buf, len);
    }
    size_t n = std::min<uint64_t>(len, head - tail);
    size_t off = tail % r.cap;
    size_t first = std::min(n, r.cap - off);
    memcpy(buf, r.buf.get() + off, first);
    memcpy(buf + first, r.buf.get(), n - first);
    const bool wasFull = head - tail == r.cap;
    r.tail.store(tail + n, std::memory_order_seq_cst);
    if ((wasFull || r.writerWaiting.load(std::memory_order_seq_cst)) &&
        r.writerWaiting.exchange(false, std::memory_order_seq_cst)) {
      sh_->wake(1 - side_);
    }
    return IoResult{static_cast<int64_t>(n), 0};
  }

  IoResult write(const uint8_t* buf, size_t len) override {
    if (sh_->reset.load(std::memory_order_acquire)) return IoResult{0, ECONNRESET};
    Ring& r = out();
    if (r.eof.load(std::memory_order_relaxed) || sh_->closed[side_].load(std::memory_order_relaxed)) {
      return IoResult{0, EPIPE};
    }
    if (sh_->closed[1 - side_].load(std::memory_order_acquire)) return IoResult{0, EPIPE};
    uint64_t head = r.head.load(std::memory_order_relaxed);
    uint64_t tail = r.tail.load(std::memory_order_acquire);
    size_t space = r.cap - (head - tail);
    if (space == 0) {
      r.writerWaiting.store(true, std::memory_order_seq_cst);
      if (r.cap - (head - r.tail.load(std::memory_order_seq_cst)) == 0) {
        writeReady_ = false;
        return IoResult{0, EAGAIN};
      }
      r.writerWaiting.store(false, std::memory_order_relaxed);
      return write(buf, len);
    }
    size_t n = std::min(len, space);
    size_t off = head % r.cap;
    size_t first = std::min(n, r.cap - off);
    memcpy(r.buf.get() + off, buf, first);
    memcpy(r.buf.get(), buf + first, n - first);
    r.head.store(head + n, std::memory_order_seq_cst);
    if (r.readerWaiting.load(std::memory_order_seq_cst) && r.readerWaiting.exchange(false)) {
      sh_->wake(1 - side_);
    }
    return IoResult{static_cast<int64_t>(n), 0};
  }

  void shutdownWrite() override {
    Ring& r = out();
    if (r.eof.exchange(true, std::memory_order_seq_cst)) return;
    sh_->wake(1 - side_);  // the reader must see EOF even if it is not waiting right now
  }

  void close(bool abort) override {
    if (sh_->closed[side_].exchange(true)) return;
    cb_ = nullptr;
    readReady_ = writeReady_ = false;
    if (abort) {
      sh_->reset.store(true, std::memory_order_seq_cst);
    } else {
      out().eof.store(true, std::memory_order_seq_cst);
    }
    sh_->wake(1 - side_);
  }

  void notify() {
    if (cb_ == nullptr || sh_->closed[side_].load(std::memory_order_relaxed)) return;
    // Readiness is re-derived: report both; a spurious callback costs one EAGAIN.
    readReady_ = true;
    writeReady_ = true;
    StreamCallbacks* cb = cb_;
    cb->onStreamReadable(*this);
    if (cb_ == cb) cb->onStreamWritable(*this);
  }

 private:
  Ring& in() { return sh_->rings[1 - side_]; }
  Ring& out() { return sh_->rings[side_]; }

  std::shared_ptr<Shared> sh_;
  const int side_;
  StreamCallbacks* cb_{nullptr};
};

void Shared::notify(int side) {
  if (ends[side] != nullptr) ends[side]->notify();
}

}  // namespace

std::pair<StreamPtr, StreamPtr> makeStreamBridge(Reactor& a, Reactor& b, size_t capacity) {
  auto sh = std::make_shared<Shared>(a, b, capacity);
  auto ea = std::make_unique<BridgeEnd>(sh, 0);
  auto eb = std::make_unique<BridgeEnd>(sh, 1);
  return {std::move(ea), std::move(eb)};
}

}  // namespace ugate
