#pragma once
// HTTP/3 (RFC 9114, nghttp3; QPACK without a dynamic table) on a QuicConn, both sides.
// H3Base holds what both sides share: the nghttp3 connection, the control and QPACK streams, and
// stream bodies as bytes in the stream state (received bytes credited to flow control only when
// read; sent bytes kept until acknowledged), so a tunnel's two ends apply backpressure end to end.
//
// H3Server (kind `quic`, ALPN h3):
// - CONNECT host:port (RFC 9114 §4.4) opens a tunnel: the request stream becomes a ugate::Stream
//   that a core session routes and splices like any other (same routes and 403/404/502/504/508
//   answers as the mesh, with x-ugate-error); the peer's verified identity and its trace context
//   (traceparent, tracestate, baggage) travel in the stream's metadata. Not an open proxy: only a
//   matching route, or the listener's own `to`, lets a CONNECT through.
// - GET/HEAD /healthz is answered by the node itself.
// - With "push": "<push listener>" on the listener, requests for the push service's paths go to
//   that service in process (ugate/http_endpoint.h; LocalRequest below): the same answers, limits,
//   counters and SSE delivery streams as on the push listener itself, the peer's verified client
//   certificate counting as there.
// - Any other request goes to an HTTP/1.1 origin when a route with "http": true matches its
//   :authority (or the listener has a `to`): h3_origin.h; else 404.
// H3Client: CONNECT tunnels to an HTTP/3 server (the test tool ugate_h3connect), and requests to an
// HTTP/3 origin (h3_upstream.h: routes with "upstreamQuic": true).
#include <nghttp3/nghttp3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "quic/quic_conn.h"

namespace ugate::quic {

using H3Headers = std::vector<std::pair<std::string, std::string>>;

class H3Base : public Application {
 public:
  explicit H3Base(QuicConn& c) : conn_(c) {}
  ~H3Base() override;

  int recvStreamData(int64_t id, const uint8_t* data, size_t len, bool fin) override;
  void ackedStreamData(int64_t id, uint64_t len) override;
  void streamClosed(int64_t id, uint64_t appErrorCode) override;
  void streamReset(int64_t id, uint64_t appErrorCode) override;
  void streamStopSending(int64_t id, uint64_t appErrorCode) override;
  void extendMaxStreamData(int64_t id) override;
  void resume(int64_t id) override;
  void extendMaxRemoteStreams(uint64_t maxStreams) override;
  int64_t nextStreamData(ngtcp2_vec* vecs, size_t maxv, size_t& nvecs, bool& fin) override;
  void streamDataTaken(int64_t id, size_t n) override;
  void streamBlocked(int64_t id) override;
  void streamShutWrite(int64_t id) override;
  void drain() override;

 protected:
  /** setup creates the nghttp3 connection (server or client) and binds its uni streams. */
  bool setup(bool server);
  /** headersDone: a request (server) or response (client) head arrived on s. */
  virtual void headersDone(StreamState& s) = 0;
  /** takeBody: body bytes of s for the application itself (credited by it); false: the default path. */
  virtual bool takeBody(StreamState& s, const uint8_t* data, size_t len) {
    (void)s, (void)data, (void)len;
    return false;
  }
  /** bodyEnded: the peer ended s (after its head). */
  virtual void bodyEnded(StreamState& s) { (void)s; }

  static nghttp3_ssize readData(nghttp3_conn* c, int64_t id, nghttp3_vec* vec, size_t veccnt, uint32_t* pflags,
                                void* ud, void* sud);

  QuicConn& conn_;
  nghttp3_conn* h3_{nullptr};

 private:
  static int cbAckedStreamData(nghttp3_conn* c, int64_t id, uint64_t len, void* ud, void* sud);
  static int cbStreamClose(nghttp3_conn* c, int64_t id, uint64_t code, void* ud, void* sud);
  static int cbRecvData(nghttp3_conn* c, int64_t id, const uint8_t* data, size_t len, void* ud, void* sud);
  static int cbDeferredConsume(nghttp3_conn* c, int64_t id, size_t n, void* ud, void* sud);
  static int cbBeginHeaders(nghttp3_conn* c, int64_t id, void* ud, void* sud);
  static int cbRecvHeader(nghttp3_conn* c, int64_t id, int32_t token, nghttp3_rcbuf* name, nghttp3_rcbuf* value,
                          uint8_t flags, void* ud, void* sud);
  static int cbEndHeaders(nghttp3_conn* c, int64_t id, int fin, void* ud, void* sud);
  static int cbEndStream(nghttp3_conn* c, int64_t id, void* ud, void* sud);
  static int cbStopSending(nghttp3_conn* c, int64_t id, uint64_t code, void* ud, void* sud);
  static int cbResetStream(nghttp3_conn* c, int64_t id, uint64_t code, void* ud, void* sud);
};

class H3Upstream;

class H3Server final : public H3Base {
 public:
  explicit H3Server(QuicConn& c);
  bool start() override { return setup(true); }

