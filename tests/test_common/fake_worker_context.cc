#include "test_common/fake_worker_context.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "test_common/reactor_sync.h"

namespace ugate::test {

// ---------------------------------------------------------------------------------------------
void MemoryPipe::push(std::string_view bytes) {
  in_.append(bytes);
  notify();
}

void MemoryPipe::pushEof() {
  eof_ = true;
  notify();
}

void MemoryPipe::pushError(int err) {
  err_ = err;
  notify();
}

void MemoryPipe::notify() {
  if (stream_ == nullptr) return;
  MemoryStream& s = *stream_;
  s.readReady_ = true;
  if (s.cb_) s.cb_->onStreamReadable(s);
}

std::pair<StreamPtr, MemoryPipePtr> MemoryStream::make() {
  auto p = std::make_shared<MemoryPipe>();
  return {std::make_unique<MemoryStream>(p), p};
}

MemoryStream::MemoryStream(MemoryPipePtr p) : pipe_(std::move(p)) {
  pipe_->stream_ = this;
  writeReady_ = true;
  readReady_ = !pipe_->in_.empty() || pipe_->eof_ || pipe_->err_ != 0;
}

MemoryStream::~MemoryStream() {
  pipe_->stream_ = nullptr;
  pipe_->destroyed = true;
}

IoResult MemoryStream::read(uint8_t* buf, size_t len) {
  MemoryPipe& p = *pipe_;
  if (p.closed) return {0, EBADF};
  if (!p.in_.empty()) {
    size_t n = std::min(len, p.in_.size());
    std::memcpy(buf, p.in_.data(), n);
    p.in_.erase(0, n);
    ++p.readCalls;
    return {static_cast<int64_t>(n), 0};
  }
  if (p.err_ != 0) return {0, p.err_};
  if (p.eof_) return {0, 0};
  readReady_ = false;
  return {0, EAGAIN};
}

IoResult MemoryStream::write(const uint8_t* buf, size_t len) {
  if (pipe_->closed || pipe_->shutWrite) return {0, EPIPE};
  pipe_->written.append(reinterpret_cast<const char*>(buf), len);
  return {static_cast<int64_t>(len), 0};
}

void MemoryStream::close(bool abort) {
  pipe_->closed = true;
  pipe_->aborted = abort;
  readReady_ = writeReady_ = false;
}

// ---------------------------------------------------------------------------------------------
struct FakeResolver::Held {
  std::string host;
  uint16_t port{0};
  DnsCallback cb;
  bool cancelled{false};
};

namespace {
/** Cancelling<Base>: a DnsQuery or TunnelRequest whose destruction sets the fake's cancel flag. */
template <class Base>
struct Cancelling final : Base {
  explicit Cancelling(std::shared_ptr<bool> c) : cancelled(std::move(c)) {}
  ~Cancelling() override { *cancelled = true; }
  std::shared_ptr<bool> cancelled;
};
}  // namespace

Result<std::vector<SocketAddress>> FakeResolver::lookup(const std::string& host,
                                                        uint16_t port) const {
  auto it = answers_.find(host);
  if (it == answers_.end())
    return makeError(Errc::DnsFailure, host + ": no such host (fake resolver)");
  std::vector<SocketAddress> out;
  for (SocketAddress a : it->second) {
    a.setPort(port);
    out.push_back(a);
  }
  return out;
}

DnsQueryPtr FakeResolver::resolve(const std::string& host, uint16_t port, DnsCallback cb) {
  ++queries;
  if (auto ip = SocketAddress::fromIp(host, port)) {
    cb(std::vector<SocketAddress>{*ip});
    return nullptr;
  }
  if (!hold) {
    cb(lookup(host, port));
    return nullptr;
  }
  auto h = std::make_shared<Held>();
  h->host = host;
  h->port = port;
  h->cb = std::move(cb);
  held_.push_back(h);
  // The query shares only the cancellation flag, so a released Held does not keep it alive.
  auto flag = std::shared_ptr<bool>(h, &h->cancelled);
  return std::make_unique<Cancelling<DnsQuery>>(std::move(flag));
}

size_t FakeResolver::release() {
  std::vector<std::shared_ptr<Held>> batch;
  batch.swap(held_);
  size_t n = 0;
  for (auto& h : batch) {
    if (h->cancelled) continue;
    ++n;
    h->cb(lookup(h->host, h->port));
  }
  return n;
}

size_t FakeResolver::pending() const {
  return static_cast<size_t>(
      std::count_if(held_.begin(), held_.end(), [](const auto& h) { return !h->cancelled; }));
}

// ---------------------------------------------------------------------------------------------
void FakeRouter::dial(std::string host, uint16_t port) {
  decision = {};
  decision.action = RouteDecision::Action::Dial;
  decision.target = HostPort{std::move(host), port};
}

void FakeRouter::dialCluster(std::string name) {
  decision = {};
  clusterName = std::move(name);
  decision.action = RouteDecision::Action::DialCluster;
  decision.cluster = clusterName;
}

void FakeRouter::dialOriginal() {
  decision = {};
  decision.action = RouteDecision::Action::DialOriginal;
}

void FakeRouter::reject(std::string name) {
  decision = {};
  decision.action = RouteDecision::Action::Reject;
  routeName = std::move(name);
}

void FakeRouter::noRoute() {
  decision = {};
  decision.action = RouteDecision::Action::NoRoute;
}

RouteDecision FakeRouter::route(const StreamMeta& meta) const {
  ++calls;
  if (onRoute) onRoute(meta);
  RouteDecision d = decision;
  d.route = routeName;
  d.via = via;
  return d;
}

// ---------------------------------------------------------------------------------------------
namespace {

/** FakeTlsStream: the handshake per Mode, then a pass-through to the inner stream. */
class FakeTlsStream final : public HandshakingStream, private StreamCallbacks {
 public:
  FakeTlsStream(StreamPtr inner, Reactor& r, Duration timeout, FakeTlsProvider::Mode mode,
                bool server, TlsProvider::Done done)
      : inner_(std::move(inner)),
        reactor_(r),
        timeout_(timeout),
        mode_(mode),
        server_(server),
        done_(std::move(done)) {}

