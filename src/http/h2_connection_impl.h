#pragma once
// Private to src/http: the nghttp2-backed H2Connection and the state of one HTTP/2 stream, shared
// by h2_connection.cc (session, transport I/O, keepalive), h2_callbacks.cc (what nghttp2 reports)
// and h2_stream.cc (the Stream face of a stream).
//
// Re-entrancy rule: nghttp2 callbacks only record what happened (stream flags plus an event bit
// and the stream id in dirty_); dispatchEvents() calls the application afterwards, outside
// nghttp2, looking every stream up again by id because any callback may destroy any stream.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/h2_buffers.h"
#include "http/h2_connection.h"

namespace ugate::http {

class H2ConnectionImpl;

struct H2Stream::Impl {
  // conn: the connection, or null once it is gone. connGone: the connection is being destroyed
  // (its last notifications are running); the stream is dead but conn still takes releaseStream.
  H2ConnectionImpl* conn{nullptr};
  bool connGone{false};
  H2Stream* owner{nullptr};  // null while orphaned: the app dropped it, the connection finishes it
  int32_t id{0};
  Headers headers;
  std::string method;
  std::string authority;
  std::string path;
  int status{0};
  uint32_t headerBytes{0};
  uint32_t resetCode{0};  // RST_STREAM code received from the peer
  int err{0};             // sticky read/write error: ECONNRESET once reset or the connection died
  StreamCallbacks* cb{nullptr};
  std::function<void(H2Stream&)> onResponse;
  ChunkQueue recvQ;  // DATA received, not yet read (bounded by our stream window)
  ChunkQueue sendQ;  // bytes written, not yet framed (bounded by streamWriteCap)
  uint8_t events{0};
  bool local{false};          // we opened it (client CONNECT)
  bool headersDone{false};    // request headers complete (server)
  bool tooLarge{false};       // header block over the cap
  bool responded{false};      // respond() submitted (server)
  bool finalResponse{false};  // a final (>= 200) response arrived (client)
  bool responseNotified{false};
  bool deferred{false};       // the data provider said DEFERRED: resume on write/shutdownWrite
  bool endRequested{false};   // END_STREAM wanted after sendQ (shutdownWrite, close, non-2xx)
  bool trailersRequested{false};  // END_STREAM on a trailer block (sendTrailers): `trailers`
  Headers trailers;               // trailers to send
  Headers peerTrailers;           // trailers received (within the header cap)
  bool localEndSent{false};
  bool remoteEnded{false};
  bool h2Closed{false};       // nghttp2 closed the stream
  bool rstSent{false};
  bool released{false};       // the app called close(): read/write answer EBADF
  bool readAbandoned{false};  // incoming DATA is consumed and dropped
  bool writeBlocked{false};   // a write was refused or cut: onStreamWritable when there is room
};

class H2ConnectionImpl final : public H2Connection, private StreamCallbacks {
 public:
  static constexpr uint8_t kEvReadable = 1;
  static constexpr uint8_t kEvWritable = 2;
  static constexpr uint8_t kEvResponse = 4;

  H2ConnectionImpl(Reactor& r, StreamPtr transport, Role role, const H2Options& o,
                   H2ConnectionCallbacks& cb);
  ~H2ConnectionImpl() override;

  // ugate::http::H2Connection
  void start() override;
  H2StreamPtr connect(const std::string& authority, const Headers& extra,
                      std::function<void(H2Stream&)> onResponse) override;
  H2StreamPtr request(const std::string& method, const std::string& scheme,
                      const std::string& authority, const std::string& path, const Headers& extra,
                      std::function<void(H2Stream&)> onResponse) override;
  bool canOpenStream() const override;
  size_t activeStreams() const override { return openLocal_ + openRemote_; }
  void goAway() override;
  void close() override;
  bool closed() const override { return closed_; }
  Role role() const override { return role_; }
  Stream& transport() override { return *transport_; }

