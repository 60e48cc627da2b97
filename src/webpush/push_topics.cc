// Pub/sub on the push service (push_service.h): topics `<node>/<name>` that this node publishes
// (`webpush.topics`). A subscriber subscribes with its keys (POST /subscribe {"topic", "keys"}); an
// authorized publisher (a VAPID key listed for the topic) posts the plaintext to
// POST /topic/<node>/<name>, and this node encrypts one copy per subscriber with RFC 8291 and
// stores it as an ordinary message of that subscription, so every hop after it (gateways, relays,
// circuits) carries only ciphertext it cannot read or alter, and delivery, acks, redelivery and TTL
// are those of any push message. Order per topic: a publish's copies are queued to the store in
// subscriber order, one publish after another on each worker, and 201 is answered only once all
// are committed, so a publisher that waits for each 201 sees its messages delivered in its order.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include <ugate/config.h>

#include "webpush/message_crypto.h"
#include "webpush/push_service.h"
#include "webpush/vapid.h"

// GCC 12 reports a false "may be used uninitialized" inside std::variant when a Result<vector> is
// moved through the store completion's std::function (-O2); clang and the sanitizers see no issue.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ugate::webpush {

namespace {
// RFC 8291 §4: what encryption adds to a plaintext (86-byte header, 1 delimiter, 16-byte tag).
constexpr size_t kEncryptionOverhead = 86 + 1 + 16;
// Copies encrypted per loop turn (ECDH each): a large topic does not hold the reactor long.
constexpr size_t kFanOutChunk = 32;
bool iequalsAscii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<Refusal> PushWorker::checkPublisher(const Exchange& ex, const TopicConfig& tc, const std::string& topic,
                                                  std::string_view authz, int64_t now) const {
  const RequestInfo& req = ex.request();
  auto creds = parseVapidAuthorization(authz, headerValue(req.headers, "crypto-key").value_or(""));
  if (!creds) return Refusal{401, "vapid_" + std::string(creds.error().reason()), creds.error().detail};
  const std::string k(creds->publicKey.begin(), creds->publicKey.end());
  if (std::find(tc.publishers.begin(), tc.publishers.end(), k) == tc.publishers.end()) {
    return Refusal{403, "publisher_not_listed", "this VAPID key may not publish to " + topic};
  }
  const std::span<const uint8_t> key(reinterpret_cast<const uint8_t*>(k.data()), k.size());
  if (auto claims = verifyVapid(*creds, {origin(ex), auth::SystemTime(std::chrono::milliseconds(now)), key}); !claims) {
    return Refusal{401, "vapid_" + std::string(claims.error().reason()), claims.error().detail};
  }
  return std::nullopt;
}

struct PushWorker::FanOut {
  uint64_t exId{0};
  std::string topic;
  PushHeaders headers;
  std::string plaintext;
  std::vector<PushStore::TopicSubscriber> subscribers;
  size_t next{0};      // the next subscriber to encrypt for
  size_t pending{0};   // puts not yet committed
  size_t stored{0};
  size_t failed{0};
  size_t skipped{0};   // subscribers at maxQueued: no copy for them
  int64_t maxQueued{0};
  int64_t nowMs{0};
};

void PushWorker::subscribeTopic(Exchange& ex, PushStore& st, const SubscribeRequest& req) {
  const TopicConfig* tc = config().topic(w_.config().node.name, req.topic);
  if (tc == nullptr) return refuse(ex, {404, "unknown_topic", "this node publishes no topic " + req.topic});
  st.topicSubscribers(req.topic, tc->maxSubscribers,
                      back<std::vector<PushStore::TopicSubscriber>>([this, id = ex.id(), req, max = tc->maxSubscribers](
                                                                        Result<std::vector<PushStore::TopicSubscriber>> r) {
                        if (!r) return storeFailed(id, r.error(), "topic subscribers");
                        Exchange* e = find(id);
                        if (e == nullptr) return;
                        if (r->size() >= max) {
                          return refuse(*e, {429, "topic_full", "the topic has its maxSubscribers"}, {{"retry-after", "60"}});
                        }
                        Subscription s;
                        s.id = newId();
                        s.token = newId();
                        s.appServerKey.assign(req.applicationServerKey.begin(), req.applicationServerKey.end());
                        s.topic = req.topic;
                        s.createdMs = s.usedMs = wallMs();
                        const std::string sid = s.id, token = s.token, endpoint = origin(*e) + "/push/" + s.token;
                        PushStore* store = shared_.store();
                        store->addSubscription(std::move(s), [](Result<void>) {});  // the next op reports both
                        store->setTopicKeys(sid, std::string(req.p256dh.begin(), req.p256dh.end()),
                                            std::string(req.auth.begin(), req.auth.end()),
                                            back<void>([this, id, sid, token, endpoint](Result<void> done) {
                                              if (!done) return storeFailed(id, done.error(), "add topic subscription");
                                              counters().subscriptionsCreated.fetch_add(1, std::memory_order_relaxed);
                                              subscribed(id, sid, endpoint, "/push/" + token);
                                            }));
                      }));
}

void PushWorker::publish(Exchange& ex, PushStore& st, const std::string& topic) {
  const TopicConfig* tc = config().topic(w_.config().node.name, topic);
  if (tc == nullptr) return refuse(ex, {404, "unknown_topic", "this node publishes no topic " + topic});
  const RequestInfo& req = ex.request();
  const int64_t now = wallMs();
  // A mesh identity (a verified client certificate) listed for the topic, or else RFC 8292 as for a
  // restricted subscription, against the topic's list of publishers.
  const bool byIdentity = std::any_of(req.peer.begin(), req.peer.end(), [&](const std::string& id) {
    return std::any_of(tc->identities.begin(), tc->identities.end(),
                       [&](const std::string& allowed) {
                         // SPIFFE IDs exactly, node IDs (base32) in either case.
                         return allowed.starts_with("spiffe://") ? allowed == id : iequalsAscii(allowed, id);
                       });
  });
  auto authz = headerValue(req.headers, "authorization");
  if (byIdentity) {
    // authorized by its certificate
  } else if (!authz) {
    return refuse(ex, {401, "vapid_missing", "publishing to a topic requires VAPID (RFC 8292) or a listed identity"},
                  {{"www-authenticate", "vapid"}});
  } else if (auto r = checkPublisher(ex, *tc, topic, *authz, now)) {
    return refuse(ex, *r, r->status == 401 ? HeaderList{{"www-authenticate", "vapid"}} : HeaderList{});
  }
  if (headerValue(req.headers, "content-encoding")) {
    return refuse(ex, {400, "publish_encoded", "publish the plaintext: this node encrypts each copy for its subscriber"});
  }
  const WebpushConfig& cfg = config();
  auto h = checkPushHeaders(req.headers, 0, {cfg.maxTtlSeconds, cfg.maxBody});
  if (auto* r = std::get_if<Refusal>(&h)) return refuse(ex, *r);
  const size_t maxPlain = cfg.maxBody - kEncryptionOverhead;
  if (req.body.size() > maxPlain) {
    return refuse(ex, {413, "too_large", "a topic message is at most " + std::to_string(maxPlain) + " bytes before encryption"});
  }
  int64_t retry = 0;
  if (!shared_.allowSubscription("topic:" + topic, tc->rate, tc->burst, now, retry)) {
    return refuse(ex, {429, "rate_limited_topic", "too many messages for this topic"}, {{"retry-after", std::to_string(retry)}});
  }
  auto f = std::make_shared<FanOut>();
  f->exId = ex.id();
  f->topic = topic;
  f->headers = std::get<PushHeaders>(h);
  f->plaintext = std::move(ex.request().body);
  f->nowMs = now;
  f->maxQueued = tc->maxQueued;
  st.topicSubscribers(topic, tc->maxSubscribers,
                      back<std::vector<PushStore::TopicSubscriber>>([this, f](Result<std::vector<PushStore::TopicSubscriber>> r) {
                        if (!r) return storeFailed(f->exId, r.error(), "topic subscribers");
                        for (auto& s : *r) f->subscribers.push_back(std::move(s));
                        fanOut(f);
                      }));
}

void PushWorker::fanOut(std::shared_ptr<FanOut> f) {
  auto answer = [this, f] {
    if (f->pending > 0 || f->next < f->subscribers.size()) return;
    counters().accepted.fetch_add(f->stored, std::memory_order_relaxed);
    if (Exchange* e = find(f->exId)) {
      e->respond(201, {{"ttl", std::to_string(f->headers.ttl)}, {"content-type", "application/json"}},
                 "{\"subscribers\":" + std::to_string(f->subscribers.size()) + ",\"stored\":" + std::to_string(f->stored) +
                     ",\"skipped\":" + std::to_string(f->skipped) + "}\n");
    }
  };
  PushStore* st = shared_.store();
  const size_t end = std::min(f->subscribers.size(), f->next + kFanOutChunk);
  for (; f->next < end; ++f->next) {
    const PushStore::TopicSubscriber& s = f->subscribers[f->next];
    if (s.queued >= f->maxQueued) {
      // A slow (or gone) subscriber: its backlog is bounded, the publisher and the others go on.
      ++f->skipped;
      counters().topicCopiesSkipped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto body = encryptPushMessage({reinterpret_cast<const uint8_t*>(f->plaintext.data()), f->plaintext.size()},
                                   {reinterpret_cast<const uint8_t*>(s.p256dh.data()), s.p256dh.size()},
                                   {reinterpret_cast<const uint8_t*>(s.auth.data()), s.auth.size()});
    if (!body) {
      ++f->failed;
      counters().reject("topic_bad_subscriber_key");
      spdlog::warn("webpush: topic {}: subscription {}: cannot encrypt for it: {}", f->topic, s.id, body.error().detail);
      continue;
    }
    StoredMessage m;
    m.id = newMessageId(f->nowMs);  // time-ordered, as a push's (the index grows at its end)
    m.subscription = s.id;
    m.topic = f->headers.topic;
    m.urgency = f->headers.urgency;
    m.ttlSeconds = f->headers.ttl;
    m.receivedMs = f->nowMs;
    m.expiresMs = f->nowMs + (f->headers.ttl > 0 ? f->headers.ttl * 1000 : 30'000);
    m.encoding = "aes128gcm";
    m.body.assign(body->begin(), body->end());
    ++f->pending;
    st->put(std::move(m), back<int64_t>([this, f, sid = s.id, answer](Result<int64_t> r) {
      --f->pending;
      if (r) {
        ++f->stored;
        shared_.notify(sid, "", false, f->headers.topic);
      } else if (r.error().code != Errc::NotFound) {  // NotFound: unsubscribed meanwhile
        ++f->failed;
        spdlog::error("webpush: store: topic {}: {}", f->topic, r.error().detail);
      }
      answer();
    }));
  }
  if (f->next < f->subscribers.size()) {
    mailbox_->post([f](PushWorker& w) { w.fanOut(f); });
    return;
  }
  answer();
}

}  // namespace ugate::webpush
