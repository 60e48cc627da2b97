// What nghttp2 reports about the session, recorded on the stream states (h2_connection_impl.h).
// Nothing here calls the application: dispatchEvents() does that once nghttp2 has returned.
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "http/h2_connection_impl.h"

namespace ugate::http {

namespace {

H2ConnectionImpl* self(void* ud) { return static_cast<H2ConnectionImpl*>(ud); }

int beginHeadersCb(nghttp2_session*, const nghttp2_frame* f, void* ud) {
  return self(ud)->onBeginHeaders(f);
}

int headerCb(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
             const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
  return self(ud)->onHeader(f, {reinterpret_cast<const char*>(name), namelen},
                            {reinterpret_cast<const char*>(value), valuelen});
}

int frameRecvCb(nghttp2_session*, const nghttp2_frame* f, void* ud) { return self(ud)->onFrameRecv(f); }

int dataChunkCb(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* ud) {
  return self(ud)->onDataChunk(id, data, len);
}

int streamCloseCb(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
  return self(ud)->onStreamClose(id, code);
}

int frameSendCb(nghttp2_session*, const nghttp2_frame* f, void* ud) { return self(ud)->onFrameSend(f); }

int sendDataCb(nghttp2_session*, nghttp2_frame* f, const uint8_t* framehd, size_t length,
               nghttp2_data_source*, void* ud) {
  return self(ud)->onSendData(f, framehd, length);
}

int errorCb(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
  self(ud)->onLibError(std::string(msg, len));
  return 0;
}

int invalidFrameCb(nghttp2_session*, const nghttp2_frame* f, int libErr, void* ud) {
  self(ud)->onLibError("invalid frame type " + std::to_string(f->hd.type) + " on stream " +
                       std::to_string(f->hd.stream_id) + ": " + nghttp2_strerror(libErr));
  return 0;
}

nghttp2_session_callbacks* makeCallbacks() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    spdlog::critical("h2: out of memory creating nghttp2 callbacks");
    std::abort();
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, beginHeadersCb);
  nghttp2_session_callbacks_set_on_header_callback(cbs, headerCb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, frameRecvCb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, dataChunkCb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, streamCloseCb);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, frameSendCb);
  nghttp2_session_callbacks_set_send_data_callback(cbs, sendDataCb);
  nghttp2_session_callbacks_set_error_callback2(cbs, errorCb);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, invalidFrameCb);
  return cbs;
}

// printable: a peer-supplied string made safe for a log line, at most 128 bytes.
std::string printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && s.size() < 128; ++i) {
    s.push_back(p[i] >= 0x20 && p[i] < 0x7f ? static_cast<char>(p[i]) : '?');
  }
  return s;
}

}  // namespace

const nghttp2_session_callbacks* H2ConnectionImpl::sessionCallbacks() {
  static nghttp2_session_callbacks* cbs = makeCallbacks();  // shared, immutable, never freed
  return cbs;
}

void H2ConnectionImpl::onLibError(std::string msg) {
  if (msg.size() > 200) msg.resize(200);
  lastLibError_ = std::move(msg);
}

int H2ConnectionImpl::onBeginHeaders(const nghttp2_frame* f) {
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  const int32_t id = f->hd.stream_id;
  if (role_ == Role::Server && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto impl = std::make_unique<H2Stream::Impl>();
    impl->conn = this;
    impl->id = id;
    impl->recvQ.setPool(&pool_);
    impl->sendQ.setPool(&pool_);
    auto s = std::make_unique<H2Stream>(std::move(impl));
    s->writeReady_ = true;
    streams_[id] = s->impl_.get();
    incoming_[id] = std::move(s);
    ++openRemote_;
    return 0;
  }
  H2Stream::Impl* st = find(id);
  if (st != nullptr && role_ == Role::Client && !st->finalResponse) {
    // A (possibly interim 1xx) response block starts: the final one replaces it.
    st->headers.clear();
    st->headerBytes = 0;
    st->status = 0;
  }
  return 0;
}