  /** answerTunnel: the session's outcome for CONNECT stream s (200 opens it; else status + reason). */
  void answerTunnel(StreamState& s, Errc e);
  /** answerOrigin: an origin request's session failed before the origin answered. */
  void answerOrigin(StreamState& s, Errc e);
  /**
   * respondOrigin submits an origin's response head on s (headers as they go out; no framing of
   * ours): with a body (bytes and FIN through s's send buffer) or without one (FIN at once).
   */
  bool respondOrigin(StreamState& s, int status, const H3Headers& headers, bool body);
  /** resetStream ends s both ways with an HTTP/3 error code. */
  void resetStream(StreamState& s, uint64_t code);
  /** upstreamDone: the relay of request stream id to an HTTP/3 origin finished: freed at turn end. */
  void upstreamDone(int64_t id);
  ~H3Server() override;
  void streamClosed(int64_t id, uint64_t appErrorCode) override;
  void streamReset(int64_t id, uint64_t appErrorCode) override;
  void streamStopSending(int64_t id, uint64_t appErrorCode) override;

 private:
  class LocalRequest;
  void headersDone(StreamState& s) override;
  bool takeBody(StreamState& s, const uint8_t* data, size_t len) override;
  void bodyEnded(StreamState& s) override;
  /** startLocal: s goes to an in-process service (the listener's "push"); false when it is not one of its. */
  bool startLocal(StreamState& s);
  /** localDone: the local request on stream id answered (or its client went): freed at turn end. */
  void localDone(int64_t id, bool reset);
  std::map<int64_t, std::unique_ptr<LocalRequest>> locals_;  // requests served in process
  /** requestMeta: the metadata of a stream this connection's peer opened (tunnel or origin request). */
  StreamMeta requestMeta(WorkerContext& w, const ListenerConfig& l) const;
  void startOrigin(StreamState& s);
  std::map<int64_t, std::unique_ptr<H3Upstream>> upstreams_;  // requests relayed to HTTP/3 origins
  void respond(StreamState& s, int status, const H3Headers& extra, std::string body, bool keepOpen);
  void startTunnel(StreamState& s);
};

class H3Client final : public H3Base {
 public:
  explicit H3Client(QuicConn& c) : H3Base(c) {}
  bool start() override;

  /** onReady: the handshake completed and HTTP/3 is set up: tunnels may be opened. */
  std::function<void()> onReady;
  /**
   * connectTunnel sends CONNECT authority (extra headers added) on a new stream; its face carries
   * the tunnel's bytes (what is written before the answer waits). onResponse runs once with the
   * status and headers (0 when the stream ended before an answer). Null when no stream may be
   * opened now (the peer's stream limit, or not ready).
   */
  std::unique_ptr<QuicStream> connectTunnel(const std::string& authority, const H3Headers& extra,
                                            std::function<void(int status, const H3Headers& headers)> onResponse);
  /**
   * request sends an HTTP request head (pseudo-headers first, in `head`) on a new stream. With
   * `body`, what is written to the face is the request body and shutdownWrite() ends it; without,
   * the stream ends with the head. The face then reads the response body. onResponse runs once with
   * the final status and fields (interim 1xx answers are skipped; 0 when the stream ended before an
   * answer). Null when no stream may be opened now.
   */
  std::unique_ptr<QuicStream> request(const H3Headers& head, bool body,
                                      std::function<void(int status, const H3Headers& headers)> onResponse);
  void streamClosed(int64_t id, uint64_t appErrorCode) override;

 private:
  struct Waiting {
    std::function<void(int, const H3Headers&)> cb;
    bool tunnel{true};  // a CONNECT: a non-2xx answer refuses the face
  };
  void headersDone(StreamState& s) override;
  std::map<int64_t, Waiting> waiting_;
};

}  // namespace ugate::quic
