// The push service's requests on one worker (push_service.h): RFC 8030 §4-§6 against the store.
#include "webpush/push_service.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include <ugate/config.h>
#include <ugate/socket_util.h>
#include <ugate/tls_provider.h>

#include "webpush/push_http.h"
#include "webpush/push_relay.h"
#include "webpush/push_xds_feed.h"
#include "webpush/vapid.h"

namespace ugate::webpush {

namespace {

bool validHost(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == ':' || c == '[' || c == ']' || c == '_';
  });
}

// kTtl0Grace: a message with TTL 0 is kept this long for a subscriber that is connected right now.
constexpr int64_t kTtl0GraceMs = 30'000;

// receiptKey: the PushShared::listen key of receipt subscription rsid (ids never hold ':');
// ownerKey: of every receipt stream of push subscription sid (ended when it is removed).
std::string receiptKey(const std::string& rsid) { return "r:" + rsid; }
std::string ownerKey(const std::string& sid) { return "rs:" + sid; }

// kReceiptBatch: receipts sent per store read on one stream.
constexpr size_t kReceiptBatch = 100;

}  // namespace

// ---- Exchange ------------------------------------------------------------------------------------

Exchange::Exchange(PushWorker& w, RequestInfo req) : worker_(w), id_(0), req_(std::move(req)) {
  id_ = worker_.registerExchange(*this);
}

Exchange::~Exchange() { detach(); }

void Exchange::detach() {
  if (detached_) return;
  detached_ = true;
  worker_.forgetExchange(id_);
}

// ---- PushWorker ----------------------------------------------------------------------------------

PushWorker::PushWorker(WorkerContext& w, PushShared& shared)
    : w_(w), shared_(shared), mailbox_(std::make_shared<Mailbox>(w.reactor(), *this)) {
  if (w_.index() == 0) {
    sweepTimer_ = w_.reactor().createTimer([this] { sweep(); });
    sweepTimer_->enable(Duration(0));  // once at startup: expired messages go, the gauges are set
  }
  if (const auto& g = config().gateway) {
    relay_ = PushRelay::create(*this, *g);
    if (relay_) shared_.setRelayHome(w_.index(), mailbox_);
    // Worker 0 keeps the delivery streams at the gateway, once the workers run.
    if (relay_ && w_.index() == 0) w_.reactor().post([this] { relay_->followStored(); });
  }
  if (w_.index() == 0) {
    // Delivery over xDS (push_xds_feed.cc): what an ADS client receives for this node comes in
    // here; what the store holds for other nodes goes into the MessageBox again.
    messageBox().setInbox([mb = mailbox_](std::vector<BoxedMessage> m) {
      mb->post([m = std::move(m)](PushWorker& pw) mutable { pw.takeFromXds(std::move(m)); });
    });
    w_.reactor().post([this] { repostXds(); });
  }
}

void PushWorker::accept(const ListenerConfig& l, int fd, StreamMeta meta) {
  const std::shared_ptr<const TlsProvider>& tls = w_.tls();
  if (draining_ || !tls || !l.tls) {
    closeAbort(fd);
    if (!draining_ && w_.logBudget()) {
      spdlog::warn("webpush: listener {}: no TLS credentials loaded (see the startup log)", l.name);
    }
    return;
  }
  auto c = std::make_unique<PushConn>(*this, l, std::move(meta));
  PushConn* raw = c.get();
  conns_.emplace(raw, std::move(c));
  if (!raw->start(*tls, l, fd)) {
    spdlog::warn("webpush: listener {}: no TLS context for its settings (reload in progress?)", l.name);
    raw->close();
  }
}

PushWorker::~PushWorker() {
  if (w_.index() == 0) messageBox().setInbox(nullptr);
  mailbox_->close();
  relay_.reset();
  auto conns = std::move(conns_);
  conns.clear();
}

const WebpushConfig& PushWorker::config() const { return webpushConfig(w_.config()); }

int64_t PushWorker::wallMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


uint64_t PushWorker::registerExchange(Exchange& ex) {
  const uint64_t id = nextExchange_++;
  exchanges_[id] = &ex;
  return id;
}

void PushWorker::forgetExchange(uint64_t id) {
  exchanges_.erase(id);
  if (auto r = receiptStreams_.find(id); r != receiptStreams_.end()) {
    shared_.unlisten(receiptKey(r->second.rsid), id);
    shared_.unlisten(ownerKey(r->second.sid), id);
    receiptStreams_.erase(r);
    return;
  }
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  shared_.unlisten(it->second.sid, id);
  counters().subscribers.fetch_sub(1, std::memory_order_relaxed);
  subscribers_.erase(it);
}

