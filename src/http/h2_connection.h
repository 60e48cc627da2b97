#pragma once
// HTTP/2 over any ugate::Stream (usually a TLS stream), client or server, on nghttp2. Built for
// tunnels: every HTTP/2 stream is itself a ugate::Stream (DATA frames as bytes, END_STREAM as
// half-close, RST_STREAM as abort), with HTTP/2 flow control as end-to-end backpressure: the
// receive window is only re-opened when the application reads, and write() returns EAGAIN once a
// stream's queued bytes reach its cap. Runs on one reactor; nothing here blocks.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/stats.h>
#include <ugate/stream.h>
#include <ugate/time.h>

namespace ugate::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

/**
 * H2Stats: counters of the HTTP/2 connections of one worker (single writer: that worker), for
 * /stats. Optional: H2Options::stats may be null.
 */
struct H2Stats {
  Counter streamsOpened;     // streams we opened (client CONNECTs)
  Counter streamsAccepted;   // streams the peer opened (requests delivered to onRequest)
  Counter resetsSent;        // RST_STREAM frames we sent
  Counter resetsReceived;    // RST_STREAM frames the peer sent
  Counter headersTooLarge;   // header blocks over maxHeaderListBytes (431 / reset)
  Counter protocolErrors;    // connections closed with a GOAWAY carrying an error code
  Counter pingTimeouts;      // connections declared dead for want of a PING ack
  Counter goawaysReceived;
  Counter bytesIn;           // DATA payload bytes received
  Counter bytesOut;          // DATA payload bytes sent
};

