#include "quic/quic_stream.h"

#include <cerrno>

namespace ugate::quic {

IoResult QuicStream::read(uint8_t* buf, size_t len) {
  if (released_) return IoResult{0, EBADF};
  if (s_ == nullptr) return IoResult{0, ECONNRESET};
  if (s_->err != 0 && s_->recvQ.empty()) return IoResult{0, s_->err};
  const size_t n = s_->recvQ.read(buf, len);
  if (n > 0) {
    host_->consumed(*s_, n);
    if (s_ != nullptr && s_->recvQ.empty() && !s_->remoteEnded) readReady_ = false;
    return IoResult{static_cast<int64_t>(n), 0};
  }
  if (s_->remoteEnded) return IoResult{0, 0};  // EOF
  readReady_ = false;
  return IoResult{0, EAGAIN};
}

IoResult QuicStream::write(const uint8_t* buf, size_t len) {
  if (released_) return IoResult{0, EBADF};
  if (s_ == nullptr) return IoResult{0, ECONNRESET};
  if (s_->err != 0) return IoResult{0, s_->err};
  if (s_->finQueued || s_->closed) return IoResult{0, EPIPE};
  if (len == 0) return IoResult{0, 0};
  const size_t cap = host_->writeCap();
  const size_t held = s_->sendBuf.size();
  if (held >= cap || s_->holdWrites) {
    s_->writeBlocked = true;
    writeReady_ = false;
    return IoResult{0, EAGAIN};
  }
  const size_t n = std::min(len, writeRoom(held, cap));
  s_->sendBuf.append(buf, n);
  if (s_->sendBuf.size() >= cap) {
    s_->writeBlocked = true;
    writeReady_ = false;
  }
  host_->dataReady(*s_);
  return IoResult{static_cast<int64_t>(n), 0};
}

void QuicStream::shutdownWrite() {
  if (released_ || s_ == nullptr || s_->err != 0 || s_->finQueued || s_->closed) return;
  s_->finQueued = true;
  host_->dataReady(*s_);
}

void QuicStream::close(bool abort) {
  if (released_) return;
  released_ = true;
  cb_ = nullptr;
  readReady_ = writeReady_ = false;
  if (s_ != nullptr) {
    s_->face = nullptr;
    StreamState* s = s_;
    StreamHost* h = host_;
    s_ = nullptr;
    host_ = nullptr;
    h->released(*s, abort);
  }
}

}  // namespace ugate::quic
