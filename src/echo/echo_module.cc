#include "echo/echo_module.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/access_log_sink.h>
#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/listener_stats.h>
#include <ugate/metrics.h>
#include <ugate/reactor.h>
#include <ugate/worker_context.h>

namespace ugate::echo {

namespace {

constexpr size_t kBufferBytes = 16 * 1024;

class EchoWorker;

/**
 * EchoConn: one client. Reads into its buffer and writes it back; while the client does not take
 * the bytes back, it stops reading (back-pressure: never more than one buffer per connection).
 * Ends on the client's EOF (after writing everything back), an error, the idle timeout or drain.
 */
class EchoConn final : public IoWatcher {
 public:
  EchoConn(EchoWorker& w, int fd, StreamMeta meta, Duration idle);
  ~EchoConn() override;
  void onIoEvent(uint32_t events) override;
  void close(Errc why);

 private:
  bool flush();  // false: the socket is full (or failed; closed then)
  EchoWorker& w_;
  int fd_;
  StreamMeta meta_;
  Duration idle_;
  TimerPtr idleTimer_;
  std::unique_ptr<char[]> buf_;
  size_t head_{0}, tail_{0};  // buf_[head_, tail_) is still to be written back
  bool eof_{false};
  bool closed_{false};
};

class EchoWorker final : public ModuleWorker {
 public:
  EchoWorker(WorkerContext& w, EchoCounters& c) : w_(w), counters_(c) {}
  ~EchoWorker() override {
    auto conns = std::move(conns_);
    conns.clear();  // destroyed with the worker: their fds close
  }
  void accept(const ListenerConfig& l, int fd, StreamMeta meta) {
    counters_.connections.fetch_add(1, std::memory_order_relaxed);
    const Duration idle = l.idleTimeout.value_or(w_.config().limits.idleTimeout);
    auto c = std::make_unique<EchoConn>(*this, fd, std::move(meta), idle);
    conns_.emplace(c.get(), std::move(c));
  }
  void drain() override {
    std::vector<EchoConn*> all;
    for (auto& [p, c] : conns_) all.push_back(p);
    for (EchoConn* c : all) c->close(Errc::Shutdown);
  }
  /** finished: c closed; it is freed at the end of this loop turn. */
  void finished(EchoConn* c) {
    auto it = conns_.find(c);
    if (it == conns_.end()) return;
    auto c2 = std::move(it->second);
    conns_.erase(it);
    deleteLater(w_.reactor(), std::move(c2));
  }
  WorkerContext& ctx() { return w_; }
  EchoCounters& counters() { return counters_; }

 private:
  WorkerContext& w_;
  EchoCounters& counters_;
  std::unordered_map<EchoConn*, std::unique_ptr<EchoConn>> conns_;
};

EchoConn::EchoConn(EchoWorker& w, int fd, StreamMeta meta, Duration idle)
    : w_(w), fd_(fd), meta_(std::move(meta)), idle_(idle) {
  meta_.route = "echo";
  ListenerStats& st = w_.ctx().stats(meta_.listener);
  st.accepted.add();
  st.active.add(1);
  idleTimer_ = w_.ctx().reactor().createTimer([this] { close(Errc::IdleTimeout); });
  idleTimer_->enable(idle_);
  if (!w_.ctx().reactor().addFd(fd_, this, EPOLLIN | EPOLLOUT | EPOLLRDHUP)) close(Errc::Io);
}

EchoConn::~EchoConn() {
  if (!closed_) close(Errc::Shutdown);
}

void EchoConn::close(Errc why) {
  if (closed_) return;
  closed_ = true;
  idleTimer_.reset();
  w_.ctx().reactor().removeFd(fd_, this);
  ::close(fd_);
  meta_.closeReason = why;
  ListenerStats& st = w_.ctx().stats(meta_.listener);
  st.active.add(-1);
  st.closes[static_cast<size_t>(why)].add();
  w_.ctx().accessLog().log(meta_);
  w_.finished(this);
}

bool EchoConn::flush() {
  while (head_ < tail_) {
    ssize_t n = ::send(fd_, buf_.get() + head_, tail_ - head_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return false;
    if (n < 0) {
      close(errno == EPIPE || errno == ECONNRESET ? Errc::Reset : Errc::Io);
      return false;
    }
    head_ += static_cast<size_t>(n);
    meta_.bytesToClient += static_cast<uint64_t>(n);
    w_.ctx().stats(meta_.listener).bytesOut.add(static_cast<uint64_t>(n));
  }
  head_ = tail_ = 0;
  return true;
}

void EchoConn::onIoEvent(uint32_t events) {
  if (closed_) return;
  idleTimer_->enable(idle_);
  if (events & EPOLLERR) {
    close(Errc::Reset);
    return;
  }
  if (!flush()) return;  // the client is not reading: read nothing more until it does
  while (!eof_) {
    if (!buf_) buf_ = std::make_unique<char[]>(kBufferBytes);
    ssize_t n = ::recv(fd_, buf_.get(), kBufferBytes, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      close(errno == ECONNRESET ? Errc::Reset : Errc::Io);
      return;
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    tail_ = static_cast<size_t>(n);
    meta_.bytesFromClient += static_cast<uint64_t>(n);
    w_.ctx().stats(meta_.listener).bytesIn.add(static_cast<uint64_t>(n));
    w_.counters().bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    if (!flush()) return;
  }
  if (eof_ && head_ == tail_) close(Errc::Ok);  // everything went back: end as the client did
}

}  // namespace

void EchoModule::registerKinds(ListenerKindRegistry& kinds) {
  ListenerKindSpec spec;
  spec.name = "echo";
  spec.streamKind = StreamKind::Tcp;
  // It answers in the clear: TLS on it would echo ciphertext, so the config is refused instead.
  spec.validate = [](const ListenerConfig& l, const std::string& path) -> Result<void> {
    if (l.tls || l.upstreamTls) {
      return makeError(Errc::InvalidArgument,
                       path + (l.tls ? ".tls" : ".upstreamTls") + ": kind 'echo' answers in the clear (no TLS)");
    }
    if (l.to.type != Target::Type::None) {
      return makeError(Errc::InvalidArgument, path + ".to: kind 'echo' answers itself and dials nothing");
    }
    return {};
  };
  // No `to`: the module answers each connection itself, on the worker that accepted it.
  spec.acceptConnection = [this](WorkerContext& w, const ListenerConfig& l, int fd, StreamMeta meta) {
    auto* ew = static_cast<EchoWorker*>(w.moduleWorker(*this));  // built by newWorker below
    if (ew == nullptr) {
      ::close(fd);
      return;
    }
    ew->accept(l, fd, std::move(meta));
  };
  kinds.add(std::move(spec));
}

ModuleWorkerPtr EchoModule::newWorker(WorkerContext& w) { return std::make_unique<EchoWorker>(w, counters_); }

void EchoModule::renderMetrics(MetricsWriter& out) const {
  out.counter("ugate_echo_connections_total", "Connections the echo listeners answered.",
              counters_.connections.load(std::memory_order_relaxed));
  out.counter("ugate_echo_bytes_total", "Bytes echoed back to clients.", counters_.bytes.load(std::memory_order_relaxed));
}

}  // namespace ugate::echo