struct H2Options {
  uint32_t maxConcurrentStreams{1000};   // we accept at most this many peer-initiated streams
  uint32_t streamWindow{4u << 20};       // initial per-stream receive window
  uint32_t connectionWindow{16u << 20};  // connection receive window
  size_t streamWriteCap{256u << 10};     // bytes queued per stream before write() says EAGAIN
  Duration pingInterval{30'000};         // keepalive PING after this long without frames (0 = off)
  Duration pingTimeout{10'000};          // no PING ack within this: the connection is dead
  uint32_t maxHeaderListBytes{16u << 10};  // larger request headers: 431; response: reset
  H2Stats* stats{nullptr};                 // not owned; must outlive the connection
};

class H2Connection;

/**
 * H2Stream: one HTTP/2 stream as a byte stream. Owned by whoever took it (a session); the
 * connection keeps a raw pointer and both sides detach safely whichever dies first (a stream whose
 * connection died reads ECONNRESET; destroying an open stream resets it with CANCEL).
 * Destroying a stream whose sending side already ended (shutdownWrite, close(false), a non-2xx
 * respond) does not cut what is queued: the connection sends the rest, then RST_STREAM(NO_ERROR)
 * if the peer is still sending. Readiness callbacks run from the connection's I/O and timer
 * handlers, never from inside a call the application made on the stream or connection.
 */
class H2Stream final : public Stream {
 public:
  ~H2Stream() override;
  int32_t id() const;
  /** headers: the request headers (server side) or the response headers (client side). */
  const Headers& headers() const;
  /** header: the first value of `name` (lower case) or "". */
  std::string header(std::string_view name) const;
  /** method, authority, path: of the request (as received, server side; as sent, client side). */
  const std::string& method() const;
  const std::string& authority() const;
  const std::string& path() const;
  /** status: the response status (client side; 0 until the response headers arrive). */
  int status() const;
  /**
   * respond (server side): send response headers (names are lower-cased; pseudo-headers and
   * connection-specific fields are dropped). 2xx keeps the stream open for DATA (a tunnel, or a
   * body the caller writes and ends with shutdownWrite(); `body` is queued behind anything already
   * written); any other status ends the stream (END_STREAM) after the optional body. Only the
   * first call counts.
   */
  void respond(int status, const Headers& extra = {}, std::string body = {});
  /**
   * sendTrailers ends the sending side with a trailer block (HEADERS with END_STREAM) after the
   * bytes already written, instead of END_STREAM on the last DATA frame: gRPC's grpc-status.
   * Server side after a 2xx respond(), or client side. Names are lower-cased; pseudo-headers and
   * connection-specific fields are dropped. Like shutdownWrite(), only the first end counts, and
   * write() answers EPIPE afterwards.
   */
  void sendTrailers(const Headers& trailers);
  /**
   * trailers: the trailer block the peer ended its side with (e.g. grpc-status), empty until then
   * or when it ended with DATA; counted against maxHeaderListBytes with the headers (what is over
   * it is dropped).
   */
  const Headers& trailers() const;
  /** resetCode: the RST_STREAM error code received, if the peer reset the stream (else 0). */
  uint32_t resetCode() const;
  H2Connection* connection() const;

  // ugate::Stream
  void setCallbacks(StreamCallbacks* cb) override;
  IoResult read(uint8_t* buf, size_t len) override;
  IoResult write(const uint8_t* buf, size_t len) override;
  void shutdownWrite() override;     // END_STREAM after the queued bytes
  void close(bool abort) override;   // abort: RST_STREAM(CANCEL); else END_STREAM if not sent
  // spliceFd(): -1 (bytes live in userland)

  struct Impl;
  explicit H2Stream(std::unique_ptr<Impl> impl);

 private:
  friend class H2ConnectionImpl;
  std::unique_ptr<Impl> impl_;
};
using H2StreamPtr = std::unique_ptr<H2Stream>;

class H2ConnectionCallbacks {
 public:
  virtual ~H2ConnectionCallbacks() = default;
  /**
   * onRequest (server role): a request's headers are complete. The callee takes the stream and
   * must eventually respond() (or drop it: destroying it resets it).
   */
  virtual void onRequest(H2Connection& c, H2StreamPtr s) = 0;
  /**
   * onConnectionClosed: the transport closed, failed, timed out (PING: Errc::IdleTimeout), the
   * peer broke the protocol (Errc::ProtocolError, GOAWAY sent), or both sides finished after
   * GOAWAY (Errc::Ok after our goAway(), Errc::Shutdown after the peer's GOAWAY(NO_ERROR),
   * Errc::Reset after a GOAWAY with an error code or a transport EOF/error). Streams still open
   * see ECONNRESET (their readable callbacks run first); streams that had finished keep their
   * unread bytes and EOF. Not called for close(). The callee may destroy the connection only
   * through Reactor::deferredDelete (we are inside its code).
   */
  virtual void onConnectionClosed(H2Connection& c, Errc reason, const std::string& detail) = 0;
};

class H2Connection : public DeferredDeletable {
 public:
  enum class Role : uint8_t { Client, Server };
  /** create takes a connected transport (TLS already done). start() sends the preface + SETTINGS. */
  static std::unique_ptr<H2Connection> create(Reactor& r, StreamPtr transport, Role role, H2Options o,
                                              H2ConnectionCallbacks& cb);
  ~H2Connection() override;
  virtual void start() = 0;
  /**
   * connect (client role): open a CONNECT stream (`:method CONNECT`, `:authority`, plus `extra`
   * headers). onResponse runs once when the response headers arrive (status()), or with status 0
   * when the stream is reset or the connection dies first. Returns null when no stream can be
   * opened now (see canOpenStream()).
   */
  virtual H2StreamPtr connect(const std::string& authority, const Headers& extra,
                              std::function<void(H2Stream&)> onResponse) = 0;
  /**
   * request (client role): open a stream for a request other than CONNECT (`:method`, `:scheme`,
   * `:authority`, `:path`, plus `extra` headers), e.g. a gRPC call. The body is what the caller
   * writes, ended by shutdownWrite() or sendTrailers(); onResponse as for connect(). Returns null
   * when no stream can be opened now (see canOpenStream()).
   */
  virtual H2StreamPtr request(const std::string& method, const std::string& scheme,
                              const std::string& authority, const std::string& path,
                              const Headers& extra, std::function<void(H2Stream&)> onResponse) = 0;
  /** canOpenStream: not closing, and below the peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  virtual bool canOpenStream() const = 0;
  virtual size_t activeStreams() const = 0;
  /** goAway: graceful: no new streams, existing ones finish; closes when the last ends. */
  virtual void goAway() = 0;
  /**
   * close: immediate (GOAWAY + transport close); streams see ECONNRESET (their readable callbacks
   * run later in this loop turn, or at the latest when the connection is destroyed).
   * onConnectionClosed is not called.
   */
  virtual void close() = 0;
  virtual bool closed() const = 0;
  virtual Role role() const = 0;
  /** transport: the underlying stream (e.g. to read TLS peer identity kept by the owner). */
  virtual Stream& transport() = 0;
};
using H2ConnectionPtr = std::unique_ptr<H2Connection>;

}  // namespace ugate::http