int H2ConnectionImpl::onHeader(const nghttp2_frame* f, std::string_view name, std::string_view value) {
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  H2Stream::Impl* st = find(f->hd.stream_id);
  if (st == nullptr || st->owner == nullptr) return 0;
  const bool trailer = role_ == Role::Server ? st->headersDone : st->finalResponse;
  if (st->tooLarge) return 0;
  // RFC 9113 6.5.2: a field's size is its name and value lengths plus 32.
  st->headerBytes += static_cast<uint32_t>(name.size() + value.size() + 32);
  if (trailer) {  // nothing a tunnel uses; gRPC's status (nghttp2 refused pseudo-headers here)
    if (st->headerBytes <= opts_.maxHeaderListBytes) {
      st->peerTrailers.emplace_back(std::string(name), std::string(value));
    }
    return 0;
  }
  if (st->headerBytes > opts_.maxHeaderListBytes) {
    st->tooLarge = true;
    Headers().swap(st->headers);
    return 0;
  }
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      st->method = value;
    } else if (name == ":authority") {
      st->authority = value;
    } else if (name == ":path") {
      st->path = value;
    } else if (name == ":status") {
      int v = 0;
      for (char c : value) v = v * 10 + (c - '0');  // nghttp2 checked: three digits
      st->status = v;
    }
    return 0;
  }
  st->headers.emplace_back(std::string(name), std::string(value));
  return 0;
}

int H2ConnectionImpl::onFrameRecv(const nghttp2_frame* f) {
  const int32_t id = f->hd.stream_id;
  const bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (f->hd.type) {
    case NGHTTP2_HEADERS: {
      H2Stream::Impl* st = find(id);
      if (st == nullptr) break;
      if (role_ == Role::Server) {
        if (!st->headersDone && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
          st->headersDone = true;
          if (end) st->remoteEnded = true;
          auto it = incoming_.find(id);
          if (it == incoming_.end()) break;
          H2StreamPtr s = std::move(it->second);
          incoming_.erase(it);
          if (st->tooLarge) {
            stats_->headersTooLarge.add();
            spdlog::debug("h2: stream {}: request headers over {} bytes: 431", id,
                          opts_.maxHeaderListBytes);
            respond(*st, 431, {}, {});
            s.reset();  // orphaned: the connection sends the 431, then resets if need be
          } else {
            if (end) markRemoteEnd(*st);
            requests_.push_back(std::move(s));
          }
        } else if (end) {
          markRemoteEnd(*st);  // trailers
        }
        break;
      }
      if (!st->finalResponse) {
        if (st->tooLarge) {
          stats_->headersTooLarge.add();
          spdlog::debug("h2: stream {}: response headers over {} bytes: reset", id,
                        opts_.maxHeaderListBytes);
          st->status = 0;  // no response: onResponse sees 0
          submitRst(*st, NGHTTP2_PROTOCOL_ERROR);
          resetStream(*st);
          break;
        }
        if (st->status >= 200) {
          st->finalResponse = true;
          markEvent(*st, kEvResponse);
        }
      }
      if (end) markRemoteEnd(*st);
      break;
    }
    case NGHTTP2_DATA:
      if (end) {
        if (H2Stream::Impl* st = find(id)) markRemoteEnd(*st);
      }
      break;
    case NGHTTP2_RST_STREAM:
      stats_->resetsReceived.add();
      if (H2Stream::Impl* st = find(id)) st->resetCode = f->rst_stream.error_code;
      break;
    case NGHTTP2_PING:
      if ((f->hd.flags & NGHTTP2_FLAG_ACK) && pingOutstanding_) {
        pingOutstanding_ = false;
        pingTimer_->enable(opts_.pingInterval);  // the timer was set for the ack deadline
      }
      break;
    case NGHTTP2_GOAWAY:
      stats_->goawaysReceived.add();
      goawayRecv_ = true;
      goawayRecvCode_ = f->goaway.error_code;
      goawayRecvDetail_ = printable(f->goaway.opaque_data, f->goaway.opaque_data_len);
      spdlog::debug("h2: peer sent GOAWAY {} last_stream_id={} {}",
                    nghttp2_http2_strerror(f->goaway.error_code), f->goaway.last_stream_id,
                    goawayRecvDetail_);
      break;
    default:
      break;
  }
  return 0;
}

