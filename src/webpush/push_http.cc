// The push listener's connections (push_http.h): TLS, then HTTP/2 or HTTP/1.1 by ALPN.
#include "webpush/push_http.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <ugate/access_log_sink.h>
#include <ugate/config.h>
#include <ugate/http_endpoint.h>
#include <ugate/listener_stats.h>
#include <ugate/module.h>
#include <ugate/socket_util.h>
#include <ugate/tcp_stream.h>

namespace ugate::webpush {

namespace {

constexpr size_t kReadChunk = 16 * 1024;
// kMaxUnparsed: bytes a client may send ahead (pipelining) before it is cut off.
constexpr size_t kMaxUnparsed = 64 * 1024;
// kLinger: how long a connection we are closing waits for the client to read our last answer.
constexpr Duration kLinger{2'000};

std::string lowerAscii(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return s;
}

std::vector<http::Header> h1Headers(const HeaderList& h) {
  std::vector<http::Header> out;
  out.reserve(h.size());
  for (const auto& [n, v] : h) out.push_back({n, v});
  return out;
}

HeaderList eventHeaders() { return {{"content-type", "text/event-stream"}, {"cache-control", "no-store"}}; }

}  // namespace

// ---- HTTP/1.1 exchange ---------------------------------------------------------------------------

class PushConn::H1Exchange final : public Exchange {
 public:
  H1Exchange(PushConn& c, RequestInfo req, bool keepAlive) : Exchange(c.w_, std::move(req)), c_(c), keepAlive_(keepAlive) {}
  void respond(int status, HeaderList headers, std::string body) override {
    if (done_) return;
    done_ = true;
    const bool keep = keepAlive_ && !c_.eof_ && !c_.draining_;
    c_.h1Write(http::formatResponse(status, "", h1Headers(c_.withAltSvc(std::move(headers))), body, keep));
    c_.h1Responded(keep);
  }
  void startEvents() override {
    if (done_) return;
    events_ = true;
    c_.h1State_ = H1State::Events;
    c_.timer_->disable();
    c_.h1Write(http::formatResponseHead(200, "", h1Headers(c_.withAltSvc(eventHeaders())), -1, false));
  }
  void sendEvents(std::string_view bytes) override {
    if (!done_ && events_) c_.h1Write(std::string(bytes));
  }
  void endEvents() override {
    if (done_) return;
    done_ = true;
    c_.h1Responded(false);
  }

 private:
  PushConn& c_;
  bool keepAlive_;
  bool done_{false};
  bool events_{false};
};

// ---- HTTP/2 exchange -----------------------------------------------------------------------------

class PushConn::H2Exchange final : public Exchange, private StreamCallbacks {
 public:
  H2Exchange(PushConn& c, http::H2StreamPtr s, RequestInfo req) : Exchange(c.w_, std::move(req)), c_(c), s_(std::move(s)) {
    s_->setCallbacks(this);
  }
  ~H2Exchange() override {
    if (s_) s_->setCallbacks(nullptr);
  }
  /** begin reads the body, then hands the request to the worker. */
  void begin() {
    const std::string len = s_->header("content-length");
    if (!len.empty() && (len.size() > 9 || std::stoull("0" + len) > worker_.config().maxBody)) {
      tooLarge();
      return;
    }
    // Slowloris over HTTP/2: the connection's PINGs keep it alive, so each request's body has the
    // listener's request deadline of its own.
    deadline_ = c_.w_.ctx().reactor().createTimer([this] {
      if (dispatched_ || done_) return;
      worker_.refuse(*this, {408, "request_timeout", "the request body did not arrive within " +
                                                          std::to_string(c_.requestTimeout_.count()) + " ms"});
    });
    deadline_->enable(c_.requestTimeout_);
    readSome();
  }
  void respond(int status, HeaderList headers, std::string body) override {
    if (done_) return;
    done_ = true;
    headers = c_.withAltSvc(std::move(headers));
    http::Headers h(headers.begin(), headers.end());
    if (status >= 200 && status < 300) {
      s_->respond(status, h, std::move(body));
      s_->shutdownWrite();
    } else {
      s_->respond(status, h, std::move(body));
    }
    c_.h2Done(this);
  }
  void startEvents() override {
    if (done_) return;
    events_ = true;
    const HeaderList h = c_.withAltSvc(eventHeaders());
    s_->respond(200, http::Headers(h.begin(), h.end()));
  }
  void sendEvents(std::string_view bytes) override {
    if (done_ || !events_) return;
    pending_.append(bytes);
    flush();
  }
  void endEvents() override {
    if (done_) return;
    ending_ = true;
    flush();
  }

