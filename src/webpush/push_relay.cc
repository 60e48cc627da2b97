// PushRelay (push_relay.h): a node behind NAT keeps its subscriptions at a gateway through the mesh.
#include "webpush/push_relay.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>

#include <spdlog/spdlog.h>

#include <ugate/router.h>
#include <ugate/worker_context.h>

#include "auth/tls_provider.h"
#include "webpush/push_client.h"
#include "webpush/push_service.h"
#include "webpush/push_xds_feed.h"

namespace ugate::webpush {

std::unique_ptr<PushRelay> PushRelay::create(PushWorker& w, const GatewayConfig& g) {
  std::string roots;
  if (!g.rootsFile.empty()) {
    std::ifstream in(g.rootsFile, std::ios::binary);
    roots.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) roots.clear();
    if (roots.empty()) {
      spdlog::error("webpush: gateway: cannot read the roots file {}", g.rootsFile);
      return nullptr;
    }
  }
  // The node's own certificate goes along: a gateway whose push listener asks for client
  // certificates sees this node's identity (a "deliver": "xds" subscription is made for it).
  std::string chain, key;
  if (auto creds = auth::CredentialSource(w.ctx().config()).load(true)) {
    chain = creds->certChainPem;
    key = creds->key.toPem();
  } else {
    spdlog::warn("webpush: gateway: no node certificate to present ({})", creds.error().detail);
  }
  auto ctx = httpsClientContext(roots, g.peerId, false, chain, key);
  if (!ctx) {
    spdlog::error("webpush: gateway: {}", ctx.error().detail);
    return nullptr;
  }
  return std::make_unique<PushRelay>(w, g, *ctx);
}

PushRelay::PushRelay(PushWorker& w, GatewayConfig g, auth::TlsContextPtr tls)
    : w_(w), g_(std::move(g)), tls_(std::move(tls)), alive_(std::make_shared<bool>(true)) {}

PushRelay::~PushRelay() {
  *alive_ = false;
  followers_.clear();
  calls_.clear();
}

uint64_t PushRelay::request(const std::string& method, const std::string& path, std::vector<http::Header> headers,
                            std::string body, OnBody onBody, OnDone onDone) {
  const uint64_t id = nextCall_++;
  Call& c = calls_[id];
  c.http = std::make_unique<HttpsCall>(w_.ctx().reactor(), tls_, g_.target.str(), method, path, std::move(headers),
                                       std::move(body), std::move(onBody),
                                       [this, id, onDone = std::move(onDone)](HttpsCall& h) {
                                         onDone(h);
                                         forget(id);
                                       });
  // The stream is routed like any other: the routes see its metadata (kind push, listener
  // `webpush-gateway`, the gateway's mesh name and port); a `reject` refuses it, a route's `to`
  // and `via` redirect it, no match keeps webpush.gateway's target and via.
  StreamMeta meta;
  meta.kind = StreamKind::Push;
  meta.listener = std::string(kRelayListener);
  meta.host = g_.target.host;
  meta.port = g_.target.port;
  meta.start = std::chrono::steady_clock::now();
  HostPort target = g_.target;
  std::string via = g_.via;
  const RouteDecision d = w_.ctx().router().route(meta);
  if (d.action == RouteDecision::Action::Reject) {
    c.http->fail("route " + std::string(d.route) + " rejects streams to " + g_.target.str());
    return id;
  }
  if (d.action == RouteDecision::Action::Dial) target = d.target;
  if (d.action != RouteDecision::Action::NoRoute && !d.via.empty()) via = std::string(d.via);
  TunnelDialer* t = w_.ctx().tunnels();
  if (t == nullptr || !t->handles(target, via)) {
    c.http->fail("the mesh cannot reach " + target.str() + " (no mesh module, or not a mesh name)");
    return id;
  }
  auto opening = t->open(meta, target, via, [this, id, alive = alive_](Result<StreamPtr> s) {
    if (!*alive) return;
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second.http->done()) return;
    if (!s) return it->second.http->fail("mesh: " + s.error().detail);
    it->second.http->start(std::move(*s), "");
  });
  // The open may have finished (and the call with it) before it returned.
  if (auto it = calls_.find(id); it != calls_.end() && !it->second.http->done()) it->second.opening = std::move(opening);
  else if (opening) w_.ctx().reactor().deferredDelete(std::move(opening));
  return id;
}

void PushRelay::forget(uint64_t id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  // Freed after this loop turn: the call is inside its own callback now.
  Reactor& r = w_.ctx().reactor();
  deleteLater(r, std::move(it->second.http));
  if (it->second.opening) r.deferredDelete(std::move(it->second.opening));
  calls_.erase(it);
}

