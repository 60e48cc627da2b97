#pragma once
// HttpsCall: one HTTPS/1.1 request over a transport stream the caller supplies (a TCP connection
// for `ugated push`, a mesh tunnel stream for a node behind NAT, push_relay.h), then TLS, the request
// and the response, on one reactor. The body comes to onBody as it arrives when set (an SSE
// stream), else into `body`. onDone runs once; the call may be destroyed only after it returned
// (through Reactor::defer or deferredDelete when from inside onDone).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/stream.h>

#include "auth/tls_stream.h"
#include "http/http1_parser.h"

namespace ugate::http {
class ResponseParser;
}  // namespace ugate::http

namespace ugate::webpush {

class HttpsCall final : private StreamCallbacks {
 public:
  using OnBody = std::function<void(std::string_view)>;
  using OnDone = std::function<void(HttpsCall&)>;
  HttpsCall(Reactor& r, auth::TlsContextPtr tls, std::string host, std::string method, std::string path,
            std::vector<http::Header> headers, std::string body, OnBody onBody, OnDone onDone);
  ~HttpsCall() override;
  HttpsCall(const HttpsCall&) = delete;
  HttpsCall& operator=(const HttpsCall&) = delete;

  /** start: `transport` is connected; TLS (SNI `sni` when not empty), the request, the response. */
  void start(StreamPtr transport, const std::string& sni);
  /** fail ends the call without a transport (it could not be had). */
  void fail(std::string why) { finish(std::move(why)); }
  /** cancel: end now without calling onDone (the caller lost interest). */
  void cancel();

  int status{0};
  std::vector<http::Header> headers;
  std::string body;
  std::string error;
  /** header: the first value of `lower` (a lower-case name), "" when absent. */
  std::string header(std::string_view lower) const;
  bool done() const { return done_; }

 private:
  void flush();
  void onStreamWritable(Stream&) override { flush(); }
  void onStreamReadable(Stream&) override;
  void parse();
  void finish(std::string why);

  Reactor& r_;
  auth::TlsContextPtr tlsCtx_;
  OnBody onBody_;
  OnDone onDone_;
  auth::TlsStreamPtr tls_;
  std::string out_;
  std::string in_;
  std::unique_ptr<http::ResponseParser> parser_;
  bool done_{false};
  std::shared_ptr<bool> alive_;
};

}  // namespace ugate::webpush

namespace ugate::webpush {
/**
 * httpsClientContext: a TLS client context for HTTPS/1.1 to a push service whose certificate
 * chains to `rootsPem`, or else carries node ID `pinnedId`, or else anything (`insecure`).
 * certChainPem / keyPem: a client certificate to present when asked (mutual TLS), or none.
 */
Result<auth::TlsContextPtr> httpsClientContext(const std::string& rootsPem, const std::string& pinnedId, bool insecure,
                                               const std::string& certChainPem = "", const std::string& keyPem = "");
}  // namespace ugate::webpush