 private:
  void tooLarge() {
    worker_.refuse(*this, {413, "too_large", "body over webpush.maxBody (" + std::to_string(worker_.config().maxBody) + ")"});
  }
  void readSome() {
    uint8_t buf[kReadChunk];
    while (!done_) {
      IoResult r = s_->read(buf, sizeof buf);
      if (r.wouldBlock()) return;
      if (!r.ok()) {  // reset by the client, or the connection died
        done_ = true;
        c_.h2Done(this);
        return;
      }
      if (r.value == 0) {
        if (!dispatched_) {
          dispatched_ = true;
          if (deadline_) deadline_->disable();
          worker_.handle(*this);  // may finish (and free) this exchange: nothing after it
        }
        return;
      }
      if (dispatched_) continue;  // bytes after the body of a delivery stream: ignored
      request().body.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(r.value));
      if (request().body.size() > worker_.config().maxBody) return tooLarge();
    }
  }
  void flush() {
    while (!pending_.empty()) {
      IoResult r = s_->write(reinterpret_cast<const uint8_t*>(pending_.data()), pending_.size());
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        done_ = true;
        c_.h2Done(this);
        return;
      }
      pending_.erase(0, static_cast<size_t>(r.value));
    }
    if (ending_ && !done_) {
      done_ = true;
      s_->shutdownWrite();
      c_.h2Done(this);
    }
  }
  // ugate::StreamCallbacks
  void onStreamReadable(Stream&) override { readSome(); }
  void onStreamWritable(Stream&) override { flush(); }

  PushConn& c_;
  http::H2StreamPtr s_;
  TimerPtr deadline_;  // the body's deadline (until it is read)
  std::string pending_;
  bool done_{false};
  bool events_{false};
  bool ending_{false};
  bool dispatched_{false};
};

// ---- PushConn ------------------------------------------------------------------------------------