void PushRelay::subscribe(std::string body, SubscribeDone done) {
  if (stopped_) return done(0, std::nullopt, "draining");
  request("POST", "/subscribe", {{"Content-Type", "application/json"}}, std::move(body), {},
          [this, done = std::move(done)](HttpsCall& h) {
            if (!h.error.empty()) {
              spdlog::warn("webpush: gateway {}: subscribe: {}", g_.target.str(), h.error);
              return done(0, std::nullopt, h.error);
            }
            if (h.status != 201) return done(h.status, std::nullopt, h.body);
            auto reply = parseSubscribeReply(h.body);
            if (!reply) {
              w_.counters().reject("gateway_bad_answer");
              spdlog::warn("webpush: gateway {}: subscribe: an answer that is not a subscription", g_.target.str());
              return done(0, std::nullopt, "the gateway's answer is not a subscription");
            }
            done(201, std::move(reply), "");
          });
}

void PushRelay::unsubscribe(const std::string& sid) {
  if (stopped_) return;
  request("DELETE", "/s/" + sid, {}, "", {}, [this, sid](HttpsCall& h) {
    if (!h.error.empty() || (h.status != 204 && h.status != 404)) {
      spdlog::warn("webpush: gateway {}: unsubscribe {}: {}", g_.target.str(), sid,
                   h.error.empty() ? "status " + std::to_string(h.status) : h.error);
    }
  });
}

void PushRelay::followStored() {
  PushStore* st = w_.shared().store();
  if (st == nullptr || stopped_) return;
  st->subscriptionIds([mb = w_.mailbox()](Result<std::vector<std::string>> r) {
    mb->post([r = std::move(r)](PushWorker& w) {
      if (!r) return spdlog::error("webpush: store: list subscriptions: {}", r.error().detail);
      if (PushRelay* relay = w.relay()) {
        // A subscription delivered over xDS (push_xds_feed.h) is not streamed: look at each first.
        for (const auto& sid : *r) {
          w.shared().store()->subscriptionById(sid, [mb = w.mailbox(), sid](Result<std::optional<Subscription>> s) {
            mb->post([sid, follow = s && *s && !isXdsLocal(**s)](PushWorker& w2) {
              if (PushRelay* rl = w2.relay(); rl && follow) rl->follow(sid);
            });
          });
        }
        spdlog::info("webpush: gateway {}: {} subscriptions stored", relay->g_.target.str(), r->size());
      }
    });
  });
}

void PushRelay::follow(const std::string& sid) {
  if (stopped_ || followers_.contains(sid)) return;
  Follower& f = followers_[sid];
  f.backoff = g_.retryMin;
  connect(sid);
}

void PushRelay::connect(const std::string& sid) {
  auto it = followers_.find(sid);
  if (it == followers_.end() || stopped_) return;
  Follower& f = it->second;
  f.sse = SseReader();
  f.call = request("GET", "/s/" + sid, {{"Accept", "text/event-stream"}}, "",
                   [this, sid](std::string_view bytes) { onEvents(sid, bytes); },
                   [this, sid](HttpsCall& h) { streamEnded(sid, h.status, h.error); });
}

void PushRelay::onEvents(const std::string& sid, std::string_view bytes) {
  auto it = followers_.find(sid);
  if (it == followers_.end()) return;
  Follower& f = it->second;
  auto c = calls_.find(f.call);
  if (c == calls_.end()) return;
  if (c->second.http->status != 200) return;  // an error's body, not events
  // A stream that delivers is healthy: the next reconnect starts from the shortest wait.
  f.backoff = g_.retryMin;
  std::vector<std::string> events;
  if (!f.sse.feed(bytes, events)) {
    w_.counters().reject("gateway_bad_event");
    spdlog::warn("webpush: gateway {}: subscription {}: an event over the size limit; reconnecting", g_.target.str(), sid);
    c->second.http->fail("an event over the size limit");
    return;
  }
  PushStore* st = w_.shared().store();
  for (const auto& data : events) {
    auto m = parseRelayedEvent(data, w_.wallMs(), std::max<size_t>(w_.config().maxBody, 4096));
    if (!m) {
      // Not acknowledged: it stays at the gateway, where its operator can see it.
      w_.counters().reject("gateway_bad_event");
      spdlog::warn("webpush: gateway {}: subscription {}: a malformed event, skipped", g_.target.str(), sid);
      continue;
    }
    if (st == nullptr) return;
    m->subscription = sid;
    const std::string mid = m->id;
    st->put(std::move(*m), [mb = w_.mailbox(), sid, mid](Result<int64_t> r) {
      mb->post([sid, mid, r = std::move(r)](PushWorker& w) {
        if (PushRelay* relay = w.relay()) relay->stored(sid, mid, r);
      });
    });
  }
}

