#include <ugate/stream_bridge.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace ugate {

StreamBridgeStats& streamBridgeStats() {
  static StreamBridgeStats s;
  return s;
}

namespace {

class BridgeEnd;

// Ring: bytes from one end to the other. head_ advances only on the producer's thread, tail_ only
// on the consumer's; each reads the other's index with acquire ordering. storage is allocated and
// freed only on the producer's thread (see the header for why the consumer can rely on it).
struct Ring {
  explicit Ring(size_t capacity) : cap(capacity), bytes(roundToPages(capacity)) {}
  ~Ring() { freeStorage(); }  // both ends are gone: what a destroyed producer left undrained

  // allocate is called by the producer when it writes into a ring without storage (ring empty).
  uint8_t* allocate() {
    auto* p = static_cast<uint8_t*>(::operator new(bytes, std::align_val_t(pageSize())));
    storage.store(p, std::memory_order_relaxed);  // published by the head store after the copy
    streamBridgeStats().bufferBytes.fetch_add(static_cast<int64_t>(cap), std::memory_order_relaxed);
    streamBridgeStats().bufferAllocs.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
  // freeStorage is called by the producer once the consumer cannot touch the storage any more.
  // The pages go back to the kernel at once: glibc would keep them, and after a burst on many
  // streams RSS would stay at the burst's peak. They are whole pages of our own block (the
  // allocator's headers sit outside it), so the allocator loses nothing it needs.
  void freeStorage() {
    uint8_t* p = storage.load(std::memory_order_relaxed);
    if (p == nullptr) return;
    storage.store(nullptr, std::memory_order_relaxed);
    madvise(p, bytes, MADV_DONTNEED);
    ::operator delete(p, std::align_val_t(pageSize()));
    // release: whoever sees the gauge drop also sees storage == nullptr (the tests rely on it).
    streamBridgeStats().bufferBytes.fetch_sub(static_cast<int64_t>(cap), std::memory_order_release);
  }
  static size_t pageSize() {
    static const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return kPage;
  }
  static size_t roundToPages(size_t n) { return (n + pageSize() - 1) / pageSize() * pageSize(); }

  std::atomic<uint8_t*> storage{nullptr};   // the bytes; nullptr while the direction is idle
  const size_t cap;
  const size_t bytes;                       // cap rounded up to whole pages: what is allocated
  std::atomic<uint64_t> head{0};
  std::atomic<uint64_t> tail{0};
  std::atomic<bool> eof{false};             // the producer shut down writing (FIN)
  std::atomic<bool> readerWaiting{false};   // the consumer saw the ring empty and wants a wake-up
  std::atomic<bool> writerWaiting{false};   // the producer saw the ring full and wants a wake-up
};

struct Shared : std::enable_shared_from_this<Shared> {
  Shared(Reactor& a, Reactor& b, size_t cap, Duration idle)
      : rings{Ring(cap), Ring(cap)}, reactors{&a, &b}, idleRelease(idle) {
    streamBridgeStats().bridges.fetch_add(1, std::memory_order_relaxed);
  }
  ~Shared() { streamBridgeStats().bridges.fetch_sub(1, std::memory_order_relaxed); }
  Ring rings[2];            // rings[i]: written by end i, read by end 1-i
  Reactor* reactors[2];
  const Duration idleRelease;
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
    idleTimer_.reset();
    // A drained ring is ours to free now; bytes still in flight stay readable and go with the pair.
    maybeRelease(/*idleSinceLastTick=*/true);
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
    // head != tail: the storage holding these bytes was published before head; the producer frees
    // it only after it sees our tail catch up with its head.
    const uint8_t* data = r.storage.load(std::memory_order_relaxed);
    size_t n = std::min<uint64_t>(len, head - tail);
    size_t off = tail % r.cap;
    size_t first = std::min(n, r.cap - off);
    memcpy(buf, data + off, first);
    memcpy(buf + first, data, n - first);
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
    uint8_t* data = r.storage.load(std::memory_order_relaxed);
    if (data == nullptr) data = rearm(r, head);  // the first write after idle (the ring is empty)
    size_t n = std::min(len, space);
    size_t off = head % r.cap;
    size_t first = std::min(n, r.cap - off);
    memcpy(data + off, buf, first);
    memcpy(data, buf + first, n - first);
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

  StreamBridgeStorage storageHeld() const {
    auto held = [](const Ring& r) {
      return r.storage.load(std::memory_order_relaxed) != nullptr ? r.cap : size_t{0};
    };
    return StreamBridgeStorage{held(sh_->rings[side_]), held(sh_->rings[1 - side_])};
  }

 private:
  Ring& in() { return sh_->rings[1 - side_]; }
  Ring& out() { return sh_->rings[side_]; }

  // rearm allocates the outgoing ring's storage and starts watching for idleness.
  uint8_t* rearm(Ring& r, uint64_t head) {
    uint8_t* p = r.allocate();
    if (!idleTimer_) idleTimer_ = sh_->reactors[side_]->createTimer([this] { onIdleTick(); });
    tickHead_ = head;
    idleTimer_->enable(sh_->idleRelease);
    return p;
  }

  void onIdleTick() {
    const uint64_t head = out().head.load(std::memory_order_relaxed);
    const bool idle = head == tickHead_;
    tickHead_ = head;
    if (!maybeRelease(idle)) idleTimer_->enable(sh_->idleRelease);
  }

  // maybeRelease frees the outgoing ring's storage when the consumer is done with it: it drained
  // the ring (and nothing was written since the previous tick), or it closed. Producer's thread
  // only. Returns whether no storage is held any more.
  bool maybeRelease(bool idleSinceLastTick) {
    Ring& r = out();
    if (r.storage.load(std::memory_order_relaxed) == nullptr) return true;
    const uint64_t head = r.head.load(std::memory_order_relaxed);
    const bool drained = r.tail.load(std::memory_order_acquire) == head;
    if ((drained && idleSinceLastTick) || sh_->closed[1 - side_].load(std::memory_order_acquire)) {
      r.freeStorage();
      return true;
    }
    return false;
  }

  std::shared_ptr<Shared> sh_;
  const int side_;
  StreamCallbacks* cb_{nullptr};
  TimerPtr idleTimer_;     // idleTimer_: armed while the outgoing ring holds storage
  uint64_t tickHead_{0};   // tickHead_: the outgoing head at the previous idle tick
};

void Shared::notify(int side) {
  if (ends[side] != nullptr) ends[side]->notify();
}

}  // namespace

std::pair<StreamPtr, StreamPtr> makeStreamBridge(Reactor& a, Reactor& b, size_t capacity,
                                                 Duration idleRelease) {
  auto sh = std::make_shared<Shared>(a, b, capacity, idleRelease);
  auto ea = std::make_unique<BridgeEnd>(sh, 0);
  auto eb = std::make_unique<BridgeEnd>(sh, 1);
  return {std::move(ea), std::move(eb)};
}

StreamBridgeStorage streamBridgeStorageForTest(const Stream& end) {
  const auto* e = dynamic_cast<const BridgeEnd*>(&end);
  return e != nullptr ? e->storageHeld() : StreamBridgeStorage{};
}

}  // namespace ugate
