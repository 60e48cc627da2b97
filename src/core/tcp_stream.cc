#include <ugate/tcp_stream.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ugate/socket_util.h>

namespace ugate {

namespace {
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI;
}

TcpStream::TcpStream(Reactor& r, int fd) : reactor_(r), fd_(fd) {
  reactor_.addFd(fd_, this, kEvents);
}

TcpStream::TcpStream(Reactor& r, int fd, ConnectCallback cb)
    : reactor_(r), fd_(fd), connectCb_(std::move(cb)) {
  reactor_.addFd(fd_, this, kEvents);
}

TcpStream::~TcpStream() { close(false); }

void TcpStream::onIoEvent(uint32_t events) {
  if (connectCb_) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      return;
    }
    // A connect that succeeded raises EPOLLOUT alone; only an error or hang-up needs SO_ERROR
    // (one getsockopt fewer per upstream connection).
    int err = (events & (EPOLLERR | EPOLLHUP)) ? socketError(fd_) : 0;
    if (err == 0 && (events & EPOLLHUP)) err = ECONNREFUSED;
    auto cb = std::move(connectCb_);
    connectCb_ = nullptr;
    if (err == 0) {
      writeReady_ = true;
      readReady_ = (events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP)) != 0;
      urgent_ = (events & EPOLLPRI) != 0;
      peerClosed_ = (events & EPOLLRDHUP) != 0;
      cleanFin_ = peerClosed_;
    }
    cb(err);  // may destroy this
    return;
  }
  // Errors and hang-ups surface through read()/write() returning them.
  bool rd = events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP);
  if (events & EPOLLPRI) urgent_ = true;  // the urgent byte itself is not forwarded (out of band)
  bool wr = events & (EPOLLOUT | EPOLLERR | EPOLLHUP);
  if (rd) readReady_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peerClosed_ = true;
  if (events & (EPOLLHUP | EPOLLERR)) {
    cleanFin_ = eofNext_ = false;  // let the next read report the error
  } else if (events & EPOLLRDHUP) {
    cleanFin_ = true;
  }
  if (wr) writeReady_ = true;
  if (cb_ == nullptr) return;
  // The callbacks may close this stream; they never delete it within the call (deferred delete).
  if (rd) cb_->onStreamReadable(*this);
  if (wr && fd_ >= 0 && cb_) cb_->onStreamWritable(*this);
}

IoResult TcpStream::read(uint8_t* buf, size_t len) {
  if (fd_ < 0) return IoResult{0, EBADF};
  if (eofNext_) return IoResult{0, 0};
  ssize_t n = ::recv(fd_, buf, len, 0);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) readReady_ = false;
    return IoResult{0, e};
  }
  // A short read drained the socket: the next arrival raises a new edge. Not so once the peer's FIN
  // (or an error) was seen: that edge is spent, and the EOF must still be read.
  if (n > 0 && static_cast<size_t>(n) < len && !urgent_) {
    if (!peerClosed_) {
      readReady_ = false;
    } else if (cleanFin_) {
      eofNext_ = true;  // the FIN came before this read emptied the queue: nothing can follow it
    }
  }
  return IoResult{n, 0};
}

IoResult TcpStream::write(const uint8_t* buf, size_t len) {
  if (fd_ < 0) return IoResult{0, EBADF};
  ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) writeReady_ = false;
    return IoResult{0, e};
  }
  if (static_cast<size_t>(n) < len) writeReady_ = false;
  return IoResult{n, 0};
}

void TcpStream::shutdownWrite() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

int TcpStream::release() {
  const int fd = fd_;
  if (fd_ < 0) return -1;
  reactor_.removeFd(fd_, this);
  fd_ = -1;
  cb_ = nullptr;
  connectCb_ = nullptr;
  readReady_ = writeReady_ = false;
  return fd;
}

void TcpStream::close(bool abort) {
  if (fd_ < 0) return;
  reactor_.forgetFd(this);  // close() below takes the fd out of epoll
  if (abort) {
    closeAbort(fd_);
  } else {
    ::close(fd_);
  }
  fd_ = -1;
  cb_ = nullptr;
  connectCb_ = nullptr;
  readReady_ = writeReady_ = false;
}

}  // namespace ugate