void PushRelay::stored(const std::string& sid, const std::string& mid, const Result<int64_t>& r) {
  if (!r && r.error().code == Errc::NotFound) {
    // Removed here meanwhile: the gateway's copy goes too.
    drop(sid);
    unsubscribe(sid);
    return;
  }
  if (!r && r.error().code != Errc::AlreadyExists) {
    spdlog::error("webpush: store: relayed message {}: {}", mid, r.error().detail);
    return;  // not acknowledged: the gateway sends it again on the next stream
  }
  if (r) {
    w_.counters().relayed.fetch_add(1, std::memory_order_relaxed);
    w_.counters().accepted.fetch_add(1, std::memory_order_relaxed);
    w_.shared().notify(sid, "", false);
  } else {
    w_.counters().relayedAgain.fetch_add(1, std::memory_order_relaxed);
  }
  ack(mid);
}

void PushRelay::ack(const std::string& mid) {
  if (stopped_) return;
  request("DELETE", "/m/" + mid, {}, "", {}, [this, mid](HttpsCall& h) {
    if (h.error.empty() && (h.status == 204 || h.status == 404)) {
      w_.counters().relayAcks.fetch_add(1, std::memory_order_relaxed);
      return forgetAck(mid);
    }
    // Unacknowledged: the gateway sends it again; the copy here is recognised by its id. It is
    // also acknowledged again after a backoff (a message delivered over xDS is not sent again on
    // this node's stream, and the subscriber here may acknowledge it before the gateway hears).
    spdlog::warn("webpush: gateway {}: acknowledging {}: {}", g_.target.str(), mid,
                 h.error.empty() ? "status " + std::to_string(h.status) : h.error);
    // A refusal (4xx but a timeout or a rate limit) will not change: the message expires there.
    const bool permanent = h.error.empty() && h.status >= 400 && h.status < 500 && h.status != 408 && h.status != 429;
    if (!permanent) return retryAck(mid);
    forgetAck(mid);
  });
}

void PushRelay::forgetAck(const std::string& mid) {
  auto it = ackRetries_.find(mid);
  if (it == ackRetries_.end()) return;
  deleteLater(w_.ctx().reactor(), std::move(it->second.timer));  // (its own callback may be running)
  ackRetries_.erase(it);
}

void PushRelay::retryAck(const std::string& mid) {
  constexpr size_t kMaxAckRetries = 1024;
  if (stopped_ || (ackRetries_.size() >= kMaxAckRetries && !ackRetries_.contains(mid))) return;
  AckRetry& a = ackRetries_[mid];
  a.backoff = a.backoff.count() == 0 ? g_.retryMin : std::min(a.backoff * 2, g_.retryMax);
  if (!a.timer) a.timer = w_.ctx().reactor().createTimer([this, mid] { ack(mid); });
  a.timer->enable(a.backoff);
}

void PushRelay::streamEnded(const std::string& sid, int status, const std::string& error) {
  auto it = followers_.find(sid);
  if (it == followers_.end() || stopped_) return;
  Follower& f = it->second;
  f.call = 0;
  if (status == 404 || status == 410) {
    spdlog::info("webpush: gateway {}: subscription {} is gone there ({}); removing it here", g_.target.str(), sid, status);
    drop(sid);
    if (PushStore* st = w_.shared().store()) {
      st->removeSubscription(sid, [mb = w_.mailbox(), sid](Result<bool> r) {
        mb->post([sid, r = std::move(r)](PushWorker& w) {
          if (r && *r) w.shared().notify(sid, "", true);
        });
      });
    }
    return;
  }
  w_.counters().relayReconnects.fetch_add(1, std::memory_order_relaxed);
  if (w_.ctx().logBudget()) {
    spdlog::info("webpush: gateway {}: delivery stream of {} ended ({}); again in {} ms", g_.target.str(), sid,
                 !error.empty() ? error : "status " + std::to_string(status), f.backoff.count());
  }
  if (!f.retry) f.retry = w_.ctx().reactor().createTimer([this, sid] { connect(sid); });
  f.retry->enable(f.backoff);
  f.backoff = std::min(f.backoff * 2, g_.retryMax);
}

void PushRelay::drop(const std::string& sid) {
  auto it = followers_.find(sid);
  if (it == followers_.end()) return;
  if (auto c = calls_.find(it->second.call); c != calls_.end()) c->second.http->cancel();
  forget(it->second.call);
  followers_.erase(it);
}

void PushRelay::stop() {
  stopped_ = true;
  followers_.clear();
  ackRetries_.clear();
  // Freed at the end of this loop turn, while the mesh streams under them still have their
  // connections (module workers are destroyed in order, the mesh's first).
  std::vector<uint64_t> ids;
  for (auto& [id, c] : calls_) {
    c.http->cancel();
    ids.push_back(id);
  }
  for (uint64_t id : ids) forget(id);
}

}  // namespace ugate::webpush