  void start() override {
    switch (mode_) {
      case FakeTlsProvider::Mode::Succeed: {
        TlsOutcome o;
        o.ok = true;
        o.version = "TLSv1.3";
        if (server_) {
          o.peer = std::make_unique<PeerIdentity>();
          o.peer->nodeId = "PEER";
          o.sni = "fake.example";
        }
        finish(std::move(o));
        return;
      }
      case FakeTlsProvider::Mode::Fail: {
        TlsOutcome o;
        o.failure = "bad_certificate";
        o.detail = "fake handshake failure";
        finish(std::move(o));
        return;
      }
      case FakeTlsProvider::Mode::Hang:
        // Like the real TLS stream: its own deadline, reported as timedOut.
        timer_ = reactor_.createTimer([this] {
          TlsOutcome o;
          o.timedOut = true;
          o.failure = "handshake_timeout";
          o.detail = "no handshake within " + std::to_string(timeout_.count()) + " ms";
          finish(std::move(o));
        });
        timer_->enable(timeout_);
        return;
    }
  }

  // ugate::Stream
  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }
  IoResult read(uint8_t* buf, size_t len) override {
    IoResult r = inner_->read(buf, len);
    sync();
    return r;
  }
  IoResult write(const uint8_t* buf, size_t len) override {
    IoResult r = inner_->write(buf, len);
    sync();
    return r;
  }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void close(bool abort) override {
    if (timer_) timer_->disable();  // may run inside the timer's own callback: not destroyed here
    inner_->close(abort);
    readReady_ = writeReady_ = false;
  }

 private:
  void finish(TlsOutcome&& o) {
    if (o.ok) {
      inner_->setCallbacks(this);
      sync();
    }
    auto done = std::move(done_);
    done(std::move(o));
  }
  void sync() {
    readReady_ = inner_->readReady();
    writeReady_ = inner_->writeReady();
  }
  // ugate::StreamCallbacks (the inner stream, after the handshake)
  void onStreamReadable(Stream&) override {
    sync();
    if (cb_) cb_->onStreamReadable(*this);
  }
  void onStreamWritable(Stream&) override {
    sync();
    if (cb_) cb_->onStreamWritable(*this);
  }

  StreamPtr inner_;
  Reactor& reactor_;
  Duration timeout_;
  FakeTlsProvider::Mode mode_;
  bool server_;
  TlsProvider::Done done_;
  StreamCallbacks* cb_{nullptr};
  TimerPtr timer_;
};

}  // namespace

HandshakingStreamPtr FakeTlsProvider::server(const ListenerTlsConfig&, StreamPtr inner, Reactor& r,
                                             Duration timeout, Done done) const {
  ++servers;
  lastTimeout = timeout;
  return std::make_unique<FakeTlsStream>(std::move(inner), r, timeout, serverMode, true,
                                         std::move(done));
}

HandshakingStreamPtr FakeTlsProvider::client(const UpstreamTlsConfig&, std::string_view sni,
                                             std::string_view, StreamPtr inner, Reactor& r,
                                             Duration timeout, Done done) const {
  ++clients;
  lastTimeout = timeout;
  lastSni = std::string(sni);
  return std::make_unique<FakeTlsStream>(std::move(inner), r, timeout, clientMode, false,
                                         std::move(done));
}

// ---------------------------------------------------------------------------------------------
struct FakeTunnelDialer::Open {
  Done done;
  bool cancelled{false};
  bool answered{false};
};

bool FakeTunnelDialer::handles(const HostPort& target, const std::string& via) const {
  const std::string_view suffix = ".mesh";
  return !via.empty() || (target.host.size() > suffix.size() && target.host.ends_with(suffix));
}

