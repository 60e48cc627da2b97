#include "quic/h3_origin.h"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>

#include "quic/h3_app.h"

namespace ugate::quic {

namespace {
constexpr uint64_t kH3InternalError = 0x102;
}  // namespace

std::string OriginFace::buildHead(const StreamState& s, const std::string& clientIp, bool& chunked) {
  std::vector<http::Header> headers;
  headers.reserve(s.headers.size() + 2);
  int64_t length = http::kNoBody;
  std::string xff;
  for (const auto& [n, v] : s.headers) {
    if (n == "content-length") {
      int64_t cl = -1;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), cl);
      if (ec == std::errc{} && end == v.data() + v.size() && cl >= 0) length = cl;
      continue;
    }
    if (n == "x-forwarded-for") {
      xff = v;
      continue;
    }
    headers.push_back(http::Header{n, v});
  }
  headers.push_back(http::Header{"x-forwarded-for", xff.empty() ? clientIp : xff + ", " + clientIp});
  headers.push_back(http::Header{"x-forwarded-proto", "https"});
  // A body of unknown length (DATA frames to come, no content-length) goes chunked.
  chunked = length == http::kNoBody && !s.remoteEnded;
  if (chunked) length = http::kChunkedBody;
  return http::formatRequestHead(s.method, s.path.empty() ? "/" : s.path, s.authority, headers, length, false);
}

OriginFace::OriginFace(StreamHost* conn, StreamState* s, H3Server& h3, const std::string& clientIp)
    : QuicStream(conn, s), h3_(h3) {
  out_ = buildHead(*s, clientIp, chunked_);
  if (s->method == "HEAD") parser_.expectNoBody();
  readReady_ = true;  // the head is ready for the session as soon as the origin is connected
}

IoResult OriginFace::read(uint8_t* buf, size_t len) {
  if (released_) return IoResult{0, EBADF};
  if (s_ == nullptr) return IoResult{0, ECONNRESET};
  if (len == 0) return IoResult{0, 0};
  // Request body: from the DATA frames, framed as chunks when its length is unknown.
  if (outOff_ == out_.size()) {
    out_.clear();
    outOff_ = 0;
    if (!s_->recvQ.empty()) {
      const size_t room = chunked_ ? (len > 32 ? len - 32 : 0) : len;
      if (room > 0) {
        std::string body(std::min(room, s_->recvQ.size()), '\0');
        const size_t n = s_->recvQ.read(reinterpret_cast<uint8_t*>(body.data()), body.size());
        body.resize(n);
        host_->consumed(*s_, n);
        if (s_ == nullptr) return IoResult{0, ECONNRESET};
        if (chunked_) {
          http::appendChunk(out_, {reinterpret_cast<const uint8_t*>(body.data()), body.size()});
        } else {
          out_ = std::move(body);
        }
      }
    }
    if (out_.empty() && chunked_ && s_->remoteEnded && s_->recvQ.empty() && !lastChunk_) {
      http::appendLastChunk(out_);
      lastChunk_ = true;
    }
  }
  if (outOff_ < out_.size()) {
    const size_t n = std::min(len, out_.size() - outOff_);
    std::memcpy(buf, out_.data() + outOff_, n);
    outOff_ += n;
    return IoResult{static_cast<int64_t>(n), 0};
  }
  // Nothing more to send: the request is complete (or its body is still coming). EOF only once
  // the response ended, so the origin never sees a half-close while it answers.
  if (done_) return IoResult{0, 0};
  if (s_->err != 0) return IoResult{0, s_->err};
  readReady_ = false;
  return IoResult{0, EAGAIN};
}

bool OriginFace::deliverHead() {
  const http::Response& r = parser_.response();
  H3Headers headers;
  headers.reserve(r.headers.size());
  for (const auto& h : r.headers) {
    if (r.isHopByHop(h.name)) continue;
    std::string n = h.name;
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers.emplace_back(std::move(n), h.value);
  }
  const bool body = r.framing != http::BodyFraming::None;
  headSent_ = true;
  return h3_.respondOrigin(*s_, r.status, headers, body);
}

void OriginFace::fail(const char* why) {
  done_ = true;
  if (s_ == nullptr) return;
  spdlog::warn("quic: origin response for {}{} on stream {}: {} (after {} body bytes){}", s_->authority, s_->path,
               s_->id, why, parser_.bodyBytes(), headSent_ ? "; the stream is reset" : "; answered 502");
  if (!headSent_) {
    headSent_ = true;
    h3_.respondOrigin(*s_, 502, {{"x-ugate-error", "bad_response"}, {"content-type", "text/plain"}}, false);
  } else {
    h3_.resetStream(*s_, kH3InternalError);
  }
  markReadable();
}

IoResult OriginFace::write(const uint8_t* buf, size_t len) {
  if (released_) return IoResult{0, EBADF};
  if (s_ == nullptr) return IoResult{0, ECONNRESET};
  if (s_->err != 0) return IoResult{0, s_->err};
  if (done_) return IoResult{0, EPIPE};  // bytes after the response: not ours to forward
  // A write that starts below the cap is taken whole (up to kWriteSlack past it): the splicer then
  // never parks a remainder and copies it again.
  const size_t limit = std::min(len, writeRoom(s_->sendBuf.size(), host_->writeCap()));
  size_t used = 0;
  while (true) {
    // At the cap the client is slow: take no more bytes (backpressure on the origin), but still
    // ask the parser with no input, as an End can follow the last body bytes consuming nothing.
    const bool full = used >= limit;
    http::ResponseStep st = parser_.next(full ? std::span<const uint8_t>() : std::span<const uint8_t>(buf + used, limit - used));
    used += st.consumed;
    switch (st.event) {
      case http::ResponseEvent::NeedMore:
        if (full) break;
        return IoResult{static_cast<int64_t>(used), 0};
      case http::ResponseEvent::Head:
        if (!deliverHead()) {
          fail("cannot submit the response");
          return IoResult{0, EPROTO};
        }
        continue;
      case http::ResponseEvent::Body:
        s_->sendBuf.append(st.body.data(), st.body.size());
        h3_.resume(s_->id);
        continue;
      case http::ResponseEvent::End:
        done_ = true;
        s_->finQueued = true;
        h3_.resume(s_->id);
        host_->dataReady(*s_);
        markReadable();
        return IoResult{static_cast<int64_t>(len), 0};  // anything after it is dropped (Connection: close)
      case http::ResponseEvent::Error:
        fail(parser_.error().data());
        return IoResult{0, EPROTO};
    }
    break;  // full, and nothing more without input
  }
  host_->dataReady(*s_);
  if (used == 0) {
    s_->writeBlocked = true;
    writeReady_ = false;
    return IoResult{0, EAGAIN};
  }
  return IoResult{static_cast<int64_t>(used), 0};
}

void OriginFace::shutdownWrite() {
  // The origin closed its side: the end of a body delimited by the close, or a truncation.
  if (released_ || s_ == nullptr || done_) return;
  http::ResponseStep st = parser_.next({});  // an End not yet asked for (after the last body bytes)
  if (st.event != http::ResponseEvent::End) st = parser_.finish();
  if (st.event == http::ResponseEvent::End) {
    done_ = true;
    s_->finQueued = true;
    h3_.resume(s_->id);
    host_->dataReady(*s_);
    markReadable();
    return;
  }
  fail(parser_.error().data());
}

}  // namespace ugate::quic
