#include "http/admin_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <ugate/intrusive_list.h>
#include <ugate/socket_util.h>

namespace ugate::http {

namespace {
constexpr size_t kMaxConns = 64;
constexpr Duration kIdleTimeout{15'000};
constexpr size_t kMaxHeadBytes = 8192;          // a request head (line and headers) larger gets 431
constexpr size_t kMaxBufferedBytes = 64 * 1024;  // bytes waiting behind a request being answered
// After an error answer the client may still be sending (a huge header, a body): its bytes are read
// and dropped for a while, so that closing with unread data (an RST) does not destroy the answer
// before the client reads it (nginx's lingering close).
constexpr Duration kLingerTimeout{2'000};
constexpr size_t kMaxLingerBytes = 1024 * 1024;

const char* badRequestReason(int status) {
  switch (status) {
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 505: return "version_not_supported";
    default: return "malformed";
  }
}
}  // namespace

class AdminServer::Conn final : private IoWatcher, public DeferredDeletable {
 public:
  Conn(AdminServer& s, int fd) : server_(s), fd_(fd), parser_(kMaxHeadBytes, 64) {
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
    uint8_t buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        peerClosed_ = true;
        if (lingering_ || (!busy_ && out_.empty())) shutdown();
        return;
      }
      if (lingering_) {
        lingered_ += static_cast<size_t>(n);
        if (lingered_ > kMaxLingerBytes) {
          shutdown();
          return;
        }
        continue;
      }
      if (refusing_) continue;  // an error answer is being written; what follows is dropped
      in_.append(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
      // Parse as bytes arrive, so a head over the limit is answered (431) once the limit is
      // crossed, whatever the client still sends.
      process();
      if (closed_) return;
      if (!refusing_ && in_.size() > kMaxBufferedBytes) {
        // A client pipelining requests without reading the answers.
        server_.badRequest(fd_, "pipeline_overflow",
                           "over " + std::to_string(kMaxBufferedBytes) + " bytes sent while a request was answered");
        shutdown();
        return;
      }
    }
  }

  void process() {
    while (!busy_ && !closed_ && !refusing_ && !in_.empty()) {
      size_t used = 0;
      auto st = parser_.feed({reinterpret_cast<const uint8_t*>(in_.data()), in_.size()}, used);
      in_.erase(0, used);
      if (st == ParseStatus::NeedMore) return;
      if (st == ParseStatus::Error) {
        int status = parser_.errorStatus();
        server_.badRequest(fd_, badRequestReason(status), parser_.error());
        refuse(status, std::string(parser_.error()) + "\n");
        return;
      }
      Request req = parser_.takeRequest();
      parser_.reset();
      if (req.contentLength > 0 || req.chunked) {
        server_.badRequest(fd_, "body_not_accepted", "a request body on " + req.method + " " + req.target);
        refuse(413, "request bodies are not accepted\n");
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
        r.headers.insert(r.headers.begin(), Header{"Content-Type", r.contentType});
        std::string resp = formatResponse(r.status, "", r.headers, r.body, keepAlive);
        if (head) resp.resize(resp.size() - r.body.size());
        if (!keepAlive) closeAfterWrite_ = true;
        send(std::move(resp));
        if (!closed_ && !closeAfterWrite_) process();
      });
    }
  }

  // refuse answers an error and closes once it is written, after a lingering read (see above).
  void refuse(int status, std::string body) {
    refusing_ = true;
    closeAfterWrite_ = true;
    in_.clear();
    send(formatResponse(status, "", {{"Content-Type", "text/plain"}}, body, false));
  }

  void send(std::string data) {
    out_ += data;
    timer_->enable(kIdleTimeout);
    writeOut();
  }

  void writeOut() {
    if (lingering_) return;
    while (!out_.empty()) {
      ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        shutdown();
        return;
      }
      out_.erase(0, static_cast<size_t>(n));
    }
    if (refusing_ && !peerClosed_) {
      linger();
    } else if (closeAfterWrite_ || (peerClosed_ && !busy_)) {
      shutdown();
    }
  }

  // linger: the answer is out; send FIN and drop what the client still sends, until its EOF, a
  // deadline or a byte cap, then close.
  void linger() {
    lingering_ = true;
    ::shutdown(fd_, SHUT_WR);
    timer_->enable(kLingerTimeout);
    readIn();
  }

  AdminServer& server_;
  int fd_;
  RequestParser parser_;
  std::string in_;
  std::string out_;
  TimerPtr timer_;
  std::shared_ptr<bool> alive_;
  size_t lingered_{0};
  bool busy_{false};
  bool closed_{false};
  bool closeAfterWrite_{false};
  bool peerClosed_{false};
  bool refusing_{false};   // refusing_: an error answer is queued; nothing more is parsed
  bool lingering_{false};  // lingering_: the error answer is written; reading only to drop bytes
};

class AdminServer::Acceptor final : private IoWatcher {
 public:
  Acceptor(AdminServer& s, int fd) : server_(s), fd_(fd) { s.reactor_.addFd(fd_, this, EPOLLIN); }
  int fd() const { return fd_; }
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
      listPushFront(server_.conns_, new Conn(server_, fd));
      ++server_.numConns_;
    }
  }
  AdminServer& server_;
  int fd_;
};

AdminServer::AdminServer(Reactor& r, AdminHandler& h, std::string name)
    : reactor_(r), handler_(h), name_(std::move(name)) {}

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
  if (!fd) return makeError(fd.error().code, name_ + ": " + fd.error().detail);
  bound_ = localAddress(*fd);
  acceptor_ = std::make_unique<Acceptor>(*this, *fd);
  return {};
}

void AdminServer::adopt(int fd) {
  bound_ = localAddress(fd);
  acceptor_ = std::make_unique<Acceptor>(*this, fd);
}

int AdminServer::listenFd() const { return acceptor_ ? acceptor_->fd() : -1; }

void AdminServer::close() { acceptor_.reset(); }

void AdminServer::badRequest(int fd, std::string_view reason, std::string_view detail) {
  handler_.onAdminBadRequest(reason);
  uint64_t left = 0;
  if (badRequestLog_.allow(reactor_.now(), left)) {
    spdlog::warn("{}: bad request from {}: {}: {}{}", name_, peerAddress(fd).str(), reason, detail,
                 left ? " (and " + std::to_string(left) + " more since the last such line)" : "");
  }
}

void AdminServer::remove(Conn* c) {
  listUnlink(conns_, c);
  --numConns_;
  reactor_.deferredDelete(std::unique_ptr<DeferredDeletable>(c));
}

}  // namespace ugate::http
