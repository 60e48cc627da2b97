// H2Stream: the Stream face of one HTTP/2 stream. Bytes live in the stream state's queues; the
// connection (h2_connection.cc) frames and delivers them.
#include <cerrno>

#include "http/h2_connection_impl.h"

namespace ugate::http {

namespace {
const std::string kEmpty;
}  // namespace

H2Stream::H2Stream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->owner = this; }

H2Stream::~H2Stream() {
  if (impl_ && impl_->conn != nullptr) impl_->conn->releaseStream(std::move(impl_));
}

int32_t H2Stream::id() const { return impl_->id; }
const Headers& H2Stream::headers() const { return impl_->headers; }

std::string H2Stream::header(std::string_view name) const {
  for (const auto& [n, v] : impl_->headers) {
    if (n == name) return v;
  }
  return {};
}

const std::string& H2Stream::method() const { return impl_->method; }
const std::string& H2Stream::authority() const { return impl_->authority; }
const std::string& H2Stream::path() const { return impl_->path; }
int H2Stream::status() const { return impl_->status; }
uint32_t H2Stream::resetCode() const { return impl_->resetCode; }
const Headers& H2Stream::trailers() const { return impl_->peerTrailers; }

H2Connection* H2Stream::connection() const {
  return impl_->conn != nullptr && !impl_->connGone ? impl_->conn : nullptr;
}

void H2Stream::respond(int status, const Headers& extra, std::string body) {
  if (H2ConnectionImpl* c = impl_->connGone ? nullptr : impl_->conn) {
    c->respond(*impl_, status, extra, std::move(body));
  }
}

void H2Stream::setCallbacks(StreamCallbacks* cb) { impl_->cb = cb; }

IoResult H2Stream::read(uint8_t* buf, size_t len) {
  Impl& s = *impl_;
  if (s.released) return IoResult{0, EBADF};
  if (s.err != 0) return IoResult{0, s.err};
  const size_t n = s.recvQ.read(buf, len);
  if (n > 0) {
    if (s.conn != nullptr && !s.connGone) s.conn->consumed(s, n);
    if (s.recvQ.empty() && !s.remoteEnded) readReady_ = false;  // drained: the next DATA is an edge
    return IoResult{static_cast<int64_t>(n), 0};
  }
  if (s.remoteEnded) return IoResult{0, 0};  // EOF
  if (s.conn == nullptr || s.connGone) return IoResult{0, ECONNRESET};
  readReady_ = false;
  return IoResult{0, EAGAIN};
}

IoResult H2Stream::write(const uint8_t* buf, size_t len) {
  Impl& s = *impl_;
  if (s.released) return IoResult{0, EBADF};
  if (s.err != 0) return IoResult{0, s.err};
  if (s.conn == nullptr || s.connGone || s.conn->closed()) return IoResult{0, ECONNRESET};
  if (s.endRequested || s.h2Closed) return IoResult{0, EPIPE};
  if (len == 0) return IoResult{0, 0};
  const size_t cap = s.conn->writeCap();
  const size_t queued = s.sendQ.size();
  if (queued >= cap) {
    s.writeBlocked = true;
    writeReady_ = false;
    return IoResult{0, EAGAIN};
  }
  const size_t n = std::min(len, cap - queued);
  s.sendQ.append(buf, n);
  if (s.sendQ.size() >= cap) {
    s.writeBlocked = true;
    writeReady_ = false;
  }
  s.conn->streamDataReady(s);
  return IoResult{static_cast<int64_t>(n), 0};
}

void H2Stream::shutdownWrite() {
  Impl& s = *impl_;
  if (s.released || s.err != 0 || s.endRequested || s.h2Closed) return;
  s.endRequested = true;
  if (s.conn != nullptr && !s.connGone) s.conn->streamDataReady(s);
}

void H2Stream::sendTrailers(const Headers& trailers) {
  Impl& s = *impl_;
  if (s.released || s.err != 0 || s.endRequested || s.h2Closed) return;
  if (!s.local && !s.responded) return;  // server side: the response headers come first
  s.trailers = trailers;
  s.trailersRequested = true;
  s.endRequested = true;
  if (s.conn != nullptr && !s.connGone) s.conn->streamDataReady(s);
}

void H2Stream::close(bool abort) {
  Impl& s = *impl_;
  if (s.released) return;
  s.released = true;
  s.cb = nullptr;
  readReady_ = writeReady_ = false;
  if (s.conn != nullptr && !s.connGone) s.conn->closeStream(s, abort);
}

}  // namespace ugate::http
