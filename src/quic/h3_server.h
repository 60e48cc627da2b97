#pragma once
// H3Server: HTTP/3 (RFC 9114, nghttp3; QPACK without a dynamic table) on a server connection.
// - CONNECT host:port (RFC 9114 §4.4) opens a tunnel: the request stream becomes a ugate::Stream
//   that a core session routes and splices like any other (same routes and 403/404/502/504/508
//   answers as the mesh, with x-ugate-error); the peer's verified identity and its trace context
//   (traceparent, tracestate, baggage) travel in the stream's metadata.
// - GET/HEAD /healthz is answered by the node itself.
// - Any other request is answered 404 until HTTP origins are routed (docs/CONFIG.md, kind quic).
#include <nghttp3/nghttp3.h>

#include <cstdint>
#include <string>

#include "quic/quic_conn.h"

namespace ugate::quic {

class H3Server final : public Application {
 public:
  explicit H3Server(QuicConn& c);
  ~H3Server() override;

  bool start() override;
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

  /** answerTunnel: the session's outcome for CONNECT stream s (200 opens it; else status + reason). */
  void answerTunnel(StreamState& s, Errc e);

 private:
  void dispatch(StreamState& s);
  void respond(StreamState& s, int status, const std::vector<std::pair<std::string, std::string>>& extra,
               std::string body, bool keepOpen);
  void startTunnel(StreamState& s);

  // nghttp3 callbacks
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
  static nghttp3_ssize readData(nghttp3_conn* c, int64_t id, nghttp3_vec* vec, size_t veccnt, uint32_t* pflags,
                                void* ud, void* sud);

  QuicConn& conn_;
  nghttp3_conn* h3_{nullptr};
};

}  // namespace ugate::quic
