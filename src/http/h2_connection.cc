// H2ConnectionImpl: an nghttp2 session driven sans-I/O (mem_recv / mem_send) over a ugate::Stream.
//
// Input: the transport is read while readable, up to kReadBudget per wake-up (then the rest
// continues from a 0 ms timer, after the other ready fds), into a per-thread scratch buffer that
// nghttp2 parses in place; DATA payloads are copied once, into the stream's ChunkQueue.
// Output: frames are gathered into a per-thread batch (DATA copied once, straight from the
// stream's queue, via NGHTTP2_DATA_FLAG_NO_COPY) and written with one transport write per batch;
// bytes the transport refuses are parked and nothing more is pulled from nghttp2 until the
// transport is writable again. Flow control is backpressure: windows re-open only as the
// application reads (nghttp2_session_consume).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "http/h2_connection_impl.h"

namespace ugate::http {

namespace {

constexpr size_t kReadChunk = 64 * 1024;    // one transport read
constexpr size_t kReadBudget = 256 * 1024;  // per wake-up, for fairness between connections
constexpr size_t kWriteBatch = 64 * 1024;   // frames gathered before one transport write
constexpr size_t kPoolBlocks = 32;          // free 16 KiB blocks a busy connection keeps
constexpr Duration kLinger{1'000};          // a terminating GOAWAY waits at most this long

// Scratch: per-thread buffers shared by every connection of a reactor. A connection holds them
// only inside one read or flush (no application code runs meanwhile); a nested use falls back
// to the stack (read) or the connection's parked buffer (write).
struct Scratch {
  std::unique_ptr<uint8_t[]> read;
  bool readBusy{false};
  ByteBuf out;
  bool outBusy{false};
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

const nghttp2_option* sessionOptions() {
  static nghttp2_option* opt = [] {
    nghttp2_option* o = nullptr;
    if (nghttp2_option_new(&o) != 0) {
      spdlog::critical("h2: out of memory creating nghttp2 options");
      std::abort();
    }
    nghttp2_option_set_no_auto_window_update(o, 1);  // windows follow the application's reads
    nghttp2_option_set_no_closed_streams(o, 1);      // no priority tree of closed streams
    return o;
  }();
  return opt;
}

const char* roleName(H2Connection::Role r) { return r == H2Connection::Role::Client ? "client" : "server"; }

bool connectionSpecific(const std::string& lname) {
  return lname == "connection" || lname == "keep-alive" || lname == "proxy-connection" ||
         lname == "transfer-encoding" || lname == "upgrade" || lname == "host";
}

// NvList: the nghttp2 view of a header list (names lower-cased, pseudo-headers first, fields that
// HTTP/2 forbids dropped). nghttp2 copies everything at submit time.
class NvList {
 public:
  void add(std::string name, std::string value) {
    names_.push_back(std::move(name));
    values_.push_back(std::move(value));
  }
  void addExtra(const Headers& extra) {
    for (const auto& [n, v] : extra) {
      std::string l = n;
      std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
      if (l.empty() || l[0] == ':' || connectionSpecific(l)) {
        spdlog::debug("h2: dropping header '{}' (not allowed in HTTP/2)", n);
        continue;
      }
      add(std::move(l), v);
    }
  }
  const nghttp2_nv* data() {
    nv_.clear();
    for (size_t i = 0; i < names_.size(); ++i) {
      nv_.push_back({reinterpret_cast<uint8_t*>(names_[i].data()),
                     reinterpret_cast<uint8_t*>(values_[i].data()), names_[i].size(),
                     values_[i].size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nv_.data();
  }
  size_t size() const { return names_.size(); }

 private:
  std::vector<std::string> names_;
  std::vector<std::string> values_;
  std::vector<nghttp2_nv> nv_;
};

ssize_t readDataCb(nghttp2_session*, int32_t id, uint8_t*, size_t length, uint32_t* flags,
                   nghttp2_data_source*, void* ud) {
  return static_cast<H2ConnectionImpl*>(ud)->onReadData(id, length, flags);
}

nghttp2_data_provider dataProvider() {
  nghttp2_data_provider p{};
  p.read_callback = readDataCb;
  return p;
}

H2Options sanitize(H2Options o) {
  constexpr uint32_t kMaxWindow = NGHTTP2_MAX_WINDOW_SIZE;
  o.streamWindow = std::clamp<uint32_t>(o.streamWindow, 1, kMaxWindow);
  o.connectionWindow = std::clamp<uint32_t>(o.connectionWindow, NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE,
                                            kMaxWindow);
  o.streamWriteCap = std::max<size_t>(o.streamWriteCap, 1);
  o.maxHeaderListBytes = std::max<uint32_t>(o.maxHeaderListBytes, 1024);
  if (o.pingInterval.count() < 0) o.pingInterval = Duration{0};
  if (o.pingTimeout.count() <= 0) o.pingTimeout = o.pingInterval;
  return o;
}

}  // namespace

H2Connection::~H2Connection() = default;

std::unique_ptr<H2Connection> H2Connection::create(Reactor& r, StreamPtr transport, Role role, H2Options o,
                                                   H2ConnectionCallbacks& cb) {
  return std::make_unique<H2ConnectionImpl>(r, std::move(transport), role, o, cb);
}

H2ConnectionImpl::H2ConnectionImpl(Reactor& r, StreamPtr transport, Role role, const H2Options& o,
                                   H2ConnectionCallbacks& cb)
    : reactor_(r),
      transport_(std::move(transport)),
      role_(role),
      opts_(sanitize(o)),
      cb_(cb),
      stats_(o.stats != nullptr ? o.stats : &ownStats_),
      pool_(kPoolBlocks) {
  int rv = role_ == Role::Client
               ? nghttp2_session_client_new2(&session_, sessionCallbacks(), this, sessionOptions())
               : nghttp2_session_server_new2(&session_, sessionCallbacks(), this, sessionOptions());
  if (rv != 0) {
    spdlog::critical("h2: nghttp2 session: {}", nghttp2_strerror(rv));
    std::abort();
  }
  kickTimer_ = reactor_.createTimer([this] { onKick(); });
  pingTimer_ = reactor_.createTimer([this] { onPingTimer(); });
}

H2ConnectionImpl::~H2ConnectionImpl() {
  if (!closed_) teardown(true, false);
  // Last notifications: streams still held learn the connection is gone. They stay attached
  // (connGone) while these run, so a callback may destroy any stream safely.
  destroying_ = true;
  for (auto& [id, st] : streams_) st->connGone = true;
  dispatchEvents();
  for (auto& [id, st] : streams_) {
    st->conn = nullptr;
    st->recvQ.setPool(nullptr);
    st->sendQ.setPool(nullptr);
  }
  streams_.clear();
  nghttp2_session_del(session_);
}

void H2ConnectionImpl::start() {
  if (started_ || closed_) return;
  started_ = true;
  transport_->setCallbacks(this);
  nghttp2_settings_entry iv[4];
  size_t n = 0;
  iv[n++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, opts_.maxConcurrentStreams};
  iv[n++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, opts_.streamWindow};
  iv[n++] = {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, opts_.maxHeaderListBytes};
  if (role_ == Role::Client) iv[n++] = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  int rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, n);
  if (rv == 0 && opts_.connectionWindow > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(opts_.connectionWindow));
  }
  if (rv != 0) {
    fail(Errc::Io, std::string("nghttp2 settings: ") + nghttp2_strerror(rv));
    return;
  }
  lastRecv_ = reactor_.now();
  if (opts_.pingInterval.count() > 0) pingTimer_->enable(opts_.pingInterval);
  flush();
  readTransport();  // bytes may have arrived before we were watching (or sit in a TLS buffer)
}

// ---- application calls ------------------------------------------------------------------------

bool H2ConnectionImpl::canOpenStream() const {
  if (role_ != Role::Client || !started_ || closed_ || goawayRequested_ || goawayRecv_) return false;
  if (nghttp2_session_get_next_stream_id(session_) > static_cast<uint32_t>(INT32_MAX)) return false;
  return openLocal_ < nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

H2StreamPtr H2ConnectionImpl::connect(const std::string& authority, const Headers& extra,
                                      std::function<void(H2Stream&)> onResponse) {
  return openStream("CONNECT", {}, authority, {}, extra, std::move(onResponse));
}

H2StreamPtr H2ConnectionImpl::request(const std::string& method, const std::string& scheme,
                                      const std::string& authority, const std::string& path,
                                      const Headers& extra, std::function<void(H2Stream&)> onResponse) {
  if (method.empty() || method == "CONNECT" || scheme.empty() || path.empty()) return nullptr;
  return openStream(method, scheme, authority, path, extra, std::move(onResponse));
}

H2StreamPtr H2ConnectionImpl::openStream(const std::string& method, const std::string& scheme,
                                         const std::string& authority, const std::string& path,
                                         const Headers& extra,
                                         std::function<void(H2Stream&)> onResponse) {
  if (!canOpenStream()) return nullptr;
  NvList nv;
  nv.add(":method", method);
  if (!scheme.empty()) nv.add(":scheme", scheme);
  nv.add(":authority", authority);
  if (!path.empty()) nv.add(":path", path);
  nv.addExtra(extra);
  nghttp2_data_provider prd = dataProvider();
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &prd, nullptr);
  if (id < 0) {
    spdlog::debug("h2 client: cannot open a stream to {}: {}", authority, nghttp2_strerror(id));
    return nullptr;
  }
  auto impl = std::make_unique<H2Stream::Impl>();
  impl->conn = this;
  impl->id = id;
  impl->local = true;
  impl->authority = authority;
  impl->method = method;
  impl->path = path;
  impl->onResponse = std::move(onResponse);
  impl->recvQ.setPool(&pool_);
  impl->sendQ.setPool(&pool_);
  auto s = std::make_unique<H2Stream>(std::move(impl));
  s->writeReady_ = true;
  streams_[id] = s->impl_.get();
  ++openLocal_;
  stats_->streamsOpened.add();
  kick();
  return s;
}

void H2ConnectionImpl::goAway() {
  if (closed_ || goawayRequested_ || !started_) return;
  goawayRequested_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  kick();
}

void H2ConnectionImpl::close() {
  if (closed_) return;
  teardown(true, false);
  kick();  // the streams' readable callbacks run from the timer (or from our destructor)
}

void H2ConnectionImpl::consumed(H2Stream::Impl& st, size_t n) {
  if (closed_) return;
  nghttp2_session_consume(session_, st.id, n);
  if (nghttp2_session_want_write(session_)) kick();  // a WINDOW_UPDATE is due
}

void H2ConnectionImpl::streamDataReady(H2Stream::Impl& st) {
  if (closed_) return;
  if (st.deferred) {
    st.deferred = false;
    nghttp2_session_resume_data(session_, st.id);
  }
  kick();
}

void H2ConnectionImpl::respond(H2Stream::Impl& st, int status, const Headers& extra, std::string body) {
  if (role_ != Role::Server || st.responded || st.released || st.err != 0 || st.h2Closed || closed_) {
    return;
  }
  if (status < 200 || status > 999) status = 500;
  st.responded = true;
  NvList nv;
  nv.add(":status", std::to_string(status));
  nv.addExtra(extra);
  const bool open = status < 300;
  if (!open) {
    st.sendQ.clear();
    st.endRequested = true;
  }
  if (!body.empty()) st.sendQ.append(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  nghttp2_data_provider prd = dataProvider();
  const bool withData = open || !st.sendQ.empty();
  int rv = nghttp2_submit_response(session_, st.id, nv.data(), nv.size(), withData ? &prd : nullptr);
  if (rv != 0) {
    spdlog::debug("h2 server: stream {}: respond {}: {}", st.id, status, nghttp2_strerror(rv));
    return;
  }
  kick();
}

void H2ConnectionImpl::submitTrailers(H2Stream::Impl& st) {
  NvList nv;
  nv.addExtra(st.trailers);
  // Allowed inside the data source callback (nghttp2_submit_trailer's documentation).
  int rv = nghttp2_submit_trailer(session_, st.id, nv.data(), nv.size());
  if (rv != 0) {
    spdlog::debug("h2: stream {}: trailers: {}", st.id, nghttp2_strerror(rv));
    submitRst(st, NGHTTP2_INTERNAL_ERROR);
  }
}

void H2ConnectionImpl::closeStream(H2Stream::Impl& st, bool abort) {
  if (closed_ || st.h2Closed) return;
  dropReceived(st);
  st.readAbandoned = true;
  const bool unanswered = role_ == Role::Server && !st.responded;
  if (abort || unanswered) {
    st.sendQ.clear();
    submitRst(st, NGHTTP2_CANCEL);
  } else if (!st.endRequested) {
    st.endRequested = true;
    streamDataReady(st);
  } else if (st.localEndSent && !st.remoteEnded) {
    submitRst(st, NGHTTP2_NO_ERROR);  // we are done both ways: stop the peer's DATA
  }
  kick();
}

void H2ConnectionImpl::releaseStream(std::unique_ptr<H2Stream::Impl> impl) {
  H2Stream::Impl& st = *impl;
  st.owner = nullptr;
  st.cb = nullptr;
  st.onResponse = nullptr;
  if (destroying_ || closed_ || st.h2Closed) {
    if (!closed_ && st.recvQ.size() > 0) {
      nghttp2_session_consume_connection(session_, st.recvQ.size());  // unread bytes of a closed stream
      kick();
    }
    streams_.erase(st.id);
    return;  // impl (and its blocks) freed here
  }
  if (!st.released) closeStream(st, !st.endRequested);
  orphans_[st.id] = std::move(impl);  // until nghttp2 closes the stream (onStreamClose)
}

// ---- stream state helpers -----------------------------------------------------------------------

void H2ConnectionImpl::markEvent(H2Stream::Impl& st, uint8_t ev) {
  if (st.owner == nullptr) return;
  if (ev & kEvReadable) st.owner->readReady_ = true;
  if (st.events == 0) dirty_.push_back(st.id);
  st.events |= ev;
}

void H2ConnectionImpl::markRemoteEnd(H2Stream::Impl& st) {
  st.remoteEnded = true;
  if (!st.readAbandoned) markEvent(st, kEvReadable);
}

void H2ConnectionImpl::dropReceived(H2Stream::Impl& st) {
  const size_t n = st.recvQ.size();
  if (n == 0) return;
  st.recvQ.clear();
  if (!closed_) nghttp2_session_consume(session_, st.id, n);
}

void H2ConnectionImpl::resetStream(H2Stream::Impl& st) {
  if (st.err != 0) return;
  st.err = ECONNRESET;
  dropReceived(st);
  st.sendQ.clear();
  if (st.owner != nullptr) st.owner->writeReady_ = true;
  uint8_t ev = kEvReadable;
  if (st.writeBlocked) ev |= kEvWritable;
  if (st.local && !st.responseNotified) ev |= kEvResponse;
  markEvent(st, ev);
}

void H2ConnectionImpl::submitRst(H2Stream::Impl& st, uint32_t code) {
  if (st.rstSent || st.h2Closed || closed_) return;
  st.rstSent = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id, code);
}

void H2ConnectionImpl::killStreams() {
  for (auto& [id, st] : streams_) {
    if (!st->h2Closed) resetStream(*st);
  }
}

// ---- events -------------------------------------------------------------------------------------

void H2ConnectionImpl::dispatchEvents() {
  if (dispatching_) return;  // the outer loop picks up what is added meanwhile
  dispatching_ = true;
  while (!dirty_.empty() || !requests_.empty()) {
    dirtyBatch_.swap(dirty_);
    for (int32_t id : dirtyBatch_) {
      H2Stream::Impl* st = find(id);
      if (st == nullptr || st->owner == nullptr) continue;
      const uint8_t ev = st->events;
      st->events = 0;
      if ((ev & kEvResponse) && !st->responseNotified) {
        st->responseNotified = true;
        auto fn = std::move(st->onResponse);
        st->onResponse = nullptr;
        if (fn) fn(*st->owner);
        st = find(id);  // the callback may have destroyed it
      }
      if ((ev & kEvReadable) && st != nullptr && st->owner != nullptr && st->cb != nullptr) {
        st->cb->onStreamReadable(*st->owner);
        st = find(id);
      }
      if ((ev & kEvWritable) && st != nullptr && st->owner != nullptr && st->cb != nullptr) {
        st->cb->onStreamWritable(*st->owner);
      }
    }
    dirtyBatch_.clear();
    if (!requests_.empty()) {
      requestBatch_.swap(requests_);
      for (auto& s : requestBatch_) {
        if (s == nullptr) continue;
        if (s->impl_->err != 0 || closed_) {
          s.reset();  // reset before we could deliver it
          continue;
        }
        stats_->streamsAccepted.add();
        cb_.onRequest(*this, std::move(s));
      }
      requestBatch_.clear();
    }
  }
  dispatching_ = false;
}

// ---- transport I/O ------------------------------------------------------------------------------

void H2ConnectionImpl::kick() {
  if (!kickTimer_->enabled()) kickTimer_->enable(Duration{0});
}

void H2ConnectionImpl::onKick() {
  if (closed_) {
    dispatchEvents();
    return;
  }
  if (readPending_) {
    readTransport();
  } else {
    flush();
  }
}

void H2ConnectionImpl::onStreamReadable(Stream&) { readTransport(); }

void H2ConnectionImpl::onStreamWritable(Stream&) { flush(); }

void H2ConnectionImpl::readTransport() {
  if (closed_ || !started_ || reading_) return;
  readPending_ = false;
  reading_ = true;
  Scratch& sc = scratch();
  uint8_t stackBuf[16 * 1024];
  uint8_t* buf = stackBuf;
  size_t cap = sizeof(stackBuf);
  const bool useScratch = !sc.readBusy;
  if (useScratch) {
    if (!sc.read) sc.read.reset(new uint8_t[kReadChunk]);
    sc.readBusy = true;
    buf = sc.read.get();
    cap = kReadChunk;
  }
  size_t budget = kReadBudget;
  int err = 0;
  bool eof = false;
  ssize_t bad = 0;
  while (!closed_) {
    if (budget == 0) {
      readPending_ = true;  // more may be waiting: continue after the other ready fds
      kick();
      break;
    }
    IoResult r = transport_->read(buf, cap);
    if (r.wouldBlock()) break;
    if (!r.ok()) {
      if (r.err == EINTR) continue;
      err = r.err;
      break;
    }
    if (r.value == 0) {
      eof = true;
      break;
    }
    const size_t n = static_cast<size_t>(r.value);
    budget -= std::min(budget, n);
    lastRecv_ = reactor_.now();
    ssize_t rv = nghttp2_session_mem_recv(session_, buf, n);
    if (rv < 0) {
      bad = rv;
      break;
    }
    dispatchEvents();
  }
  if (useScratch) sc.readBusy = false;
  reading_ = false;
  if (closed_) return;
  if (bad < 0) {
    std::string why = bad == NGHTTP2_ERR_BAD_CLIENT_MAGIC ? "bad connection preface"
                      : bad == NGHTTP2_ERR_FLOODED       ? "peer flooded us with control frames"
                                                         : nghttp2_strerror(static_cast<int>(bad));
    if (!lastLibError_.empty()) why += " (" + lastLibError_ + ")";
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    errorDetail_ = "sent GOAWAY PROTOCOL_ERROR: " + why;
    protoError_ = true;
    stats_->protocolErrors.add();
    flush();  // best effort: the GOAWAY
    fail(Errc::ProtocolError, errorDetail_);
    return;
  }
  if (err != 0) {
    fail(errcFromErrno(err) == Errc::Io ? Errc::Io : Errc::Reset,
         std::string("transport read: ") + strerror(err));
    return;
  }
  if (eof) {
    flush();
    if (closed_) return;
    if (protoError_) {
      fail(Errc::ProtocolError, errorDetail_);
    } else if (goawayRecv_ && activeStreams() == 0) {
      fail(Errc::Shutdown, "peer sent GOAWAY and closed the connection");
    } else if (goawayRequested_ && activeStreams() == 0) {
      fail(Errc::Ok, "GOAWAY sent; the peer closed the connection");
    } else {
      fail(Errc::Reset, goawayRecv_ ? "transport closed after GOAWAY with streams still open"
                                    : "transport closed by the peer without GOAWAY");
    }
    return;
  }
  flush();
}

bool H2ConnectionImpl::writeOutput(Errc& reason, std::string& detail) {
  if (flushing_) return true;
  flushing_ = true;
  Scratch& sc = scratch();
  const bool useScratch = !sc.outBusy;
  if (useScratch) sc.outBusy = true;
  ByteBuf& out = useScratch ? sc.out : parked_;
  int werr = 0;
  ssize_t sendErr = 0;
  auto writeOut = [&](ByteBuf& b) {
    while (!b.empty()) {
      IoResult r = transport_->write(b.data(), b.size());
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        if (r.err == EINTR) continue;
        werr = r.err;
        return;
      }
      b.consume(static_cast<size_t>(r.value));
      if (!b.empty() && !transport_->writeReady()) return;  // short write: the socket is full
    }
  };
  for (;;) {
    if (!parked_.empty()) {
      writeOut(parked_);
      if (werr != 0 || !parked_.empty()) break;  // still blocked: pull no more frames
    }
    fillTarget_ = &out;
    while (out.size() < kWriteBatch) {
      const uint8_t* p = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &p);
      if (n < 0) {
        sendErr = n;
        break;
      }
      if (n == 0) break;
      out.append(p, static_cast<size_t>(n));
    }
    fillTarget_ = nullptr;
    if (sendErr != 0 || out.empty()) break;
    if (&out == &parked_) continue;  // written at the top of the loop
    writeOut(out);
    if (werr != 0) break;
    if (!out.empty()) {
      parked_.append(out.data(), out.size());  // the only copy beyond framing, when blocked
      out.clear();
      break;
    }
  }
  if (useScratch) {
    sc.out.clear();
    sc.outBusy = false;
  }
  flushing_ = false;
  if (parked_.empty() && parked_.capacity() > 0) parked_.reset();  // idle: hold no buffer
  if (werr != 0) {
    reason = errcFromErrno(werr) == Errc::Io ? Errc::Io : Errc::Reset;
    detail = std::string("transport write: ") + strerror(werr);
    return false;
  }
  if (sendErr != 0) {
    reason = Errc::Io;
    detail = std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(sendErr));
    return false;
  }
  return true;
}

void H2ConnectionImpl::flush() {
  if (closed_ || !started_ || flushing_) return;
  Errc reason = Errc::Ok;
  std::string detail;
  if (!writeOutput(reason, detail)) {
    fail(reason, std::move(detail));
    return;
  }
  if (activeStreams() == 0 && pool_.pooled() > 0) pool_.trim();
  dispatchEvents();
  maybeFinish();
}

void H2ConnectionImpl::maybeFinish() {
  if (closed_ || !started_) return;
  const bool done = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (!done) return;
  if (!parked_.empty()) {
    // The last frames (a GOAWAY) wait for the transport; do not wait forever.
    if (!lingerTimer_) {
      lingerTimer_ = reactor_.createTimer([this] {
        fail(protoError_ ? Errc::ProtocolError : Errc::Reset,
             protoError_ ? errorDetail_ : "peer stopped reading after GOAWAY");
      });
    }
    if (!lingerTimer_->enabled()) lingerTimer_->enable(kLinger);
    return;
  }
  if (protoError_) {
    fail(Errc::ProtocolError, errorDetail_);
  } else if (goawayRecv_ && goawayRecvCode_ != NGHTTP2_NO_ERROR) {
    std::string d = std::string("peer sent GOAWAY ") + nghttp2_http2_strerror(goawayRecvCode_);
    if (!goawayRecvDetail_.empty()) d += ": " + goawayRecvDetail_;
    fail(Errc::Reset, d);
  } else if (goawayRecv_) {
    fail(Errc::Shutdown, "peer sent GOAWAY; all streams ended");
  } else {
    fail(Errc::Ok, "GOAWAY sent; all streams ended");
  }
}

// ---- keepalive ----------------------------------------------------------------------------------

void H2ConnectionImpl::onPingTimer() {
  if (closed_) return;
  const MonotonicTime now = reactor_.now();
  if (pingOutstanding_) {
    const auto waited = std::chrono::duration_cast<Duration>(now - pingSentAt_);
    if (waited >= opts_.pingTimeout) {
      stats_->pingTimeouts.add();
      fail(Errc::IdleTimeout, "no PING ack within " + std::to_string(opts_.pingTimeout.count()) + " ms");
      return;
    }
    pingTimer_->enable(opts_.pingTimeout - waited);
    return;
  }
  const auto idle = std::chrono::duration_cast<Duration>(now - lastRecv_);
  if (idle < opts_.pingInterval) {
    pingTimer_->enable(opts_.pingInterval - idle);
    return;
  }
  uint8_t opaque[8];
  ++pingSeq_;
  memcpy(opaque, &pingSeq_, sizeof(opaque));
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque);
  pingOutstanding_ = true;
  pingSentAt_ = now;
  pingTimer_->enable(opts_.pingTimeout);
  kick();
}

