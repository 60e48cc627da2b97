#pragma once
// One QUIC stream's state (StreamState, owned by its connection) and its face as a ugate::Stream
// (QuicStream, owned by whoever took it: a core session splicing a tunnel). Either may die first:
// the face of a stream whose connection died reads ECONNRESET; destroying an open face resets the
// stream. Bytes received wait in recvQ and are credited to the peer's flow control only when the
// application reads them, so QUIC flow control is end-to-end backpressure; bytes written wait in
// sendBuf until acknowledged (ngtcp2 and nghttp3 point into them) and write() says EAGAIN above a cap.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ugate/stream.h>

#include "http/h2_buffers.h"
#include "quic/send_buffer.h"

namespace ugate::quic {

class StreamHost;
class QuicStream;

/** StreamState: what the connection knows of one stream. */
struct StreamState {
  explicit StreamState(int64_t i) : id(i) {}
  int64_t id;
  // HTTP/3 request (server side): pseudo-headers and the rest, as received.
  std::string method, scheme, authority, path, protocol;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t headerBytes{0};
  int status{0};  // HTTP/3 response (client side)
  bool headersDone{false};
  bool responded{false};  // response headers submitted
  bool tunnel{false};     // a CONNECT (or mesh) stream whose bytes go to a session

  http::ChunkQueue recvQ;    // payload received, not yet read by the application
  bool remoteEnded{false};   // FIN received (EOF after recvQ)
  SendBuffer sendBuf;        // payload written, not yet acknowledged
  bool finQueued{false};     // the application ended its side: FIN after sendBuf
  bool finHanded{false};     // the stack took the FIN
  int err{0};                // errno the face reports (ECONNRESET: reset by the peer)
  uint64_t resetCode{0};
  bool closed{false};        // the QUIC stream is gone (stream_close)

  QuicStream* face{nullptr};  // the Stream face while someone holds it
  bool notifyRead{false};     // readiness to report once the connection's I/O turn ends
  bool notifyWrite{false};
  bool writeBlocked{false};   // write() said EAGAIN: tell the face when room appears
  bool holdWrites{false};     // a mesh stream not answered yet: its answer's header goes first
};

/** StreamHost: what a face asks of the connection that carries its stream. */
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  /** consumed: the application read n bytes: credit them to the peer. */
  virtual void consumed(StreamState& s, size_t n) = 0;
  /** dataReady: bytes or FIN were queued: write them when the connection may. */
  virtual void dataReady(StreamState& s) = 0;
  /** released: the face is gone; abort = reset the stream rather than finish it. */
  virtual void released(StreamState& s, bool abort) = 0;
  /** writeCap: bytes a stream may hold unacknowledged before write() says EAGAIN. */
  virtual size_t writeCap() const = 0;
};

/**
 * kWriteSlack: how far one write() may go past writeCap. A write that starts below the cap takes up
 * to this much more, so the splicer's copy (one scratch buffer, 64 KiB by default) is taken whole
 * and never parked and copied again; a stream holds at most writeCap + kWriteSlack bytes.
 */
inline constexpr size_t kWriteSlack = 64u << 10;

/** writeRoom: bytes one write() may take into a send buffer holding `held` (0: at the cap). */
inline size_t writeRoom(size_t held, size_t cap) { return held >= cap ? 0 : cap - held + kWriteSlack; }

class QuicStream : public Stream {
 public:
  QuicStream(StreamHost* host, StreamState* s) : host_(host), s_(s) {
    s_->face = this;
    // Bytes (or the FIN, or a reset) that came before the face existed were announced to no one:
    // they are readable now, or a reader waiting for the edge would wait forever.
    if (!s_->recvQ.empty() || s_->remoteEnded || s_->err != 0) readReady_ = true;
  }
  ~QuicStream() override { close(true); }

  /** detach: the connection is going away (its state with it): later calls see ECONNRESET. */
  void detach() {
    host_ = nullptr;
    s_ = nullptr;
  }
  StreamCallbacks* callbacks() const { return cb_; }
  /** host / state: the connection and stream state, null once the connection went away. */
  StreamHost* host() const { return host_; }
  StreamState* state() const { return s_; }
  void markReadable() { readReady_ = true; }
  void markWritable() { writeReady_ = true; }

  void setCallbacks(StreamCallbacks* cb) override { cb_ = cb; }
  IoResult read(uint8_t* buf, size_t len) override;
  IoResult write(const uint8_t* buf, size_t len) override;
  void shutdownWrite() override;
  void close(bool abort) override;

 protected:
  StreamHost* host_;
  StreamState* s_;
  StreamCallbacks* cb_{nullptr};
  bool released_{false};
};

}  // namespace ugate::quic