  // Called by H2Stream (h2_stream.cc).
  size_t writeCap() const { return opts_.streamWriteCap; }
  /** consumed: the app read n bytes of st: re-open the windows (WINDOW_UPDATE when due). */
  void consumed(H2Stream::Impl& st, size_t n);
  /** streamDataReady: st has new bytes to send or END_STREAM was requested. */
  void streamDataReady(H2Stream::Impl& st);
  void respond(H2Stream::Impl& st, int status, const Headers& extra, std::string body);
  /** openStream: connect() and request(): a client stream (scheme and path empty for CONNECT). */
  H2StreamPtr openStream(const std::string& method, const std::string& scheme,
                         const std::string& authority, const std::string& path, const Headers& extra,
                         std::function<void(H2Stream&)> onResponse);
  /** submitTrailers: the data provider reached the end of a stream that ends with trailers. */
  void submitTrailers(H2Stream::Impl& st);
  void closeStream(H2Stream::Impl& st, bool abort);
  /** releaseStream: the H2Stream is being destroyed; keep its state while nghttp2 needs it. */
  void releaseStream(std::unique_ptr<H2Stream::Impl> impl);

  // Called from the nghttp2 callbacks (h2_callbacks.cc).
  static const nghttp2_session_callbacks* sessionCallbacks();
  H2Stream::Impl* find(int32_t id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  }
  int onBeginHeaders(const nghttp2_frame* f);
  int onHeader(const nghttp2_frame* f, std::string_view name, std::string_view value);
  int onFrameRecv(const nghttp2_frame* f);
  int onDataChunk(int32_t id, const uint8_t* data, size_t len);
  int onStreamClose(int32_t id, uint32_t code);
  int onFrameSend(const nghttp2_frame* f);
  ssize_t onReadData(int32_t id, size_t length, uint32_t* flags);
  int onSendData(nghttp2_frame* f, const uint8_t* framehd, size_t length);
  void onLibError(std::string msg);

 private:
  // ugate::StreamCallbacks (the transport)
  void onStreamReadable(Stream&) override;
  void onStreamWritable(Stream&) override;

  void markEvent(H2Stream::Impl& st, uint8_t ev);
  void markRemoteEnd(H2Stream::Impl& st);
  void resetStream(H2Stream::Impl& st);  // st can no longer be used: ECONNRESET both ways
  void dropReceived(H2Stream::Impl& st);
  void submitRst(H2Stream::Impl& st, uint32_t code);
  void kick();
  void onKick();
  void readTransport();
  void flush();
  bool writeOutput(Errc& reason, std::string& detail);
  void maybeFinish();
  void onPingTimer();
  void fail(Errc reason, std::string detail);
  void teardown(bool sendGoaway, bool notifyNow);
  void killStreams();
  void dispatchEvents();

  Reactor& reactor_;
  StreamPtr transport_;
  const Role role_;
  H2Options opts_;
  H2ConnectionCallbacks& cb_;
  H2Stats ownStats_;   // used when H2Options::stats is null
  H2Stats* stats_;
  nghttp2_session* session_{nullptr};
  ChunkPool pool_;
  // streams_: every stream state still attached (held by the app, orphaned or not yet delivered).
  std::unordered_map<int32_t, H2Stream::Impl*> streams_;
  std::unordered_map<int32_t, std::unique_ptr<H2Stream::Impl>> orphans_;
  std::unordered_map<int32_t, H2StreamPtr> incoming_;  // server: request headers still arriving
  std::vector<H2StreamPtr> requests_;                 // complete requests not yet delivered
  std::vector<H2StreamPtr> requestBatch_;
  std::vector<int32_t> dirty_;
  std::vector<int32_t> dirtyBatch_;
  ByteBuf parked_;              // output the transport could not take yet
  ByteBuf* fillTarget_{nullptr};  // where onSendData appends during flush()
  TimerPtr kickTimer_;          // 0 ms: batched flush / read continuation / late notifications
  TimerPtr pingTimer_;
  TimerPtr lingerTimer_;        // bounds how long a terminating GOAWAY may wait for the transport
  MonotonicTime lastRecv_{};
  MonotonicTime pingSentAt_{};
  uint64_t pingSeq_{0};
  uint32_t openLocal_{0};
  uint32_t openRemote_{0};
  uint32_t goawayRecvCode_{0};
  std::string goawayRecvDetail_;
  std::string errorDetail_;  // why we sent a GOAWAY with an error code
  std::string lastLibError_;
  bool started_{false};
  bool closed_{false};
  bool destroying_{false};
  bool goawayRequested_{false};
  bool goawayRecv_{false};
  bool protoError_{false};
  bool pingOutstanding_{false};
  bool readPending_{false};
  bool dispatching_{false};
  bool flushing_{false};
  bool reading_{false};
};

}  // namespace ugate::http
