#pragma once
// HttpEndpoint: an HTTP service a module offers in process, so another module's HTTP front end
// serves it without either including the other (the quic listener's HTTP/3 requests for the push
// service: `"push": "<push listener>"` on a quic listener; docs/ARCHITECTURE.md).
//
// One request and its answer is an exchange with two halves, both on the worker's thread:
// - the transport (the front end) owns the service's HttpExchange: it feeds it the request body
//   (body(), then end()) and destroys it when the client goes (reset, connection closed); the
//   service then never touches the transport's HttpResponder again;
// - the service answers through the transport's HttpResponder: respond() once, or startStream()
//   then send() any number of times and finish() (an SSE stream). It may answer from inside open(),
//   body() or end(). After respond() or finish() the transport may destroy the exchange (later in
//   the loop turn, never from inside the responder's call).
// The service applies its own limits (body size, deadlines) and counts its requests itself: the
// same answers and counters whichever protocol carried the request.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ugate/stream.h>

namespace ugate {

/** HttpEndpointRequest: a request head as the transport decoded it. */
struct HttpEndpointRequest {
  std::string protocol;  // the transport's label ("h3"), for the service's counters and logs
  std::string method;
  std::string target;     // :path (path and query)
  std::string authority;  // :authority (or Host)
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, no pseudo-headers
  std::string source;     // the client's IP address
  PeerIdentity peer;      // the client certificate's verified identity (empty without one)
};

/** HttpResponder: the transport's side of one exchange. */
class HttpResponder {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  virtual ~HttpResponder() = default;
  /** respond: the final answer, with its whole body; the request body still coming is not wanted. */
  virtual void respond(int status, const Headers& headers, std::string body) = 0;
  /** startStream: a response head whose body follows in send() calls until finish(). */
  virtual void startStream(int status, const Headers& headers) = 0;
  /** send: body bytes of a started stream, sent in order as the client's flow control allows. */
  virtual void send(std::string_view bytes) = 0;
  /** finish ends a started stream. */
  virtual void finish() = 0;
};

/** HttpExchange: the service's side of one exchange, owned by the transport. */
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  /** body: request body bytes as they arrive (not called after the service answered). */
  virtual void body(std::string_view bytes) = 0;
  /** end: the request body is complete. */
  virtual void end() = 0;
};

/** HttpEndpoint: one service instance on one worker. */
class HttpEndpoint {
 public:
  virtual ~HttpEndpoint() = default;
  /** serves: whether requests for target (path and query) are this service's (others go elsewhere). */
  virtual bool serves(std::string_view target) const = 0;
  /** open starts an exchange for req answered through `to` (which outlives the returned exchange). */
  virtual std::unique_ptr<HttpExchange> open(HttpEndpointRequest req, HttpResponder& to) = 0;
};

/**
 * HttpEndpointProvider: implemented by a ModuleWorker that offers endpoints; a front end finds it
 * with WorkerContext::moduleWorker over modules() and a dynamic_cast.
 */
class HttpEndpointProvider {
 public:
  virtual ~HttpEndpointProvider() = default;
  /** httpEndpoint: the service of listener `listener` of the current config on this worker, or null. */
  virtual HttpEndpoint* httpEndpoint(std::string_view listener) = 0;
};

/**
 * AltServiceSource: implemented by a ModuleWorker whose listeners also serve another listener's
 * service under another protocol (a quic listener with "push"): that listener's responses then
 * advertise them (Alt-Svc, RFC 7838).
 */
class AltServiceSource {
 public:
  virtual ~AltServiceSource() = default;
  /** altSvc: the Alt-Svc field value for listener `listener` on this worker (h3=":443"), or empty. */
  virtual std::string altSvc(std::string_view listener) const = 0;
};

}  // namespace ugate