TunnelRequestPtr FakeTunnelDialer::open(const StreamMeta&, const HostPort& target,
                                        const std::string& via, Done done) {
  lastTarget = target;
  lastVia = via;
  auto o = std::make_shared<Open>();
  o->done = std::move(done);
  opens_.push_back(o);
  return std::make_unique<Cancelling<TunnelRequest>>(std::shared_ptr<bool>(o, &o->cancelled));
}

bool FakeTunnelDialer::complete(Result<StreamPtr> r) {
  for (auto& o : opens_) {
    if (o->cancelled || o->answered) continue;
    o->answered = true;
    auto done = std::move(o->done);
    done(std::move(r));
    return true;
  }
  return false;
}

size_t FakeTunnelDialer::pending() const {
  return static_cast<size_t>(std::count_if(
      opens_.begin(), opens_.end(), [](const auto& o) { return !o->cancelled && !o->answered; }));
}

// ---------------------------------------------------------------------------------------------
void RecordingAccessLog::log(const StreamMeta& meta) {
  lines.push_back({meta.id, meta.closeReason, meta.closeDetail, meta.route, meta.upstream,
                   meta.bytesFromClient, meta.bytesToClient});
}

// ---------------------------------------------------------------------------------------------
namespace {
std::shared_ptr<Config> plainConfig() {
  auto c = std::make_shared<Config>();
  ListenerConfig l;
  l.name = "t";
  l.kind = "tcp";
  c->listeners.push_back(std::move(l));
  return c;
}
}  // namespace

FakeWorkerContext::FakeWorkerContext(std::shared_ptr<Config> cfg)
    : cfg_(cfg ? std::move(cfg) : plainConfig()),
      reactor_(newReactor(time_, 0)),
      pipes_(cfg_->limits.pipeBytes, 16),
      scratch_(new uint8_t[cfg_->limits.copyBufferBytes]),
      spliceCtx_(
          new SpliceContext{*reactor_, pipes_, scratch_.get(), cfg_->limits.copyBufferBytes}) {
  thread_ = std::thread([this] { reactor_->run(); });
}

FakeWorkerContext::~FakeWorkerContext() {
  reactor_->exit();
  thread_.join();
  for (ProxySession* s : open) delete s;
  open.clear();
}

ListenerStats& FakeWorkerContext::stats(const std::string& listener) {
  auto& p = stats_[listener];
  if (!p) p = std::make_unique<ListenerStats>();
  return *p;
}

void FakeWorkerContext::pauseAccepting(const std::string& why) {
  ++pauses;
  lastPauseWhy = why;
}

void FakeWorkerContext::startSession(StreamPtr client, StreamMeta meta, SessionStart s) {
  startModuleSession(*this, std::move(client), std::move(meta), std::move(s));
}

void FakeWorkerContext::addSession(std::unique_ptr<ProxySession> s) { open.insert(s.release()); }

void FakeWorkerContext::removeSession(ProxySession* s) {
  const StreamMeta& m = s->meta();
  closed.push_back({m.id, s->closedIn(), m.closeReason, m.closeDetail});
  open.erase(s);
}

void FakeWorkerContext::run(const std::function<void()>& fn) { runOn(*reactor_, fn); }

bool FakeWorkerContext::waitFor(const std::function<bool()>& pred, int timeoutMs) {
  return waitOn(*reactor_, pred, timeoutMs);
}

void FakeWorkerContext::advance(Duration d) {
  time_.advance(d);
  run([] {});  // the turn that runs this task ran the timers due at the new time first
}

ProxySession* FakeWorkerContext::startSession(StreamPtr client, StreamMeta meta,
                                              FrontDoorPtr frontDoor, ProxySession::Timeouts t,
                                              bool acceptProxyProtocol,
                                              const std::function<void(ProxySession&)>& before) {
  ProxySession* raw = nullptr;
  run([&] {
    if (meta.id == 0) meta.id = nextStreamId();
    if (meta.listener.empty()) meta.listener = "t";
    meta.start = reactor_->now();
    ListenerStats& st = stats(meta.listener);
    auto s = std::make_unique<ProxySession>(*this, st, std::move(client), std::move(meta),
                                            std::move(frontDoor), t, acceptProxyProtocol);
    raw = s.get();
    if (before) before(*raw);
    addSession(std::move(s));
    raw->start();
  });
  return raw;
}

MemoryPipePtr FakeWorkerContext::startMemorySession(FrontDoorPtr frontDoor,
                                                    ProxySession::Timeouts t,
                                                    bool acceptProxyProtocol,
                                                    ProxySession** session) {
  auto [stream, pipe] = MemoryStream::make();
  StreamMeta meta;
  meta.source = *SocketAddress::fromIp("127.0.0.1", 40000);
  meta.local = *SocketAddress::fromIp("127.0.0.1", 1080);
  ProxySession* s = startSession(std::move(stream), std::move(meta), std::move(frontDoor), t,
                                 acceptProxyProtocol);
  if (session) *session = s;
  return pipe;
}

}  // namespace ugate::test
