#pragma once
// The push service as an in-process HTTP endpoint (ugate/http_endpoint.h): requests another
// module's front end decoded (HTTP/3 on a quic listener with "push": "<this listener>") go to
// PushWorker::handle as an Exchange, like those of the listener's own HTTP/1.1 and HTTP/2
// connections: the same body limit (413), request deadline (408), answers, SSE delivery streams,
// counters (ugate_webpush_requests_total, plus ugate_webpush_h3_requests_total) and identity (the
// transport's verified client certificate counts as over TLS: topic publishers).
#include <memory>
#include <string>

#include <ugate/http_endpoint.h>

#include "webpush/push_service.h"

namespace ugate::webpush {

/** PushEndpoint: push listener `listener`'s service on one worker, for other front ends. */
class PushEndpoint final : public HttpEndpoint {
 public:
  PushEndpoint(PushWorker& w, std::string listener) : w_(w), listener_(std::move(listener)) {}
  /** serves: the RFC 8030 resources (/subscribe, /push/, /s/, /m/) and /topic/. */
  bool serves(std::string_view target) const override;
  std::unique_ptr<HttpExchange> open(HttpEndpointRequest req, HttpResponder& to) override;

 private:
  PushWorker& w_;
  std::string listener_;
};

}  // namespace ugate::webpush
