#pragma once
// gRPC calls, client side, over the project's own HTTP/2 layer (src/http/h2_connection.h; the
// connection, h2c or TLS, keepalive PINGs included, is the caller's). One ClientCall is one
// HTTP/2 stream: POST with content-type application/grpc, te: trailers and grpc-timeout, request
// messages written as the caller sends them, response messages delivered as they arrive, and one
// final Status from the trailers (or a Trailers-Only response, the HTTP status, a reset, a bad
// message, the deadline, or cancel()). Every object lives on one reactor.
#include <ugate/reactor.h>
#include <ugate/stream.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/h2_connection.h"
#include "xds/grpc_frame.h"
#include "xds/grpc_status.h"
#include "xds/grpc_stream.h"

namespace ugate::xds::grpc {

class ClientCall;

/** ClientCallHandler: the caller's side of one call; callbacks run on the reactor. */
class ClientCallHandler {
 public:
  virtual ~ClientCallHandler() = default;
  /** onMessage: one response message (the serialized protobuf). */
  virtual void onMessage(ClientCall& call, std::string message) = 0;
  /**
   * onDone: the call ended with `status` (once). The call may be destroyed from here only by
   * handing it to Reactor::deferredDelete; send() and cancel() do nothing afterwards.
   */
  virtual void onDone(ClientCall& call, const Status& status) = 0;
};

/** ClientCallOptions: what a call sends besides its messages, and its limits. */
struct ClientCallOptions {
  std::string authority;                            // :authority (e.g. "127.0.0.1:15010")
  std::string scheme{"http"};                       // "https" over TLS
  std::optional<std::chrono::nanoseconds> timeout;  // sent as grpc-timeout, enforced here too
  http::Headers metadata;                           // extra headers (authorization, ...)
  uint32_t maxRecvMessageBytes{kDefaultMaxMessageBytes};
};

/**
 * ClientCall: one call of `path`. Owned by the caller; destroying it before onDone cancels it
 * (RST_STREAM CANCEL) without calling back.
 */
class ClientCall final : public DeferredDeletable, private StreamCallbacks {
 public:
  /**
   * start opens the call on `conn` (client role).
   * @return the call, or null when the connection cannot open a stream now (closing, or at the
   *   peer's stream limit): the caller retries on another connection or later.
   */
  static std::unique_ptr<ClientCall> start(Reactor& r, http::H2Connection& conn,
                                           std::string_view path, const ClientCallOptions& o,
                                           ClientCallHandler& h);
  ~ClientCall() override;

  /** send queues one request message; false once the sending side is closed or the call ended. */
  bool send(std::string_view message);
  /** closeSend: no more request messages (END_STREAM after the queued ones). */
  void closeSend();
  /** cancel ends the call now: RST_STREAM(CANCEL), then onDone(CANCELLED). */
  void cancel();
  /** queuedBytes: request bytes not yet taken by the HTTP/2 stream. */
  size_t queuedBytes() const { return writer_.queuedBytes(); }
  /** done: onDone has run. */
  bool done() const { return done_; }
  /** stream: the HTTP/2 stream (response headers, trailers). */
  const http::H2Stream& stream() const { return *stream_; }

  /** Use start(). */
  ClientCall(Reactor& r, const ClientCallOptions& o, ClientCallHandler& h);

 private:
  void onResponse(http::H2Stream& s);
  void readSome();
  void flush();
  /** fail ends the call with `status`, resetting the stream (CANCEL) if it is still open. */
  void fail(const Status& status);
  void end(const Status& status);

  // ugate::StreamCallbacks
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream& s) override;

  Reactor& reactor_;
  ClientCallHandler& handler_;
  http::H2StreamPtr stream_;
  MessageDecoder decoder_;
  MessageWriter writer_;
  bool sendClosed_{false};
  bool shutdownSent_{false};
  bool responded_{false};
  bool done_{false};
  bool reading_{false};
  TimerPtr deadlineTimer_;
};
using ClientCallPtr = std::unique_ptr<ClientCall>;

}  // namespace ugate::xds::grpc
