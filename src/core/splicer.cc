#include <ugate/splicer.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace ugate {

namespace {
// kBudget bounds the bytes one direction moves per wake-up so one busy connection cannot starve
// the others on its reactor; the rest continues next turn.
constexpr size_t kBudget = 1 << 20;
// Two consecutive reads that fill the scratch buffer mark a bulk transfer: switch it to splice.
constexpr uint8_t kBulkReads = 2;
}  // namespace

Splicer::Splicer(SpliceContext& ctx, Stream& a, Stream& b, SplicerCallbacks& cb) : ctx_(ctx), cb_(cb) {
  dirs_[0].src = &a;
  dirs_[0].dst = &b;
  dirs_[1].src = &b;
  dirs_[1].dst = &a;
  bool canSplice = a.spliceFd() >= 0 && b.spliceFd() >= 0;
  for (auto& d : dirs_) {
    d.useSplice = canSplice && ctx_.mode == SpliceContext::Mode::Always;
  }
  lastActivity_ = ctx_.reactor.now();
}

Splicer::~Splicer() {
  stop();
  if (alive_) *alive_ = false;
}

void Splicer::setPrefix(int dir, const uint8_t* data, size_t len) {
  if (len == 0) return;
  Direction& d = dirs_[dir];
  d.parked.reset(new uint8_t[len]);
  memcpy(d.parked.get(), data, len);
  d.parkedOff = 0;
  d.parkedLen = static_cast<uint32_t>(len);
}

void Splicer::start() {
  dirs_[0].src->setCallbacks(this);
  dirs_[1].src->setCallbacks(this);
  pump(0);
  if (!failed_) pump(1);
}

void Splicer::stop() {
  for (auto& d : dirs_) {
    if (d.pipe.valid()) {
      PipePool::discard(d.pipe);
      d.pipe = Pipe{};
      d.inPipe = 0;
    }
    d.parked.reset();
    d.parkedLen = d.parkedOff = 0;
  }
  if (dirs_[0].src) dirs_[0].src->setCallbacks(nullptr);
  if (dirs_[1].src) dirs_[1].src->setCallbacks(nullptr);
}

void Splicer::detach(InFlight out[2]) {
  for (int i = 0; i < 2; ++i) {
    Direction& d = dirs_[i];
    out[i].pipe = d.pipe;
    out[i].inPipe = d.inPipe;
    out[i].parked.assign(reinterpret_cast<const char*>(d.parked.get()) + d.parkedOff, d.parkedLen);
    out[i].bytes = d.bytes;
    out[i].finished = d.finished;
    d.pipe = Pipe{};
    d.inPipe = 0;
  }
  failed_ = done_ = true;  // a deferred pump finds nothing to do
  stop();
}

void Splicer::restore(InFlight in[2]) {
  for (int i = 0; i < 2; ++i) {
    Direction& d = dirs_[i];
    d.pipe = in[i].pipe;
    d.inPipe = in[i].inPipe;
    in[i].pipe = Pipe{};
    if (d.pipe.valid() && d.src->spliceFd() >= 0 && d.dst->spliceFd() >= 0) d.useSplice = true;
    if (!in[i].parked.empty()) {
      d.parked.reset(new uint8_t[in[i].parked.size()]);
      memcpy(d.parked.get(), in[i].parked.data(), in[i].parked.size());
      d.parkedOff = 0;
      d.parkedLen = static_cast<uint32_t>(in[i].parked.size());
    }
    d.bytes = in[i].bytes;
    d.finished = in[i].finished;
    d.srcEof = in[i].finished;
  }
}

void Splicer::onStreamReadable(Stream& s) { pump(&s == dirs_[0].src ? 0 : 1); }

void Splicer::onStreamWritable(Stream& s) { pump(&s == dirs_[0].dst ? 0 : 1); }

void Splicer::fail(int err, bool clientSide) {
  if (failed_) return;
  failed_ = true;
  stop();
  cb_.onSpliceError(err == 0 ? Errc::Io : errcFromErrno(err), clientSide);
}

void Splicer::moved(Direction& d, uint64_t n) {
  d.bytes += n;
  if (d.counter) d.counter->add(n);
}

void Splicer::releasePipe(Direction& d) {
  if (d.pipe.valid() && d.inPipe == 0) {
    ctx_.pipes.release(d.pipe);
    d.pipe = Pipe{};
  }
}

// flush writes bytes parked in the pipe or buffer. blocked=true when the destination is full.
bool Splicer::flush(Direction& d, bool& blocked) {
  const bool dstIsClient = (&d == &dirs_[1]);
  while (d.inPipe > 0) {
    ssize_t n = splice(d.pipe.r, nullptr, d.dst->spliceFd(), nullptr, d.inPipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0) {
      if (errno == EAGAIN) {
        d.dst->clearWriteReady();
        blocked = true;
        return true;
      }
      if (errno == EINTR) continue;
      fail(errno, dstIsClient);
      return false;
    }
    d.inPipe -= static_cast<size_t>(n);
    moved(d, static_cast<uint64_t>(n));
  }
  while (d.parkedLen > 0) {
    IoResult r = d.dst->write(d.parked.get() + d.parkedOff, d.parkedLen);
    if (r.wouldBlock()) {
      blocked = true;
      return true;
    }
    if (!r.ok()) {
      fail(r.err, dstIsClient);
      return false;
    }
    d.parkedOff += static_cast<uint32_t>(r.value);
    d.parkedLen -= static_cast<uint32_t>(r.value);
    moved(d, static_cast<uint64_t>(r.value));
    if (d.parkedLen > 0) {
      blocked = true;
      return true;
    }
  }
  if (d.parked) {
    d.parked.reset();  // bytes in flight only: free the buffer as soon as it is empty
    d.parkedOff = 0;
  }
  return true;
}