Exchange* PushWorker::find(uint64_t id) {
  auto it = exchanges_.find(id);
  return it == exchanges_.end() ? nullptr : it->second;
}

void PushWorker::connectionDone(PushConn* c) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  w_.reactor().deferredDelete(std::move(it->second));
  conns_.erase(it);
}

void PushWorker::configApplied(const Config& cfg) {
  for (const auto& l : cfg.listeners) {
    if (l.kind != "push" || shared_.store()) continue;
    if (auto r = shared_.ensureStore(storePath(cfg), webpushConfig(cfg).sync, webpushConfig(cfg).storeBatch); !r) {
      spdlog::error("webpush: {} (push listeners answer 503 until it opens)", r.error().detail);
    }
  }
}

void PushWorker::drain() {
  draining_ = true;
  if (relay_) relay_->stop();
  std::vector<uint64_t> streams;
  for (auto& [id, s] : subscribers_) streams.push_back(id);
  for (auto& [id, s] : receiptStreams_) streams.push_back(id);
  for (uint64_t id : streams) {
    if (Exchange* e = find(id)) e->endEvents();
  }
  std::vector<PushConn*> conns;
  for (auto& [c, owned] : conns_) conns.push_back(c);
  for (PushConn* c : conns) {
    if (conns_.count(c)) c->drain();
  }
}

void PushWorker::refused(const std::string& source, const Refusal& r) {
  counters().reject(r.reason);
  if (w_.logBudget()) spdlog::info("webpush: refused {} from {}: {} {}: {}", "request", source, r.status, r.reason, r.detail);
}

void PushWorker::refuse(Exchange& ex, const Refusal& r, HeaderList extra) {
  counters().reject(r.reason);
  if (w_.logBudget()) {
    spdlog::info("webpush: {} {} from {}: {} {}: {}", ex.request().method, ex.request().target.substr(0, 16),
                 ex.request().source, r.status, r.reason, r.detail);
  }
  extra.emplace_back("content-type", "text/plain; charset=utf-8");
  ex.respond(r.status, std::move(extra), r.reason + ": " + r.detail + "\n");
}

std::string PushWorker::origin(const Exchange& ex) const {
  const std::string& pub = config().publicUrl;
  if (!pub.empty()) return pub;
  return normalizeOrigin("https://" + ex.request().authority);
}

void PushWorker::handle(Exchange& ex) {
  counters().requests.fetch_add(1, std::memory_order_relaxed);
  auto m = matchTarget(ex.request().method, ex.request().target);
  if (auto* r = std::get_if<Refusal>(&m)) {
    HeaderList extra;
    if (r->status == 405) extra.emplace_back("allow", r->detail);
    refuse(ex, *r, std::move(extra));
    return;
  }
  const ApiTarget& t = std::get<ApiTarget>(m);
  const WebpushConfig& cfg = config();
  int64_t retry = 0;
  if (!shared_.allowSource(ex.request().source, cfg.sourceRate, cfg.sourceBurst, wallMs(), retry)) {
    refuse(ex, {429, "rate_limited_source", "too many requests from this address"}, {{"retry-after", std::to_string(retry)}});
    return;
  }
  if (!validHost(ex.request().authority) && config().publicUrl.empty()) {
    refuse(ex, {400, "bad_host", "the request names no valid Host"});
    return;
  }
  PushStore* st = shared_.store();
  if (st == nullptr) {
    refuse(ex, {503, "store_unavailable", "the push store is not open (see the log)"});
    return;
  }
  switch (t.resource) {
    case Resource::Subscribe: subscribe(ex, *st); return;
    case Resource::Push: push(ex, *st, t.id); return;
    case Resource::Receive: receive(ex, *st, t.id, t.query); return;
    case Resource::Unsubscribe: unsubscribe(ex, *st, t.id); return;
    case Resource::DeleteMessage: deleteMessage(ex, *st, t.id); return;
    case Resource::Publish: publish(ex, *st, t.id); return;
    case Resource::ReceiptSubscribe: receiptSubscribe(ex, *st, t.id); return;
    case Resource::ReceiptReceive: receiptReceive(ex, *st, t.id, t.query); return;
    case Resource::ReceiptUnsubscribe: receiptUnsubscribe(ex, *st, t.id); return;
    case Resource::ReceiptAck: receiptAck(ex, *st, t.id, t.seq); return;
  }
}

