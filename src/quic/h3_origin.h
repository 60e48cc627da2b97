#pragma once
// OriginFace: an HTTP/3 request proxied to an HTTP/1.1 origin, as the client stream of a core
// session. The session routes and dials the origin as for any stream (routes with "http": true, or
// the listener's `to`) and copies bytes both ways; this face turns them into HTTP:
// - read() gives the session the request: an HTTP/1.1 head (Host from :authority, the client's
//   fields minus hop-by-hop ones, X-Forwarded-For/-Proto, Connection: close) and the request body
//   from the HTTP/3 DATA frames as they arrive (Content-Length as the client sent it, else chunked),
//   credited to QUIC flow control as it is read;
// - write() takes the origin's response bytes through an HTTP/1.1 response parser (sans I/O,
//   src/http/http1_response.h): the head becomes the HTTP/3 response (hop-by-hop fields dropped),
//   the decoded body goes into the stream's send buffer, and write() says EAGAIN while that holds
//   its cap, so a slow HTTP/3 client slows the origin down (no whole-body buffering);
// - the end of the response ends the HTTP/3 stream (FIN) and read() then reports EOF, so the
//   session closes the origin connection. A malformed response is answered 502 before its head was
//   sent, else the stream is reset (H3_INTERNAL_ERROR).
#include <cstdint>
#include <string>

#include "http/http1_response.h"
#include "quic/quic_stream.h"

namespace ugate::quic {

class H3Server;

class OriginFace final : public QuicStream {
 public:
  /** OriginFace for request stream s of conn; clientIp goes into X-Forwarded-For. */
  OriginFace(StreamHost* conn, StreamState* s, H3Server& h3, const std::string& clientIp);

  IoResult read(uint8_t* buf, size_t len) override;
  IoResult write(const uint8_t* buf, size_t len) override;
  void shutdownWrite() override;

  /** buildHead: the request head for s (empty when :method/:path/:authority are unusable). */
  static std::string buildHead(const StreamState& s, const std::string& clientIp, bool& chunked);

 private:
  bool deliverHead();
  void fail(const char* why);

  H3Server& h3_;
  std::string out_;        // request bytes not yet read by the session (head, chunk framing)
  size_t outOff_{0};
  bool chunked_{false};    // request body sent chunked (its length unknown)
  bool lastChunk_{false};  // the terminating chunk was queued
  http::ResponseParser parser_;
  bool headSent_{false};
  bool done_{false};       // the response ended (or failed): read() reports EOF
};

}  // namespace ugate::quic