// ---- closing ------------------------------------------------------------------------------------

void H2ConnectionImpl::teardown(bool sendGoaway, bool notifyNow) {
  if (sendGoaway && started_) {
    // Best effort: tell the peer, in one write attempt, that nothing more is coming.
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    Errc ignored = Errc::Ok;
    std::string why;
    (void)writeOutput(ignored, why);
  }
  closed_ = true;
  kickTimer_->disable();
  pingTimer_->disable();
  if (lingerTimer_) lingerTimer_->disable();
  transport_->setCallbacks(nullptr);
  transport_->close(false);
  parked_.reset();
  killStreams();
  for (auto& [id, st] : orphans_) streams_.erase(id);
  orphans_.clear();
  incoming_.clear();  // their H2Streams release themselves (closed_: just forgotten)
  requests_.clear();
  if (notifyNow) dispatchEvents();
}

void H2ConnectionImpl::fail(Errc reason, std::string detail) {
  if (closed_) return;
  if (reason == Errc::ProtocolError) {
    spdlog::info("h2 {}: connection error: {}", roleName(role_), detail);
  } else {
    spdlog::debug("h2 {}: connection closed: {}: {}", roleName(role_), errcReason(reason), detail);
  }
  if (reason == Errc::IdleTimeout) transport_->close(true);  // a dead peer: reset, do not linger
  teardown(false, true);
  cb_.onConnectionClosed(*this, reason, detail);
}

}  // namespace ugate::http