void PushWorker::storeFailed(uint64_t exId, const Error& e, std::string_view what) {
  spdlog::error("webpush: store: {}: {}", what, e.detail);
  if (Exchange* ex = find(exId)) refuse(*ex, {503, "store_error", "the push store failed; try again"});
}

void PushWorker::subscribe(Exchange& ex, PushStore& st) {
  auto body = parseSubscribeBody(ex.request().body);
  if (auto* r = std::get_if<Refusal>(&body)) return refuse(ex, *r);
  const SubscribeRequest& req = std::get<SubscribeRequest>(body);
  if (!req.mailbox.empty() && !req.deliverXds) return subscribeMailbox(ex, st, req);  // N: read a topic mailbox
  if (relay_) return subscribeAtGateway(ex, st, req);  // "deliver": "xds" too (the gateway records who)
  if (req.deliverXds) return subscribeXds(ex, st, req);
  if (!req.topic.empty()) return subscribeTopic(ex, st, req);
  Subscription s;
  s.id = newId();
  s.token = newId();
  s.appServerKey.assign(req.applicationServerKey.begin(), req.applicationServerKey.end());
  s.createdMs = s.usedMs = wallMs();
  const std::string sid = s.id, token = s.token, endpoint = origin(ex) + "/push/" + s.token;
  st.addSubscription(std::move(s), back<void>([this, id = ex.id(), sid, token, endpoint](Result<void> r) {
    if (!r) return storeFailed(id, r.error(), "add subscription");
    counters().subscriptionsCreated.fetch_add(1, std::memory_order_relaxed);
    subscribed(id, sid, endpoint, "/push/" + token, "/receipts/" + token);
  }));
}

void PushWorker::subscribed(uint64_t exId, const std::string& sid, const std::string& endpoint, const std::string& link,
                            const std::string& receiptLink) {
  Exchange* e = find(exId);
  if (e == nullptr) return;
  HeaderList h{{"location", "/s/" + sid}, {"link", "<" + link + ">; rel=\"urn:ietf:params:push\""}};
  // RFC 8030 §4/§5.1: the receipt subscribe resource, for the application server.
  if (!receiptLink.empty()) h.emplace_back("link", "<" + receiptLink + ">; rel=\"" + std::string(kReceiptRel) + "\"");
  h.emplace_back("cache-control", "no-store");
  h.emplace_back("content-type", "application/json");
  e->respond(201, std::move(h), subscribeJson(endpoint, "/s/" + sid));
}

void PushWorker::subscribeAtGateway(Exchange& ex, PushStore& st, const SubscribeRequest& req) {
  std::string key(req.applicationServerKey.begin(), req.applicationServerKey.end());
  relay_->subscribe(ex.request().body, [this, id = ex.id(), st = &st, key = std::move(key), xds = req.deliverXds,
                                         topicBox = !req.mailbox.empty()](
                                            int status, std::optional<SubscribeReply> reply, const std::string& error) {
    if (find(id) == nullptr) return;  // the client left; the gateway's subscription is swept unused
    if (!reply) {
      Exchange& e = *find(id);
      if (status >= 400 && status < 500) return refuse(e, {status, "gateway_refused", "the gateway refused: " + error});
      return refuse(e, {502, "gateway_unreachable", "the gateway's push service cannot be reached: " + error});
    }
    // A topic mailbox's subscription posts at the gateway; its readers bind their own (no copy here).
    if (topicBox) return subscribed(id, reply->sid, reply->endpoint, reply->endpoint);
    Subscription s;
    s.id = reply->sid;
    s.token = reply->token;
    s.appServerKey = key;
    if (xds) s.topic = std::string(kXdsLocalTopic);  // filled over xDS (push_xds_feed.h), not streamed
    s.createdMs = s.usedMs = wallMs();
    st->addSubscription(std::move(s), back<void>([this, id, r = *reply, xds](Result<void> done) {
      if (!done) return storeFailed(id, done.error(), "add subscription");
      counters().subscriptionsCreated.fetch_add(1, std::memory_order_relaxed);
      if (!xds) shared_.followAtRelay(r.sid);
      subscribed(id, r.sid, r.endpoint, r.endpoint);
    }));
  });
}