int H2ConnectionImpl::onDataChunk(int32_t id, const uint8_t* data, size_t len) {
  stats_->bytesIn.add(len);
  H2Stream::Impl* st = find(id);
  if (st == nullptr || st->readAbandoned || st->err != 0 || st->owner == nullptr) {
    nghttp2_session_consume(session_, id, len);  // nobody reads it: keep the windows open
    return 0;
  }
  st->recvQ.append(data, len);
  markEvent(*st, kEvReadable);
  return 0;
}

int H2ConnectionImpl::onStreamClose(int32_t id, uint32_t code) {
  H2Stream::Impl* st = find(id);
  if (st == nullptr) return 0;
  st->h2Closed = true;
  if (st->local) {
    --openLocal_;
  } else {
    --openRemote_;
  }
  if (code != NGHTTP2_NO_ERROR || !st->remoteEnded) {
    resetStream(*st);
  } else if (st->writeBlocked) {
    markEvent(*st, kEvWritable);  // the writer learns EPIPE
  }
  if (st->owner == nullptr) {
    auto it = orphans_.find(id);
    if (it != orphans_.end()) {
      streams_.erase(id);
      orphans_.erase(it);
    }
    return 0;
  }
  incoming_.erase(id);  // reset before its headers completed: never delivered
  return 0;
}

int H2ConnectionImpl::onFrameSend(const nghttp2_frame* f) {
  switch (f->hd.type) {
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS:
      if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (H2Stream::Impl* st = find(f->hd.stream_id)) {
          st->localEndSent = true;
          // Nobody reads this stream any more: ask the peer to stop sending (RFC 9113 8.1).
          if (st->readAbandoned && !st->remoteEnded && !st->h2Closed) {
            submitRst(*st, NGHTTP2_NO_ERROR);
          }
        }
      }
      break;
    case NGHTTP2_RST_STREAM:
      stats_->resetsSent.add();
      break;
    case NGHTTP2_GOAWAY:
      if (f->goaway.error_code != NGHTTP2_NO_ERROR && !protoError_) {
        protoError_ = true;
        stats_->protocolErrors.add();
        errorDetail_ = std::string("sent GOAWAY ") + nghttp2_http2_strerror(f->goaway.error_code);
        std::string why = printable(f->goaway.opaque_data, f->goaway.opaque_data_len);
        if (why.empty()) why = lastLibError_;
        if (!why.empty()) errorDetail_ += ": " + why;
      }
      break;
    default:
      break;
  }
  return 0;
}

ssize_t H2ConnectionImpl::onReadData(int32_t id, size_t length, uint32_t* flags) {
  H2Stream::Impl* st = find(id);
  if (st == nullptr || st->rstSent) return NGHTTP2_ERR_DEFERRED;  // an RST_STREAM is queued
  const size_t q = st->sendQ.size();
  if (q == 0) {
    if (st->endRequested) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (st->trailersRequested) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;  // no empty DATA frame; the trailers end it
        submitTrailers(*st);
      }
      return 0;
    }
    st->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  const size_t n = std::min(q, length);
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;  // onSendData copies straight from sendQ to the output
  if (n == q && st->endRequested) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailersRequested) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      submitTrailers(*st);
    }
  }
  return static_cast<ssize_t>(n);
}

int H2ConnectionImpl::onSendData(nghttp2_frame* f, const uint8_t* framehd, size_t length) {
  H2Stream::Impl* st = find(f->hd.stream_id);
  if (st == nullptr || st->sendQ.size() < length || fillTarget_ == nullptr) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // cannot happen; nghttp2 resets the stream
  }
  const size_t pad = f->data.padlen;  // never set by us; handled for completeness
  const size_t total = 9 + length + pad;
  uint8_t* p = fillTarget_->tail(total);
  memcpy(p, framehd, 9);
  p += 9;
  if (pad > 0) *p++ = static_cast<uint8_t>(pad - 1);
  st->sendQ.read(p, length);
  if (pad > 1) memset(p + length, 0, pad - 1);
  fillTarget_->commit(total);
  stats_->bytesOut.add(length);
  if (st->writeBlocked && st->sendQ.size() < opts_.streamWriteCap && st->err == 0) {
    st->writeBlocked = false;
    if (st->owner != nullptr) st->owner->writeReady_ = true;
    markEvent(*st, kEvWritable);
  }
  return 0;
}

}  // namespace ugate::http
