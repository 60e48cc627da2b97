#pragma once
// TcpStream: a Stream over a non-blocking TCP socket registered edge-triggered with a Reactor.
#include <functional>

#include <ugate/reactor.h>
#include <ugate/stream.h>

namespace ugate {

class TcpStream final : public Stream, private IoWatcher {
 public:
  /** ConnectCallback receives 0 on success or the errno of a failed connect. */
  using ConnectCallback = std::function<void(int err)>;

  /** TcpStream takes ownership of a connected (accepted) fd. */
  TcpStream(Reactor& r, int fd);
  /** connecting: takes an fd from startConnect(); cb runs once when the connect resolves. */
  TcpStream(Reactor& r, int fd, ConnectCallback cb);
  ~TcpStream() override;

  // ugate::Stream
  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }
  IoResult read(uint8_t* buf, size_t len) override;
  IoResult write(const uint8_t* buf, size_t len) override;
  void shutdownWrite() override;
  void close(bool abort) override;
  int spliceFd() const override { return fd_; }
  bool readNeedsCopy() const override { return urgent_; }

  int fd() const { return fd_; }
  /**
   * release gives up the socket without closing it (handing it to another process): it leaves the
   * reactor's epoll set first, since the kernel keeps a registration while any process holds the
   * socket. Returns the fd; the stream is then closed.
   */
  int release();

 private:
  // ugate::IoWatcher
  void onIoEvent(uint32_t events) override;

  Reactor& reactor_;
  int fd_;
  StreamCallbacks* cb_{nullptr};
  ConnectCallback connectCb_;
  bool peerClosed_{false};  // peerClosed_: EPOLLRDHUP/HUP/ERR seen, so reads continue until EOF
  // cleanFin_: the peer's FIN was seen (EPOLLRDHUP) with no error or hang-up so far. Then a short
  // read has drained the last bytes and the next read is EOF without asking the kernel (eofNext_).
  bool cleanFin_{false};
  bool eofNext_{false};
  // urgent_: the peer sent TCP urgent data (EPOLLPRI). recv() then stops short at the urgent mark
  // with more bytes queued, so a short read no longer means "drained": read on until EAGAIN.
  bool urgent_{false};
};

}  // namespace ugate