void PushWorker::push(Exchange& ex, PushStore& st, const std::string& token) {
  auto h = checkPushHeaders(ex.request().headers, ex.request().body.size(), {config().maxTtlSeconds, config().maxBody});
  if (auto* r = std::get_if<Refusal>(&h)) return refuse(ex, *r);
  if (auto pr = headerValue(ex.request().headers, "push-receipt")) {
    auto rsid = parsePushReceipt(*pr, origin(ex));
    if (auto* r = std::get_if<Refusal>(&rsid)) return refuse(ex, *r);
  }
  // A cached subscription saves a store round trip: the put is then the push's only operation.
  if (auto cached = st.cachedSubscription(token)) return pushTo(ex.id(), *cached);
  st.subscriptionByToken(token, back<std::optional<Subscription>>([this, id = ex.id(), token](
                                                                       Result<std::optional<Subscription>> r) {
    if (!r) return storeFailed(id, r.error(), "find subscription");
    if (find(id) == nullptr) return;
    if (*r) return pushTo(id, **r);
    PushStore* st2 = shared_.store();
    st2->tokenGone(token, back<bool>([this, id](Result<bool> gone) {
      if (!gone) return storeFailed(id, gone.error(), "find tombstone");
      Exchange* e = find(id);
      if (e == nullptr) return;
      if (*gone) return refuse(*e, {410, "subscription_gone", "the subscription was removed"});
      refuse(*e, {404, "unknown_subscription", "no such subscription"});
    }));
  }));
}

void PushWorker::pushTo(uint64_t exId, const Subscription& sub) {
  Exchange& ex = *find(exId);
  const RequestInfo& req = ex.request();
  const int64_t now = wallMs();
  if (!sub.appServerKey.empty()) {
    // RFC 8292 §4: a restricted subscription takes only messages signed by its application server.
    auto auth = headerValue(req.headers, "authorization");
    if (!auth) {
      return refuse(ex, {401, "vapid_missing", "this subscription requires VAPID (RFC 8292)"}, {{"www-authenticate", "vapid"}});
    }
    auto creds = parseVapidAuthorization(*auth, headerValue(req.headers, "crypto-key").value_or(""));
    if (!creds) {
      return refuse(ex, {401, "vapid_" + std::string(creds.error().reason()), creds.error().detail},
                    {{"www-authenticate", "vapid"}});
    }
    const std::span<const uint8_t> key(reinterpret_cast<const uint8_t*>(sub.appServerKey.data()), sub.appServerKey.size());
    const std::string o = origin(ex);
    auto claims = verifyVapid(*creds, {o, auth::SystemTime(std::chrono::milliseconds(now)), key});
    if (!claims) {
      const bool wrongKey = claims.error().code == PushErrc::WrongKey;
      return refuse(ex, {wrongKey ? 403 : 401, "vapid_" + std::string(claims.error().reason()), claims.error().detail},
                    wrongKey ? HeaderList{} : HeaderList{{"www-authenticate", "vapid"}});
    }
  }
  const WebpushConfig& cfg = config();
  int64_t retry = 0;
  if (!shared_.allowSubscription(sub.id, cfg.subscriptionRate, cfg.subscriptionBurst, now, retry)) {
    return refuse(ex, {429, "rate_limited_subscription", "too many messages for this subscription"},
                  {{"retry-after", std::to_string(retry)}});
  }
  auto h = std::get<PushHeaders>(checkPushHeaders(req.headers, req.body.size(), {cfg.maxTtlSeconds, cfg.maxBody}));
  StoredMessage m;
  m.id = newMessageId(now);
  m.subscription = sub.id;
  m.topic = h.topic;
  m.urgency = h.urgency;
  m.ttlSeconds = h.ttl;
  m.receivedMs = now;
  m.expiresMs = now + (h.ttl > 0 ? h.ttl * 1000 : kTtl0GraceMs);
  m.encoding = h.encoding;
  m.body = std::move(ex.request().body);
  if (auto pr = headerValue(req.headers, "push-receipt")) m.receipt = std::get<std::string>(parsePushReceipt(*pr, origin(ex)));
  std::optional<std::pair<std::string, StoredMessage>> xds;  // deliver-xds: posted for its node once committed
  if (auto to = xdsRecipient(sub)) xds.emplace(*to, m);
  const std::string mid = m.id;
  HeaderList answer{{"location", "/m/" + mid}, {"ttl", std::to_string(h.ttl)}};
  // Prefer: respond-async (RFC 7240 §4.1): 202 once the message is committed, as 201 is: it is
  // stored and not yet delivered either way; 202 only says so to a sender that asked.
  const bool async = preferences(req.headers).respondAsync;
  if (async) answer.emplace_back("preference-applied", "respond-async");
  const bool receipt = !m.receipt.empty();
  if (h.ttl == 0 && !receipt && !shared_.listened(sub.id)) {
    // RFC 8030 §5.2: TTL 0 and nobody to deliver it to now: accepted, then dropped at once.
    counters().accepted.fetch_add(1, std::memory_order_relaxed);
    counters().expired.fetch_add(1, std::memory_order_relaxed);
    ex.respond(201, std::move(answer), {});
    return;
  }
  shared_.store()->put(std::move(m), back<int64_t>([this, exId, sid = sub.id, topic = h.topic, answer, async,
                                                     receipt, xds](Result<int64_t> r) {
    if (!r && r.error().code == Errc::NotFound) {
      if (Exchange* e = find(exId)) refuse(*e, {410, "subscription_gone", "the subscription was removed"});
      return;
    }
    if (!r && r.error().code == Errc::InvalidArgument) {
      if (Exchange* e = find(exId)) {
        refuse(*e, {400, "unknown_receipt_subscription",
                    "Push-Receipt names no receipt subscription of this push subscription (RFC 8030 §5.1)"});
      }
      return;
    }
    if (!r && r.error().code == Errc::ResourceExhausted) {
      if (Exchange* e = find(exId)) {
        refuse(*e, {429, "receipts_full",
                    "the receipt subscription holds " + std::to_string(kMaxStoredReceipts) +
                        " unacknowledged receipts; read and acknowledge them first"});
      }
      return;
    }
    if (!r) return storeFailed(exId, r.error(), "put message");
    counters().accepted.fetch_add(1, std::memory_order_relaxed);
    if (receipt) counters().receiptsRequested.fetch_add(1, std::memory_order_relaxed);
    shared_.notify(sid, "", false, topic);
    if (xds) postToXds(xds->first, xds->second, *r);
    if (Exchange* e = find(exId)) e->respond(async ? 202 : 201, answer, {});
  }));
}

