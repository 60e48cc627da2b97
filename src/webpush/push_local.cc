// The push service as an in-process HTTP endpoint (push_local.h).
#include "webpush/push_local.h"

#include <charconv>

#include <ugate/config.h>

namespace ugate::webpush {

namespace {

/** LocalExchange: one request from another front end; mirrors push_http.cc's H2Exchange. */
class LocalExchange final : public Exchange, public HttpExchange {
 public:
  LocalExchange(PushWorker& w, RequestInfo req, HttpResponder& to) : Exchange(w, std::move(req)), to_(to) {}

  /** begin checks the announced length and arms the body's deadline. */
  void begin(Duration requestTimeout) {
    for (const auto& [n, v] : request().headers) {
      if (n != "content-length") continue;
      uint64_t len = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), len);
      if (ec != std::errc{} || end != v.data() + v.size() || len > worker_.config().maxBody) return tooLarge();
    }
    deadline_ = worker_.ctx().reactor().createTimer([this, requestTimeout] {
      if (dispatched_ || done_) return;
      worker_.refuse(*this, {408, "request_timeout", "the request body did not arrive within " +
                                                          std::to_string(requestTimeout.count()) + " ms"});
    });
    deadline_->enable(requestTimeout);
  }
  // ugate::HttpExchange
  void body(std::string_view bytes) override {
    if (done_ || dispatched_) return;
    request().body.append(bytes);
    if (request().body.size() > worker_.config().maxBody) tooLarge();
  }
  void end() override {
    if (done_ || dispatched_) return;
    dispatched_ = true;
    if (deadline_) deadline_->disable();
    worker_.handle(*this);  // may answer at once
  }
  // Exchange
  void respond(int status, HeaderList headers, std::string body) override {
    if (done_) return;
    done_ = true;
    if (deadline_) deadline_->disable();
    to_.respond(status, headers, std::move(body));
  }
  void startEvents() override {
    if (done_) return;
    events_ = true;
    to_.startStream(200, {{"content-type", "text/event-stream"}, {"cache-control", "no-store"}});
  }
  void sendEvents(std::string_view bytes) override {
    if (!done_ && events_) to_.send(bytes);
  }
  void endEvents() override {
    if (done_) return;
    done_ = true;
    if (events_) {
      to_.finish();
    } else {
      to_.respond(503, {{"content-type", "text/plain; charset=utf-8"}}, "shutting down\n");
    }
  }

 private:
  void tooLarge() {
    worker_.refuse(*this, {413, "too_large", "body over webpush.maxBody (" + std::to_string(worker_.config().maxBody) + ")"});
  }

  HttpResponder& to_;
  TimerPtr deadline_;
  bool done_{false};
  bool events_{false};
  bool dispatched_{false};
};

}  // namespace

bool PushEndpoint::serves(std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/subscribe") return true;
  for (std::string_view p : {"/push/", "/s/", "/m/", "/topic/"}) {
    if (path.starts_with(p)) return true;
  }
  return false;
}

std::unique_ptr<HttpExchange> PushEndpoint::open(HttpEndpointRequest req, HttpResponder& to) {
  if (req.protocol == "h3") w_.counters().h3Requests.fetch_add(1, std::memory_order_relaxed);
  RequestInfo info;
  info.method = std::move(req.method);
  info.target = std::move(req.target);
  info.authority = std::move(req.authority);
  info.headers = std::move(req.headers);
  info.source = std::move(req.source);
  if (!req.peer.nodeId.empty()) info.peer.push_back(req.peer.nodeId);
  if (!req.peer.spiffe.empty()) info.peer.push_back(req.peer.spiffe);
  // The request deadline is the push listener's, as on its own connections (push_http.cc).
  const Config& cfg = w_.ctx().config();
  Duration timeout = cfg.limits.sniffTimeout;
  for (const auto& l : cfg.listeners) {
    if (l.name == listener_ && l.sniffTimeout) timeout = *l.sniffTimeout;
  }
  auto e = std::make_unique<LocalExchange>(w_, std::move(info), to);
  e->begin(timeout);
  return e;
}

HttpEndpoint* PushWorker::httpEndpoint(std::string_view listener) {
  bool found = false;
  for (const auto& l : w_.config().listeners) found = found || (l.name == listener && l.kind == "push");
  if (!found) return nullptr;
  auto it = endpoints_.find(listener);
  if (it == endpoints_.end()) {
    it = endpoints_.emplace(std::string(listener), std::make_unique<PushEndpoint>(*this, std::string(listener))).first;
  }
  return it->second.get();
}

}  // namespace ugate::webpush
