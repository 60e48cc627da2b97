// libFuzzer target for the HTTP/2 server side (H2Connection over nghttp2): arbitrary bytes are the
// client's half of a connection, fed through an in-memory transport on a simulated reactor (time
// is advanced by hand, so keepalive and linger timers fire too).
//
// Byte 0 (control): bits 0-3 the read split size (1 + n*97 bytes), bit 4 the transport takes
// writes only in small bites (backpressure), bit 5 the app resets every other stream, bit 6 the
// input ends with EOF, bit 7 the connection is destroyed before the streams (else after).
// The server answers CONNECT with 200 and echoes, anything else with 404 and a body.
// Invariants: nothing crashes or leaks (ASan), a closed connection stays closed and accepts no
// stream, streams of a dead connection read an error or EOF, never hang in EAGAIN with data.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <ugate/reactor.h>

#include "core/timer_queue.h"
#include "http/h2_connection.h"

namespace {

using namespace ugate;
using namespace ugate::http;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

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

// Echo: what a tunnel does with a stream: read everything, write it back, end when the peer ends.
struct Echo : StreamCallbacks {
  H2StreamPtr s;
  std::string pending;
  bool eof{false};
  int err{0};
  void pump() {
    for (int guard = 0; guard < 64 && s; ++guard) {
      if (!pending.empty()) {
        IoResult w = s->write(reinterpret_cast<const uint8_t*>(pending.data()), pending.size());
        if (w.ok() && w.value > 0) pending.erase(0, static_cast<size_t>(w.value));
        if (!w.ok() && !w.wouldBlock()) err = w.err;
      }
      if (eof || err != 0 || pending.size() > 65536) return;
      uint8_t buf[4096];
      IoResult r = s->read(buf, sizeof(buf));
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        err = r.err;
        return;
      }
      if (r.value == 0) {
        eof = true;
        s->shutdownWrite();
        return;
      }
      pending.append(reinterpret_cast<char*>(buf), static_cast<size_t>(r.value));
    }
  }
  void onStreamReadable(Stream&) override { pump(); }
  void onStreamWritable(Stream&) override { pump(); }
};

struct App : H2ConnectionCallbacks {
  bool resetSome{false};
  int n{0};
  bool closed{false};
  std::vector<std::unique_ptr<Echo>> echoes;
  void onRequest(H2Connection&, H2StreamPtr s) override {
    check(s != nullptr && s->id() > 0 && (s->id() & 1) == 1);  // client-initiated ids are odd
    ++n;
    if (s->method() != "CONNECT") {
      s->respond(404, {{"x-why", "fuzz"}}, "not here");
      return;  // dropped: the connection finishes the answer
    }
    if (resetSome && n % 2 == 0) {
      s->close(true);
      return;
    }
    s->respond(200, {{"x-tunnel", "1"}});
    auto e = std::make_unique<Echo>();
    e->s = std::move(s);
    e->s->setCallbacks(e.get());
    e->pump();
    echoes.push_back(std::move(e));
  }
  void onConnectionClosed(H2Connection& c, Errc, const std::string&) override {
    check(c.closed());
    closed = true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // connection errors are logged at info: not per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  const size_t step = 1 + static_cast<size_t>(ctl & 15) * 97;
  const bool smallWrites = ctl & 16;
  App app;
  app.resetSome = ctl & 32;
  const bool eofAtEnd = ctl & 64;
  const bool connFirst = ctl & 128;
  SimReactor r;
  H2Options o;
  o.pingInterval = Duration{1000};
  o.pingTimeout = Duration{500};
  o.streamWindow = 65535;
  o.connectionWindow = 1 << 20;
  o.streamWriteCap = 16384;
  o.maxConcurrentStreams = 32;
  o.maxHeaderListBytes = 4096;
  auto t = std::make_unique<MemTransport>(smallWrites);
  MemTransport* tp = t.get();
  H2ConnectionPtr c = H2Connection::create(r, std::move(t), H2Connection::Role::Server, o, app);
  c->start();
  size_t off = 1;
  while (off < size && !c->closed()) {
    size_t n = std::min(step, size - off);
    tp->feed(data + off, n, eofAtEnd && off + n == size);
    off += n;
    for (int i = 0; i < 4; ++i) {
      r.turn(Duration{1});
      if (smallWrites) tp->writable();
    }
  }
  if (eofAtEnd && size == 1) tp->feed(data, 0, true);
  // Let the keepalive run its course: a PING, then its timeout (nobody answers).
  for (int i = 0; i < 6; ++i) {
    if (smallWrites) tp->writable();
    r.turn(Duration{400});
  }
  check(c->closed());  // the client never acknowledges our PING
  check(app.closed);
  check(!c->canOpenStream());
  for (auto& e : app.echoes) {
    if (e->s == nullptr) continue;
    uint8_t b[64];
    IoResult rr = e->s->read(b, sizeof(b));
    // A dead connection's streams end: data left over, EOF or an error, never "try later".
    check(!rr.wouldBlock());
  }
  if (connFirst) {
    c.reset();
    app.echoes.clear();
  } else {
    app.echoes.clear();
    c.reset();
  }
  r.turn(Duration{1});
  return 0;
}