void PushWorker::receive(Exchange& ex, PushStore& st, const std::string& sid, const std::string& query) {
  auto rr = checkReceiveRequest(ex.request().headers, query);
  if (auto* r = std::get_if<Refusal>(&rr)) return refuse(ex, *r);
  st.subscriptionById(sid, back<std::optional<Subscription>>(
                               [this, id = ex.id(), sid, req = std::get<ReceiveRequest>(rr)](
                                   Result<std::optional<Subscription>> r) {
                                 if (!r) return storeFailed(id, r.error(), "find subscription");
                                 Exchange* e = find(id);
                                 if (e == nullptr) return;
                                 if (!*r) return refuse(*e, {404, "unknown_subscription", "no such subscription"});
                                 startDelivery(id, sid, req);
                               }));
}

void PushWorker::startDelivery(uint64_t exId, const std::string& sid, const ReceiveRequest& rr) {
  Exchange* e = find(exId);
  if (draining_) return refuse(*e, {503, "draining", "the service is shutting down"});
  e->startEvents();
  Subscriber& s = subscribers_[exId];
  s.sid = sid;
  s.minUrgency = rr.minUrgency;
  s.keepalive = keepaliveTimer(exId);
  shared_.listen(sid, mailbox_, exId);
  counters().subscribers.fetch_add(1, std::memory_order_relaxed);
  if (rr.lastEventId.empty()) return fetch(exId);
  // Last-Event-ID: what the client had before (delivered, perhaps not yet acknowledged) is not
  // sent again on this stream. A message already acknowledged is gone: then everything pending is.
  s.fetching = true;
  shared_.store()->message(rr.lastEventId, back<std::optional<StoredMessage>>(
                                                [this, exId, sid](Result<std::optional<StoredMessage>> r) {
                                                  auto it = subscribers_.find(exId);
                                                  if (it == subscribers_.end()) return;
                                                  it->second.fetching = false;
                                                  if (r && *r && (*r)->subscription == sid) it->second.lastSeq = (*r)->seq;
                                                  fetch(exId);
                                                }));
}

