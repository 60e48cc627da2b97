#include "http/admin_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "core/socket_util.h"

namespace ugate::http {

namespace {
constexpr size_t kMaxConns = 64;
constexpr Duration kIdleTimeout{15'000};
}  // namespace

class AdminServer::Conn final : private IoWatcher, public DeferredDeletable {
 public:
  Conn(AdminServer& s, int fd) : server_(s), fd_(fd), parser_(8192, 64) {
    timer_ = s.reactor_.createTimer([this] { shutdown(); });
    timer_->enable(kIdleTimeout);
    s.reactor_.addFd(fd_, this, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    alive_ = std::make_shared<bool>(true);
  }
  ~Conn() override {
    *alive_ = false;
    if (fd_ >= 0) {
      server_.reactor_.removeFd(fd_, this);
      ::close(fd_);
    }
  }
  void shutdown() {
    if (closed_) return;
    closed_ = true;
    timer_->disable();
    server_.reactor_.removeFd(fd_, this);
    ::close(fd_);
    fd_ = -1;
    server_.remove(this);
  }
  Conn* prev{nullptr};
  Conn* next{nullptr};

 private:
  void onIoEvent(uint32_t ev) override {
    if (closed_) return;
    if (ev & EPOLLOUT) writeOut();
    if (!closed_ && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) readIn();
  }

  void readIn() {
    uint8_t buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      if (n <= 0) {
        peerClosed_ = true;
        if (!busy_ && out_.empty()) shutdown();
        return;
      }
      in_.append(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
      if (in_.size() > 64 * 1024) {  // a client pipelining without reading answers
        shutdown();
        return;
      }
    }
    process();
  }

  void process() {
    while (!busy_ && !closed_ && !in_.empty()) {
      size_t used = 0;
      auto st = parser_.feed({reinterpret_cast<const uint8_t*>(in_.data()), in_.size()}, used);
      in_.erase(0, used);
      if (st == ParseStatus::NeedMore) return;
      if (st == ParseStatus::Error) {
        int status = parser_.errorStatus();
        spdlog::debug("admin: bad request: {}", parser_.error());
        closeAfterWrite_ = true;
        send(formatResponse(status, "", {{"Content-Type", "text/plain"}},
                            std::string(parser_.error()) + "\n", false));
        return;
      }
      Request req = parser_.takeRequest();
      parser_.reset();
      if (req.contentLength > 0 || req.chunked) {
        // The admin API takes no request bodies.
        closeAfterWrite_ = true;
        send(formatResponse(413, "", {{"Content-Type", "text/plain"}}, "request bodies are not accepted\n", false));
        return;
      }
      busy_ = true;
      bool keepAlive = req.keepAlive;
      bool head = req.method == "HEAD";
      std::weak_ptr<bool> alive = alive_;
      server_.handler_.handleAdmin(req, [this, alive, keepAlive, head](AdminResponse r) {
        auto a = alive.lock();
        if (!a || !*a || closed_) return;
        busy_ = false;
        std::string resp = formatResponse(r.status, "", {{"Content-Type", r.contentType}}, r.body, keepAlive);
        if (head) resp.resize(resp.size() - r.body.size());
        if (!keepAlive) closeAfterWrite_ = true;
        send(std::move(resp));
        if (!closed_ && !closeAfterWrite_) process();
      });
    }
  }

  void send(std::string data) {
    out_ += data;
    timer_->enable(kIdleTimeout);
    writeOut();
  }

  void writeOut() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) return;
        shutdown();
        return;
      }
      out_.erase(0, static_cast<size_t>(n));
    }
    if (closeAfterWrite_ || (peerClosed_ && !busy_)) shutdown();
  }

  AdminServer& server_;
  int fd_;
  RequestParser parser_;
  std::string in_;
  std::string out_;
  TimerPtr timer_;
  std::shared_ptr<bool> alive_;
  bool busy_{false};
  bool closed_{false};
  bool closeAfterWrite_{false};
  bool peerClosed_{false};
};

class AdminServer::Acceptor final : private IoWatcher {
 public:
  Acceptor(AdminServer& s, int fd) : server_(s), fd_(fd) { s.reactor_.addFd(fd_, this, EPOLLIN); }
  ~Acceptor() override {
    server_.reactor_.removeFd(fd_, this);
    ::close(fd_);
  }

 private:
  void onIoEvent(uint32_t) override {
    for (;;) {
      int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or EMFILE: the next connection retries
      if (server_.numConns_ >= kMaxConns) {
        closeAbort(fd);
        continue;
      }
      auto* c = new Conn(server_, fd);
      c->next = server_.conns_;
      if (server_.conns_) server_.conns_->prev = c;
      server_.conns_ = c;
      ++server_.numConns_;
    }
  }
  AdminServer& server_;
  int fd_;
};

AdminServer::AdminServer(Reactor& r, AdminHandler& h) : reactor_(r), handler_(h) {}

AdminServer::~AdminServer() {
  close();
  while (conns_) {
    Conn* c = conns_;
    conns_ = c->next;
    delete c;
  }
}

Result<void> AdminServer::listen(const SocketAddress& addr) {
  auto fd = openListenSocket(addr, 128, /*reusePort=*/false);
  if (!fd) return makeError(fd.error().code, "admin: " + fd.error().detail);
  bound_ = localAddress(*fd);
  acceptor_ = std::make_unique<Acceptor>(*this, *fd);
  return {};
}

void AdminServer::close() { acceptor_.reset(); }

void AdminServer::remove(Conn* c) {
  if (c->prev) c->prev->next = c->next;
  else conns_ = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  --numConns_;
  reactor_.deferredDelete(std::unique_ptr<DeferredDeletable>(c));
}

}  // namespace ugate::http