PushConn::PushConn(PushWorker& w, const ListenerConfig& l, StreamMeta meta)
    : w_(w), meta_(std::move(meta)), source_(meta_.source.ip()) {
  meta_.kind = StreamKind::Push;
  const Config& cfg = w_.ctx().config();
  idle_ = l.idleTimeout.value_or(std::min<Duration>(cfg.limits.idleTimeout, Duration(120'000)));
  requestTimeout_ = l.sniffTimeout.value_or(cfg.limits.sniffTimeout);
  timer_ = w_.ctx().reactor().createTimer([this] {
    if (h2_ && h2_->activeStreams() > 0) {
      timer_->enable(idle_);  // requests and delivery streams in flight: HTTP/2 PINGs watch the peer
      return;
    }
    if (tls_ && !h2_ && (h1State_ == H1State::Body || (h1State_ == H1State::Head && (!in_.empty() || headStarted_)))) {
      // Slowloris: a request head or body that did not complete in time gets 408 and is counted.
      h1Refuse(408, "request_timeout", "the request did not arrive within " +
                                           std::to_string(requestTimeout_.count()) + " ms");
      return;  // (h1Refuse lingers for the client to read it, then closes)
    }
    close(Errc::IdleTimeout);  // idle, or a closing connection whose client did not read our answer
  });
  resume_ = w_.ctx().reactor().createTimer([this] { h1Process(); });
  ListenerStats& st = w_.ctx().stats(meta_.listener);
  st.accepted.add();
  st.active.add(1);
}

PushConn::~PushConn() {
  if (!closed_) {
    closed_ = true;
    w_.ctx().stats(meta_.listener).active.add(-1);
  }
}

bool PushConn::start(const TlsProvider& tls, const ListenerConfig& l, int fd) {
  auto hs = tls.server(*l.tls, std::make_unique<TcpStream>(w_.ctx().reactor(), fd), w_.ctx().reactor(),
                       w_.ctx().config().tls.handshakeTimeout, [this](TlsOutcome&& o) { onHandshake(std::move(o)); });
  if (!hs) return false;
  tls_ = std::move(hs);
  tls_->start();
  return true;
}

void PushConn::onHandshake(TlsOutcome&& o) {
  if (closed_) return;
  if (!o.ok) {
    w_.counters().tlsFailures.fetch_add(1, std::memory_order_relaxed);
    if (w_.ctx().logBudget()) {
      spdlog::info("webpush: listener {}: TLS from {}: {}: {}", meta_.listener, source_, o.failure, o.detail);
    }
    meta_.closeDetail = "TLS from client: " + o.failure + ": " + o.detail;
    close(o.timedOut ? Errc::HandshakeTimeout : Errc::AuthFailed);
    return;
  }
  w_.counters().connections.fetch_add(1, std::memory_order_relaxed);
  meta_.alpn = o.alpn;
  if (o.peer) {
    if (!o.peer->nodeId.empty()) peer_.push_back(o.peer->nodeId);
    if (!o.peer->spiffe.empty()) peer_.push_back(o.peer->spiffe);
  }
  for (const ModulePtr& m : modules().list()) {  // a quic listener serving this one (its "push")
    if (!altSvc_.empty()) break;
    if (auto* a = dynamic_cast<const AltServiceSource*>(w_.ctx().moduleWorker(*m))) altSvc_ = a->altSvc(meta_.listener);
  }
  timer_->enable(idle_);
  if (o.alpn == "h2") {
    w_.counters().h2Connections.fetch_add(1, std::memory_order_relaxed);
    http::H2Options opts;
    opts.maxConcurrentStreams = 256;
    opts.streamWindow = 64u << 10;
    opts.connectionWindow = 1u << 20;
    opts.streamWriteCap = 64u << 10;
    h2_ = http::H2Connection::create(w_.ctx().reactor(), std::move(tls_), http::H2Connection::Role::Server, opts, *this);
    h2_->start();
    return;
  }
  tls_->setCallbacks(this);
  onStreamReadable(*tls_);
}

HeaderList PushConn::withAltSvc(HeaderList h) const {
  if (!altSvc_.empty()) h.emplace_back("alt-svc", altSvc_);
  return h;
}

void PushConn::close(Errc why) {
  if (closed_) return;
  closed_ = true;
  ListenerStats& st = w_.ctx().stats(meta_.listener);
  st.active.add(-1);
  st.closes[static_cast<size_t>(why)].add();
  meta_.closeReason = why;
  w_.ctx().accessLog().log(meta_);  // one line per connection, with its ALPN and why it ended
  timer_.reset();
  resume_.reset();
  if (h1Exchange_) {
    h1Exchange_->detach();
    deleteLater(w_.ctx().reactor(), std::move(h1Exchange_));
  }
  for (auto& [p, e] : h2Exchanges_) {
    p->detach();
    deleteLater(w_.ctx().reactor(), std::move(e));
  }
  h2Exchanges_.clear();
  if (tls_) tls_->close(false);
  if (h2_) h2_->close();
  w_.connectionDone(this);
}

void PushConn::drain() {
  draining_ = true;
  if (h2_) {
    h2_->goAway();  // streams in flight finish; the connection closes after the last
  } else if (tls_ && h1State_ == H1State::Head && in_.empty()) {
    close();  // idle between requests
  }
}

// ---- HTTP/1.1 ------------------------------------------------------------------------------------

void PushConn::onStreamReadable(Stream& s) {
  if (closed_) return;
  uint8_t buf[kReadChunk];
  while (!eof_) {
    IoResult r = s.read(buf, sizeof buf);
    if (r.wouldBlock()) break;
    if (!r.ok()) return close(h1State_ == H1State::Head && in_.empty() ? Errc::Ok : Errc::Reset);
    if (r.value == 0) {
      eof_ = true;
      break;
    }
    if (h1State_ == H1State::Events || h1State_ == H1State::Closing) continue;  // nothing more is read
    in_.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(r.value));
    if (in_.size() > kMaxUnparsed + w_.config().maxBody) {
      w_.refused(source_, {400, "too_much_pipelined", "more than 64 KiB sent ahead of our answers"});
      return close(Errc::ProtocolError);
    }
  }
  h1Process();
  if (closed_) return;
  // The client ended its side: a request being answered gets its answer (then the connection
  // closes); a delivery stream, a half-read request or an idle connection ends now.
  if (eof_ && h1State_ != H1State::Waiting && (h1State_ != H1State::Closing || out_.empty())) close();
}

void PushConn::onStreamWritable(Stream&) {
  if (!closed_) h1Flush();
}

void PushConn::h1Process() {
  while (!closed_) {
    if (h1State_ == H1State::Head) {
      if (in_.empty()) return;
      size_t used = 0;
      http::ParseStatus ps = parser_.feed({reinterpret_cast<const uint8_t*>(in_.data()), in_.size()}, used);
      in_.erase(0, used);
      if (ps == http::ParseStatus::NeedMore) {
        headStarted_ = true;
        timer_->enable(requestTimeout_);  // slowloris: the head and body have this long
        return;
      }
      if (ps == http::ParseStatus::Error) {
        return h1Refuse(parser_.errorStatus(), "bad_request", std::string(parser_.error()));
      }
      head_ = parser_.takeRequest();
      parser_.reset();
      headStarted_ = false;
      timer_->enable(requestTimeout_);
      if (head_.chunked) return h1Refuse(411, "chunked_body", "send the body with Content-Length");
      const size_t max = w_.config().maxBody;
      if (head_.contentLength > static_cast<int64_t>(max)) {
        return h1Refuse(413, "too_large", "body of " + std::to_string(head_.contentLength) +
                                              " bytes is over webpush.maxBody (" + std::to_string(max) + ")");
      }
      bodyLeft_ = head_.contentLength > 0 ? static_cast<size_t>(head_.contentLength) : 0;
      body_.clear();
      h1State_ = H1State::Body;
      // curl and libcurl users wait (up to 1 s) for this before sending a body.
      if (const http::Header* e = head_.find("expect"); e && bodyLeft_ > in_.size() && lowerAscii(e->value) == "100-continue") {
        h1Write("HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
    if (h1State_ == H1State::Body) {
      const size_t n = std::min(bodyLeft_, in_.size());
      body_.append(in_, 0, n);
      in_.erase(0, n);
      bodyLeft_ -= n;
      if (bodyLeft_ > 0) return;
      h1Dispatch();
      continue;
    }
    return;  // Waiting, Events, Closing: nothing is parsed until the answer is out
  }
}

void PushConn::h1Dispatch() {
  RequestInfo req;
  req.method = head_.method;
  req.target = head_.target;
  req.source = source_;
  req.peer = peer_;
  for (auto& h : head_.headers) req.headers.emplace_back(lowerAscii(h.name), h.value);
  if (const http::Header* host = head_.find("host")) req.authority = host->value;
  req.body = std::move(body_);
  h1State_ = H1State::Waiting;
  h1Exchange_ = std::make_unique<H1Exchange>(*this, std::move(req), head_.keepAlive);
  head_ = http::Request{};  // copied into the exchange: a delivery stream keeps no second copy
  if (in_.empty()) std::string().swap(in_);  // no buffer kept while a delivery stream idles
  w_.handle(*h1Exchange_);
}

void PushConn::h1Refuse(int status, std::string reason, std::string detail) {
  w_.refused(source_, {status, reason, detail});
  h1Write(http::formatResponse(status, "", {{"content-type", "text/plain; charset=utf-8"}},
                               reason + ": " + detail + "\n", false));
  h1Responded(false);
}

void PushConn::h1Responded(bool keepAlive) {
  if (h1Exchange_) {
    h1Exchange_->detach();
    deleteLater(w_.ctx().reactor(), std::move(h1Exchange_));
  }
  if (closed_) return;
  if (keepAlive) {
    h1State_ = H1State::Head;
    timer_->enable(idle_);
    if (!in_.empty()) resume_->enable(Duration(0));  // a pipelined request, outside the responder's call
    return;
  }
  h1State_ = H1State::Closing;
  h1Flush();
}

void PushConn::h1Write(std::string bytes) {
  if (closed_) return;
  out_ += bytes;
  h1Flush();
}

void PushConn::h1Flush() {
  while (!out_.empty() && tls_) {
    IoResult r = tls_->write(reinterpret_cast<const uint8_t*>(out_.data()), out_.size());
    if (r.wouldBlock()) return;
    if (!r.ok()) return close(Errc::Reset);
    out_.erase(0, static_cast<size_t>(r.value));
  }
  if (h1State_ == H1State::Closing && out_.empty() && tls_) {
    // Our side is done: close_notify, then the client's EOF (or kLinger) closes the socket.
    tls_->shutdownWrite();
    if (eof_) return close();
    timer_->enable(kLinger);
  }
}

// ---- HTTP/2 --------------------------------------------------------------------------------------

void PushConn::onRequest(http::H2Connection&, http::H2StreamPtr s) {
  if (closed_) return;
  RequestInfo req;
  req.method = s->method();
  req.target = s->path();
  req.authority = s->authority();
  req.source = source_;
  req.peer = peer_;
  for (const auto& [n, v] : s->headers()) {
    if (!n.empty() && n[0] != ':') req.headers.emplace_back(n, v);
  }
  if (req.authority.empty()) req.authority = s->header("host");
  auto e = std::make_unique<H2Exchange>(*this, std::move(s), std::move(req));
  H2Exchange* raw = e.get();
  h2Exchanges_.emplace(raw, std::move(e));
  raw->begin();
}

void PushConn::h2Done(H2Exchange* e) {
  auto it = h2Exchanges_.find(e);
  if (it == h2Exchanges_.end()) return;
  e->detach();
  deleteLater(w_.ctx().reactor(), std::move(it->second));
  h2Exchanges_.erase(it);
}

void PushConn::onConnectionClosed(http::H2Connection&, Errc reason, const std::string& detail) {
  meta_.closeDetail = detail;
  // A client that hangs up with nothing in flight (no GOAWAY: curl) ended normally.
  const bool idle = h2Exchanges_.empty();
  close(reason == Errc::Shutdown || (reason == Errc::Reset && idle) ? Errc::Ok : reason);
}

}  // namespace ugate::webpush