TimerPtr PushWorker::keepaliveTimer(uint64_t exId) {
  TimerPtr t = w_.reactor().createTimer([this, exId] {
    Exchange* ex = find(exId);
    Timer* self = nullptr;
    if (auto it = subscribers_.find(exId); it != subscribers_.end()) {
      self = it->second.keepalive.get();
    } else if (auto r = receiptStreams_.find(exId); r != receiptStreams_.end()) {
      self = r->second.keepalive.get();
    }
    if (self == nullptr || ex == nullptr) return;
    ex->sendEvents(kSseKeepalive);
    self->enable(config().keepalive);
  });
  t->enable(config().keepalive);
  return t;
}

void PushWorker::fetch(uint64_t exId) {
  auto it = subscribers_.find(exId);
  if (it == subscribers_.end()) return;
  Subscriber& s = it->second;
  if (s.fetching) {
    s.again = true;
    return;
  }
  const int64_t now = wallMs();
  // An in-flight message that expired frees its slot.
  std::erase_if(s.inFlight, [now](const auto& kv) { return kv.second.expiresMs <= now; });
  const size_t max = config().maxInFlight;
  if (s.inFlight.size() >= max) return;  // the next acknowledgement wakes us
  s.fetching = true;
  s.again = false;
  shared_.store()->pending(
      s.sid, s.lastSeq, now, s.minUrgency, max - s.inFlight.size(),
      back<std::vector<StoredMessage>>([this, exId](Result<std::vector<StoredMessage>> r) {
        auto it2 = subscribers_.find(exId);
        Exchange* e = find(exId);
        if (it2 == subscribers_.end() || e == nullptr) return;
        Subscriber& sub = it2->second;
        sub.fetching = false;
        if (!r) {
          spdlog::error("webpush: store: pending messages: {}", r.error().detail);
        } else {
          const int64_t now2 = wallMs();
          std::string out;
          std::vector<std::string> receiptWanted;
          for (const StoredMessage& m : *r) {
            out += sseEvent(m, now2);
            sub.inFlight[m.id] = {m.expiresMs, m.topic};
            sub.lastSeq = std::max(sub.lastSeq, m.seq);
            if (!m.receipt.empty()) receiptWanted.push_back(m.id);
          }
          // Marked before it is sent: the store runs the mark before any acknowledgement of it, so
          // the acknowledgement finds it delivered and stores the receipt.
          if (!receiptWanted.empty()) {
            shared_.store()->markDelivered(std::move(receiptWanted), [](Result<void> done) {
              if (!done) spdlog::error("webpush: store: mark delivered: {}", done.error().detail);
            });
          }
          counters().delivered.fetch_add(r->size(), std::memory_order_relaxed);
          if (!out.empty()) e->sendEvents(out);
        }
        if (sub.again) fetch(exId);
      }));
}

void PushWorker::wake(uint64_t stream, const std::string& ackedMid, bool gone, const std::string& topic) {
  if (receiptStreams_.count(stream)) {
    if (gone) {
      if (Exchange* e = find(stream)) e->endEvents();
      return;
    }
    return fetchReceipts(stream);
  }
  auto it = subscribers_.find(stream);
  if (it == subscribers_.end()) return;
  if (gone) {
    if (Exchange* e = find(stream)) e->endEvents();
    return;
  }
  if (!topic.empty()) {
    // The new message replaced the pending one of its topic (RFC 8030 §5.4): one in flight here is
    // deleted and can no longer be acknowledged, so its slot is free. (The new one is not in flight
    // yet unless a fetch raced ahead of this wake; then its slot is freed early, which only lets one
    // more message out.)
    std::erase_if(it->second.inFlight, [&](const auto& kv) { return kv.second.topic == topic; });
  }
  if (!ackedMid.empty() && it->second.inFlight.erase(ackedMid) > 0) {
    counters().acked.fetch_add(1, std::memory_order_relaxed);
  }
  fetch(stream);
}

void PushWorker::unsubscribe(Exchange& ex, PushStore& st, const std::string& sid) {
  st.removeSubscription(sid, back<bool>([this, id = ex.id(), sid](Result<bool> r) {
    if (!r) return storeFailed(id, r.error(), "remove subscription");
    if (*r) {
      counters().subscriptionsDeleted.fetch_add(1, std::memory_order_relaxed);
      shared_.notify(sid, "", true);
      shared_.notify(ownerKey(sid), "", true);  // its receipt subscriptions went with it
      xdsGone(sid, "");
      if (relay_) relay_->unsubscribe(sid);  // worker 0's stream ends when the gateway's goes
    }
    Exchange* e = find(id);
    if (e == nullptr) return;
    if (!*r) return refuse(*e, {404, "unknown_subscription", "no such subscription"});
    e->respond(204, {}, {});
  }));
}

