#pragma once
// gRPC calls, server side, over the project's own HTTP/2 layer (src/http/h2_connection.h): grpc++
// links OpenSSL, which must never share a process with BoringSSL. A Server takes the request
// streams an H2Connection delivers (h2c or TLS is the connection owner's business), checks them
// (POST, else HTTP 405; content-type application/grpc, else HTTP 415; `te: trailers`; identity
// encoding; a well-formed grpc-timeout; a known method), and runs one ServerCall per stream:
// length-prefixed messages both ways (unary, server streaming and bidi streaming alike), the
// deadline from grpc-timeout, and the status as grpc-status/grpc-message trailers. A refused call
// is answered with response headers and trailers (no DATA). Every object lives on one reactor.
#include <ugate/reactor.h>
#include <ugate/stream.h>
#include <ugate/time.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http/h2_connection.h"
#include "xds/grpc_frame.h"
#include "xds/grpc_status.h"
#include "xds/grpc_stream.h"

namespace ugate::xds::grpc {

class ServerCall;
class Server;

/**
 * CallHandler: the application's side of one call, created by its method's factory. Callbacks run
 * on the reactor, never re-entered; each may call ServerCall::send and finish.
 */
class CallHandler {
 public:
  virtual ~CallHandler() = default;
  /** onMessage: one request message (the serialized protobuf, not yet parsed). */
  virtual void onMessage(ServerCall& call, std::string message) = 0;
  /** onHalfClose: the client sent its last message; the call stays open until finish(). */
  virtual void onHalfClose(ServerCall& call) { (void)call; }
  /**
   * onDone: the call ended with `status`: finished by the handler, its deadline passed, the
   * client cancelled or reset it, sent a bad message, or the connection died. Called once; the
   * call ignores send() and finish() afterwards, and is destroyed (with its handler) later in this
   * loop turn. Not called when the Server itself is destroyed.
   */
  virtual void onDone(ServerCall& call, const Status& status) {
    (void)call;
    (void)status;
  }
};
using CallHandlerPtr = std::unique_ptr<CallHandler>;

/**
 * MethodFactory: makes the handler of a new call (null: the call ends UNIMPLEMENTED). It may read
 * the call's path and headers but not send or finish: the call starts once it returns.
 */
using MethodFactory = std::function<CallHandlerPtr(ServerCall&)>;

/** ServerOptions: limits of a Server's calls. */
struct ServerOptions {
  uint32_t maxRecvMessageBytes{kDefaultMaxMessageBytes};  // larger messages: RESOURCE_EXHAUSTED
};

/**
 * ServerCall: one gRPC call on one HTTP/2 stream, owned by its Server. Response headers
 * (`:status 200`, content-type application/grpc) are sent when the call starts; messages are
 * queued without limit (queuedBytes() tells the handler how far the client lags).
 */
class ServerCall final : public DeferredDeletable, private StreamCallbacks {
 public:
  ServerCall(Server& server, Reactor& r, http::H2StreamPtr stream, uint32_t maxRecvMessageBytes);
  ~ServerCall() override;

  /** path: the method's HTTP/2 :path, "/<package>.<Service>/<Method>". */
  const std::string& path() const { return stream_->path(); }
  /** header: the first value of request header `name` (lower case), or "". */
  std::string header(std::string_view name) const { return stream_->header(name); }
  /** deadline: when the client's grpc-timeout runs out, if it sent one. */
  std::optional<MonotonicTime> deadline() const { return deadline_; }
  /**
   * send queues one response message (the serialized protobuf).
   * @return false when the call has already ended or is finishing (nothing queued).
   */
  bool send(std::string_view message);
  /** queuedBytes: response bytes not yet taken by the HTTP/2 stream. */
  size_t queuedBytes() const { return writer_.queuedBytes(); }
  /**
   * finish ends the call with `status` after the queued messages: grpc-status and grpc-message
   * trailers, then onDone. Only the first call counts.
   */
  void finish(Status status);
  /** done: onDone has run (or is running). */
  bool done() const { return done_; }

 private:
  friend class Server;
  /** start: after the Server checked the request: headers, deadline, first reads. */
  void start(CallHandlerPtr handler, std::optional<std::chrono::nanoseconds> timeout);
  void readSome();
  void flush();
  /** end: onDone with `status`, then hand this call to the Server for deferred deletion. */
  void end(const Status& status);

  // ugate::StreamCallbacks
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream& s) override;

  Server& server_;
  Reactor& reactor_;
  http::H2StreamPtr stream_;
  CallHandlerPtr handler_;
  MessageDecoder decoder_;
  MessageWriter writer_;
  Status final_;  // final_: the status finish() was given
  bool finishing_{false};
  bool halfClosed_{false};
  bool done_{false};
  bool reading_{false};  // reading_: inside readSome (a handler's finish() must not re-enter it)
  std::optional<MonotonicTime> deadline_;
  TimerPtr deadlineTimer_;
};

/**
 * Server: the gRPC methods served on the HTTP/2 connections of one reactor, and their calls.
 * Destroying it resets every call still open (RST_STREAM CANCEL), without onDone.
 */
class Server {
 public:
  explicit Server(Reactor& r, ServerOptions o = {}) : reactor_(r), opts_(o) {}
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /** addMethod serves `path` ("/<package>.<Service>/<Method>") with calls made by `f`. */
  void addMethod(std::string path, MethodFactory f);
  /**
   * handle takes a request stream (from H2ConnectionCallbacks::onRequest) and answers it: an
   * HTTP error, a refused gRPC call (status in the trailers) or a call of a registered method.
   */
  void handle(http::H2StreamPtr stream);
  /** activeCalls: calls that have not ended. */
  size_t activeCalls() const { return calls_.size(); }

 private:
  friend class ServerCall;
  /** release: `call` ended: it is deleted at the end of this loop turn. */
  void release(ServerCall& call);

  Reactor& reactor_;
  ServerOptions opts_;
  std::unordered_map<std::string, MethodFactory> methods_;
  std::unordered_map<ServerCall*, std::unique_ptr<ServerCall>> calls_;
};

/**
 * refuseCall answers a gRPC request stream that will not become a call: response headers
 * (`:status 200`, content-type application/grpc, plus `extra`) and trailers carrying `status`.
 */
void refuseCall(http::H2Stream& stream, const Status& status, const http::Headers& extra = {});

}  // namespace ugate::xds::grpc
