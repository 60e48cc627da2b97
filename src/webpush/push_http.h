#pragma once
// The push listener's connections: TLS from the node's credentials (TlsProvider), then by ALPN
// HTTP/2 (src/http's H2Connection, one Exchange per stream) or HTTP/1.1 (src/http's RequestParser,
// one request at a time, bodies framed by Content-Length). Each complete request (head and body,
// at most webpush.maxBody) goes to PushWorker::handle as an Exchange; an SSE delivery stream keeps
// its response open (HTTP/1.1: delimited by the connection's close; HTTP/2: DATA frames).
#include <memory>
#include <string>
#include <unordered_map>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/stream.h>
#include <ugate/tls_provider.h>

// http1_parser.h before h2_connection.h: its State::Headers would shadow http::Headers.
#include "http/http1_parser.h"
#include "http/h2_connection.h"
#include "webpush/push_service.h"

namespace ugate::webpush {

/** PushConn: one accepted connection of a push listener, owned by its PushWorker. */
class PushConn final : public DeferredDeletable, private StreamCallbacks, private http::H2ConnectionCallbacks {
 public:
  PushConn(PushWorker& w, const ListenerConfig& l, StreamMeta meta);
  ~PushConn() override;
  /** start takes fd and begins the TLS handshake; false when tls has no context for l (fd closed). */
  bool start(const TlsProvider& tls, const ListenerConfig& l, int fd);
  /** close ends the connection (every exchange on it goes) and hands it back to the worker. */
  void close(Errc why = Errc::Ok);
  /** drain: shutdown began: an idle connection closes, a busy one after its answer (HTTP/2: GOAWAY). */
  void drain();

  class H1Exchange;
  class H2Exchange;

 private:
  void onHandshake(TlsOutcome&& o);
  // HTTP/1.1
  void h1Process();
  void h1Dispatch();
  void h1Refuse(int status, std::string reason, std::string detail);
  void h1Write(std::string bytes);
  void h1Responded(bool keepAlive);
  void h1Flush();
  // ugate::StreamCallbacks (the TLS stream, HTTP/1.1)
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream& s) override;
  // http::H2ConnectionCallbacks
  void onRequest(http::H2Connection& c, http::H2StreamPtr s) override;
  void onConnectionClosed(http::H2Connection& c, Errc reason, const std::string& detail) override;

  friend class H1Exchange;
  friend class H2Exchange;
  void h2Done(H2Exchange* e);

  /** withAltSvc: headers plus Alt-Svc when a quic listener serves this listener over HTTP/3. */
  HeaderList withAltSvc(HeaderList h) const;

  PushWorker& w_;
  StreamMeta meta_;
  std::string altSvc_;  // an Alt-Svc value (RFC 7838) for this listener, found at the handshake
  std::string source_;
  std::vector<std::string> peer_;  // the verified client certificate's node ID and SPIFFE ID
  bool closed_{false};
  bool draining_{false};
  HandshakingStreamPtr tls_;  // the TLS stream while HTTP/1.1 (or handshaking)
  http::H2ConnectionPtr h2_;
  TimerPtr timer_;            // handshake, request and idle deadline (not while streaming events)
  Duration idle_{60'000};
  Duration requestTimeout_{10'000};
  // HTTP/1.1 state
  enum class H1State : uint8_t { Head, Body, Waiting, Events, Closing };
  H1State h1State_{H1State::Head};
  http::RequestParser parser_;
  http::Request head_;
  std::string in_;            // received bytes not yet parsed
  std::string body_;
  size_t bodyLeft_{0};
  std::string out_;           // bytes not yet taken by the TLS stream
  bool eof_{false};
  bool headStarted_{false};   // part of a request head arrived (a deadline then answers 408)
  std::unique_ptr<H1Exchange> h1Exchange_;
  TimerPtr resume_;           // parse pipelined bytes after a response, outside the responder's call
  // HTTP/2 state
  std::unordered_map<H2Exchange*, std::unique_ptr<H2Exchange>> h2Exchanges_;
};

}  // namespace ugate::webpush