void PushWorker::deleteMessage(Exchange& ex, PushStore& st, const std::string& mid) {
  st.message(mid, back<std::optional<StoredMessage>>([this, id = ex.id(), mid](Result<std::optional<StoredMessage>> r) {
    if (!r) return storeFailed(id, r.error(), "find message");
    if (!*r) {
      if (Exchange* e = find(id)) refuse(*e, {404, "unknown_message", "no such message (acknowledged, cancelled or expired)"});
      return;
    }
    const std::string sid = (*r)->subscription;
    shared_.store()->acknowledge(mid, wallMs(), kMaxStoredReceipts, back<Acked>([this, id, mid, sid](Result<Acked> done) {
      if (!done) return storeFailed(id, done.error(), "remove message");
      if (done->removed) {
        counters().deleted.fetch_add(1, std::memory_order_relaxed);
        shared_.notify(sid, mid, false);
        xdsGone(sid, mid);
      }
      if (done->seq > 0) {
        counters().receiptsStored.fetch_add(1, std::memory_order_relaxed);
        shared_.notify(receiptKey(done->rsid), "", false);
      } else if (done->dropped) {
        counters().receiptsDropped.fetch_add(1, std::memory_order_relaxed);
        if (w_.logBudget()) {
          spdlog::info("webpush: receipt for message {} dropped: receipt subscription {}... holds {} unacknowledged receipts",
                       mid.substr(0, 16), done->rsid.substr(0, 8), kMaxStoredReceipts);
        }
      } else if (!done->rsid.empty()) {
        counters().receiptsNotDelivered.fetch_add(1, std::memory_order_relaxed);  // deleted before delivery: a cancel
      }
      Exchange* e = find(id);
      if (e == nullptr) return;
      if (!done->removed) return refuse(*e, {404, "unknown_message", "no such message"});
      e->respond(204, {}, {});
    }));
  }));
}

// ---- Receipts (RFC 8030 §5.1) -------------------------------------------------------------------

void PushWorker::receiptSubscribe(Exchange& ex, PushStore& st, const std::string& token) {
  if (relay_) {
    return refuse(ex, {404, "unknown_subscription", "this node's subscriptions live at its gateway (webpush.gateway)"});
  }
  const std::string rsid = newId();
  st.addReceiptSubscription(token, rsid, wallMs(), kMaxReceiptSubscriptions,
                            back<ReceiptSubAdd>([this, id = ex.id(), rsid](Result<ReceiptSubAdd> r) {
                              if (!r) return storeFailed(id, r.error(), "add receipt subscription");
                              Exchange* e = find(id);
                              if (e == nullptr) return;
                              if (*r == ReceiptSubAdd::NoSubscription) {
                                return refuse(*e, {404, "unknown_subscription", "no such subscription"});
                              }
                              if (*r == ReceiptSubAdd::Full) {
                                return refuse(*e, {429, "receipt_subscriptions_full",
                                                   "this push subscription has " + std::to_string(kMaxReceiptSubscriptions) +
                                                       " receipt subscriptions; delete one first"});
                              }
                              counters().receiptSubscriptionsCreated.fetch_add(1, std::memory_order_relaxed);
                              e->respond(201, {{"location", "/r/" + rsid}, {"cache-control", "no-store"}}, {});
                            }));
}

void PushWorker::receiptReceive(Exchange& ex, PushStore& st, const std::string& rsid, const std::string& query) {
  auto rr = checkReceiveRequest(ex.request().headers, query);
  if (auto* r = std::get_if<Refusal>(&rr)) return refuse(ex, *r);
  // Last-Event-ID: the receipts up to that one were read on an earlier stream; not sent again here.
  int64_t after = 0;
  const std::string& last = std::get<ReceiveRequest>(rr).lastEventId;
  if (!last.empty() && last.size() <= 18 && std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    after = std::stoll(last);
  }
  st.receiptSubscription(rsid, back<std::optional<std::string>>([this, id = ex.id(), rsid, after](
                                                                    Result<std::optional<std::string>> r) {
    if (!r) return storeFailed(id, r.error(), "find receipt subscription");
    Exchange* e = find(id);
    if (e == nullptr) return;
    if (!*r) return refuse(*e, {404, "unknown_receipt_subscription", "no such receipt subscription"});
    if (draining_) return refuse(*e, {503, "draining", "the service is shutting down"});
    e->startEvents();
    ReceiptStream& s = receiptStreams_[id];
    s.rsid = rsid;
    s.sid = **r;
    s.lastSeq = after;
    s.keepalive = keepaliveTimer(id);
    shared_.listen(receiptKey(rsid), mailbox_, id);
    shared_.listen(ownerKey(s.sid), mailbox_, id);
    fetchReceipts(id);
  }));
}