bool Splicer::pumpSplice(Direction& d, size_t& budget, bool& blocked) {
  const bool srcIsClient = (&d == &dirs_[0]);
  if (!d.pipe.valid()) {
    d.pipe = ctx_.pipes.acquire();
    if (!d.pipe.valid()) {
      d.useSplice = false;  // out of fds for pipes: fall back to copying
      return true;
    }
  }
  d.spliced = true;
  while (budget > 0 && d.src->readReady()) {
    ssize_t n = splice(d.src->spliceFd(), nullptr, d.pipe.w, nullptr, budget,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) {
      // splice(2) also reports 0 at a TCP urgent mark once the FIN is in (the event that says
      // so may still be queued): not the end, the rest must be read with recv(2).
      int atMark = 0;
      if (ioctl(d.src->spliceFd(), SIOCATMARK, &atMark) == 0 && atMark) {
        d.useSplice = false;
        return true;
      }
      d.srcEof = true;
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN) {
        // Either the socket is drained or the pipe is full; an empty pipe means the socket.
        if (d.inPipe == 0) d.src->clearReadReady();
        if (d.inPipe == 0) break;
      } else if (errno == EINTR) {
        continue;
      } else {
        fail(errno, srcIsClient);
        return false;
      }
    } else {
      d.inPipe += static_cast<size_t>(n);
      budget -= std::min(budget, static_cast<size_t>(n));
    }
    if (!flush(d, blocked)) return false;
    if (blocked) return true;
  }
  return true;
}

bool Splicer::pumpCopy(Direction& d, size_t& budget, bool& blocked) {
  const bool srcIsClient = (&d == &dirs_[0]);
  while (budget > 0 && d.src->readReady()) {
    IoResult r = d.src->read(ctx_.scratch, ctx_.scratchSize);
    if (r.wouldBlock()) break;
    if (!r.ok()) {
      if (r.err == EINTR) continue;
      fail(r.err, srcIsClient);
      return false;
    }
    if (r.value == 0) {
      d.srcEof = true;
      break;
    }
    size_t n = static_cast<size_t>(r.value);
    budget -= std::min(budget, n);
    size_t off = 0;
    while (off < n) {
      IoResult w = d.dst->write(ctx_.scratch + off, n - off);
      if (w.wouldBlock()) break;
      if (!w.ok()) {
        fail(w.err, !srcIsClient);
        return false;
      }
      off += static_cast<size_t>(w.value);
      moved(d, static_cast<uint64_t>(w.value));
      if (!d.dst->writeReady()) break;
    }
    if (off < n) {
      // Park the remainder; reading stops until it is written (backpressure).
      d.parked.reset(new uint8_t[ctx_.scratchSize]);
      d.parkedOff = 0;
      d.parkedLen = static_cast<uint32_t>(n - off);
      memcpy(d.parked.get(), ctx_.scratch + off, n - off);
      blocked = true;
      return true;
    }
    if (ctx_.mode == SpliceContext::Mode::Auto && n == ctx_.scratchSize &&
        d.src->spliceFd() >= 0 && d.dst->spliceFd() >= 0 && !d.src->readNeedsCopy()) {
      if (++d.fullReads >= kBulkReads) {
        d.useSplice = true;  // nothing is parked here, so the switch is seamless
        return true;
      }
    } else {
      d.fullReads = 0;
    }
  }
  return true;
}

void Splicer::pump(int idx) {
  Direction& d = dirs_[idx];
  if (failed_ || d.finished) return;
  size_t budget = kBudget;
  bool blocked = false;
  const uint64_t before = d.bytes;
  if (!flush(d, blocked)) return;
  if (d.useSplice && !blocked && d.inPipe == 0 && d.src->readNeedsCopy()) {
    d.useSplice = false;  // e.g. TCP urgent data: splice(2) would stop at the mark for good
    releasePipe(d);
  }
  while (!blocked && budget > 0 && !d.srcEof && d.src->readReady()) {
    bool wasSplice = d.useSplice;
    bool ok = d.useSplice ? pumpSplice(d, budget, blocked) : pumpCopy(d, budget, blocked);
    if (!ok) return;
    if (d.useSplice == wasSplice) break;  // no mode switch: this wake-up's work is done
  }
  if (d.bytes != before) lastActivity_ = ctx_.reactor.now();
  if (!blocked) releasePipe(d);
  if (d.srcEof && !blocked && d.inPipe == 0 && d.parkedLen == 0) {
    releasePipe(d);
    // When the other direction has already ended, the session closes both streams right away.
    // A kernel socket (spliceFd() >= 0) whose input was read to EOF sends its FIN on close(), so
    // the shutdown would be a syscall for nothing; other streams (HTTP/2, TLS) need their explicit
    // end of stream.
    Direction& other = dirs_[&d == &dirs_[0] ? 1 : 0];
    if (!other.finished || d.dst->spliceFd() < 0) d.dst->shutdownWrite();
    d.finished = true;
    maybeDone();
    return;
  }
  if (!blocked && budget == 0 && d.src->readReady() && !d.scheduled) {
    // Out of budget: continue next turn, after other connections had their share.
    d.scheduled = true;
    if (!alive_) alive_ = std::make_shared<bool>(true);
    ctx_.reactor.defer([this, idx, alive = alive_] {
      if (!*alive) return;
      dirs_[idx].scheduled = false;
      pump(idx);
    });
  }
}

void Splicer::maybeDone() {
  if (dirs_[0].finished && dirs_[1].finished && !done_) {
    done_ = true;
    stop();
    cb_.onSpliceDone();
  }
}

}  // namespace ugate