void PushWorker::fetchReceipts(uint64_t exId) {
  auto it = receiptStreams_.find(exId);
  if (it == receiptStreams_.end()) return;
  ReceiptStream& s = it->second;
  if (s.fetching) {
    s.again = true;
    return;
  }
  s.fetching = true;
  s.again = false;
  shared_.store()->receipts(s.rsid, s.lastSeq, kReceiptBatch,
                            back<std::vector<StoredReceipt>>([this, exId](Result<std::vector<StoredReceipt>> r) {
                              auto it2 = receiptStreams_.find(exId);
                              Exchange* e = find(exId);
                              if (it2 == receiptStreams_.end() || e == nullptr) return;
                              ReceiptStream& rs = it2->second;
                              rs.fetching = false;
                              if (!r) {
                                spdlog::error("webpush: store: receipts: {}", r.error().detail);
                              } else {
                                std::string out;
                                for (const StoredReceipt& x : *r) {
                                  out += receiptSseEvent(x.rsid, x.seq, x.mid, x.ackedMs);
                                  rs.lastSeq = std::max(rs.lastSeq, x.seq);
                                }
                                counters().receiptsDelivered.fetch_add(r->size(), std::memory_order_relaxed);
                                if (!out.empty()) e->sendEvents(out);
                                if (r->size() == kReceiptBatch) rs.again = true;  // more may wait
                              }
                              if (rs.again) fetchReceipts(exId);
                            }));
}

void PushWorker::receiptUnsubscribe(Exchange& ex, PushStore& st, const std::string& rsid) {
  st.removeReceiptSubscription(rsid, back<bool>([this, id = ex.id(), rsid](Result<bool> r) {
    if (!r) return storeFailed(id, r.error(), "remove receipt subscription");
    if (*r) {
      counters().receiptSubscriptionsDeleted.fetch_add(1, std::memory_order_relaxed);
      shared_.notify(receiptKey(rsid), "", true);
    }
    Exchange* e = find(id);
    if (e == nullptr) return;
    if (!*r) return refuse(*e, {404, "unknown_receipt_subscription", "no such receipt subscription"});
    e->respond(204, {}, {});
  }));
}

void PushWorker::receiptAck(Exchange& ex, PushStore& st, const std::string& rsid, int64_t seq) {
  st.removeReceipt(rsid, seq, back<bool>([this, id = ex.id()](Result<bool> r) {
    if (!r) return storeFailed(id, r.error(), "remove receipt");
    if (*r) counters().receiptsAcked.fetch_add(1, std::memory_order_relaxed);
    Exchange* e = find(id);
    if (e == nullptr) return;
    if (!*r) return refuse(*e, {404, "unknown_receipt", "no such receipt (acknowledged already, or its subscription is gone)"});
    e->respond(204, {}, {});
  }));
}

void PushWorker::sweep() {
  sweepTimer_->enable(config().sweepInterval);
  const int64_t now = wallMs();
  shared_.forgetIdleBuckets(now);
  PushStore* st = shared_.store();
  if (st == nullptr) return;
  st->sweep(now, config().subscriptionTtlSeconds * 1000, back<PushStore::Swept>([this](Result<PushStore::Swept> r) {
    if (!r) return spdlog::error("webpush: store: sweep: {}", r.error().detail);
    counters().expired.fetch_add(r->messages, std::memory_order_relaxed);
    counters().subscriptionsSwept.fetch_add(r->subscriptions, std::memory_order_relaxed);
    counters().storedSubscriptions.store(static_cast<int64_t>(r->subscriptionsLeft), std::memory_order_relaxed);
    counters().storedMessages.store(static_cast<int64_t>(r->messagesLeft), std::memory_order_relaxed);
    if (r->messages || r->subscriptions) {
      spdlog::info("webpush: swept {} expired messages and {} idle subscriptions", r->messages, r->subscriptions);
    }
  }));
}

}  // namespace ugate::webpush
