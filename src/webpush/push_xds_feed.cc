// Delivery over xDS (push_xds_feed.h): G posts a deliver-xds subscription's messages into the
// MessageBox; N takes them from the box's inbox into its own store and acknowledges them at G.
#include "webpush/push_xds_feed.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>

#include <spdlog/spdlog.h>

#include <ugate/message_box.h>
#include <ugate/tls_provider.h>

#include "webpush/push_api.h"
#include "webpush/push_relay.h"
#include "webpush/push_service.h"

namespace ugate::webpush {

namespace {

bool base32Char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'); }

// kTtl0BoxSeconds: a TTL-0 message waits in the box as long as in the store (its grace period).
constexpr uint32_t kTtl0BoxSeconds = 30;
// kRepostBatch: messages of one subscription reposted at startup (the box holds 256 per mailbox).
constexpr size_t kRepostBatch = 256;

}  // namespace

std::optional<std::string> xdsRecipient(const Subscription& s) {
  if (!s.topic.starts_with(kXdsTopicPrefix)) return std::nullopt;
  return s.topic.substr(kXdsTopicPrefix.size());
}

std::optional<std::string> callerNodeId(const std::vector<std::string>& peer) {
  for (const std::string& id : peer) {
    if (id.size() == 52 && std::all_of(id.begin(), id.end(), base32Char)) return id;
  }
  return std::nullopt;
}

std::string envelopeSuffix(std::string_view sid, std::string_view mid) {
  std::string out(".");
  out += sid;
  out += '.';
  out += mid;
  return out;
}

std::string envelopeId(int64_t seq, std::string_view sid, std::string_view mid) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(seq));
  return hex + envelopeSuffix(sid, mid);
}

std::optional<std::pair<std::string, std::string>> splitEnvelopeId(std::string_view id) {
  constexpr size_t kSeq = 16;
  if (id.size() <= kSeq + 1 || id[kSeq] != '.') return std::nullopt;
  if (!std::all_of(id.begin(), id.begin() + kSeq, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  id.remove_prefix(kSeq + 1);
  const size_t dot = id.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string_view sid = id.substr(0, dot), mid = id.substr(dot + 1);
  if (!isId(sid) || !isId(mid)) return std::nullopt;
  return std::make_pair(std::string(sid), std::string(mid));
}

std::optional<int64_t> envelopeSeq(std::string_view id) {
  if (!splitEnvelopeId(id)) return std::nullopt;
  return static_cast<int64_t>(std::stoull(std::string(id.substr(0, 16)), nullptr, 16));
}

BoxedMessage boxedFor(const std::string& recipient, const StoredMessage& m) {
  BoxedMessage b;
  b.recipient = recipient;
  b.id = envelopeId(m.seq, m.subscription, m.id);
  b.ciphertext = m.body;
  const int64_t leftMs = m.expiresMs - m.receivedMs;
  b.ttlSeconds = m.ttlSeconds > 0 ? static_cast<uint32_t>(std::clamp<int64_t>(leftMs / 1000, 1, UINT32_MAX))
                                  : kTtl0BoxSeconds;
  b.urgency = std::string(urgencyName(m.urgency));
  b.createdUnixMs = m.receivedMs;
  return b;
}

std::optional<StoredMessage> storedFromEnvelope(const BoxedMessage& b, int64_t nowMs) {
  auto ids = splitEnvelopeId(b.id);
  if (!ids) return std::nullopt;
  const int64_t expires = b.createdUnixMs + int64_t{b.ttlSeconds} * 1000;
  if (expires <= nowMs) return std::nullopt;
  StoredMessage m;
  m.subscription = std::move(ids->first);
  m.id = std::move(ids->second);
  m.urgency = parseUrgency(b.urgency.empty() ? "normal" : b.urgency).value_or(Urgency::Normal);
  m.ttlSeconds = (expires - nowMs + 999) / 1000;
  m.receivedMs = nowMs;
  m.expiresMs = expires;
  m.encoding = "aes128gcm";
  m.body = b.ciphertext;
  return m;
}

// ---- PushWorker: G's side, then N's ------------------------------------------------------------------------

void PushWorker::subscribeXds(Exchange& ex, PushStore& st, const SubscribeRequest& req) {
  // G: the caller's node ID (its client certificate on this push listener) is the recipient. (A
  // node with webpush.gateway makes it at its gateway instead: subscribeAtGateway forwards it, with
  // the node's certificate, and keeps the local copy marked kXdsLocalTopic.)
  auto node = callerNodeId(ex.request().peer);
  if (!node) {
    return refuse(ex, {403, "deliver_xds_needs_identity",
                       "\"deliver\": \"xds\" needs a mesh identity: a client certificate carrying a node ID "
                       "(a push listener with \"tls\": {\"requireClientCert\": true})"});
  }
  // The recipient: the caller's node, or the topic mailbox it names (its readers share the key).
  const std::string to = req.mailbox.empty() ? *node : req.mailbox;
  Subscription s;
  s.id = newId();
  s.token = newId();
  s.appServerKey.assign(req.applicationServerKey.begin(), req.applicationServerKey.end());
  s.topic = std::string(kXdsTopicPrefix) + to;
  s.createdMs = s.usedMs = wallMs();
  const std::string sid = s.id, token = s.token, endpoint = origin(ex) + "/push/" + s.token;
  st.addSubscription(std::move(s), back<void>([this, id = ex.id(), sid, token, endpoint, node = *node, to](Result<void> r) {
    if (!r) return storeFailed(id, r.error(), "add subscription");
    counters().subscriptionsCreated.fetch_add(1, std::memory_order_relaxed);
    if (to != node) {
      spdlog::info("webpush: subscription {} by node {}: its messages go out to xDS mailbox {}", sid, node, to);
    } else {
      spdlog::info("webpush: subscription {} for node {}: its messages go out as xDS resources", sid, node);
    }
    subscribed(id, sid, endpoint, "/push/" + token);
  }));
}

void PushWorker::subscribeMailbox(Exchange& ex, PushStore& st, const SubscribeRequest& req) {
  // N: a local subscription filled from a topic mailbox this node's ADS client reads.
  const std::string_view topic = std::string_view(req.mailbox).substr(req.mailbox.find(':') + 1);
  if (!messageBox().readsTopic(topic)) {
    return refuse(ex, {400, "mailbox_not_read",
                       "this node does not read " + req.mailbox + ": it must be in xds.client.messages.topics "
                       "(and \"mailbox\" without \"deliver\": \"xds\" binds a local subscription to it)"});
  }
  Subscription s;
  s.id = newId();
  s.token = newId();
  s.appServerKey.assign(req.applicationServerKey.begin(), req.applicationServerKey.end());
  s.topic = xdsReadMarker(req.mailbox);
  s.createdMs = s.usedMs = wallMs();
  const std::string sid = s.id, token = s.token, endpoint = origin(ex) + "/push/" + s.token;
  st.addSubscription(std::move(s), back<void>([this, id = ex.id(), sid, token, endpoint, mb = req.mailbox](Result<void> r) {
    if (!r) return storeFailed(id, r.error(), "add subscription");
    counters().subscriptionsCreated.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("webpush: subscription {} is filled from xDS mailbox {}", sid, mb);
    subscribed(id, sid, endpoint, "/push/" + token);
  }));
}

void PushWorker::postToXds(const std::string& to, StoredMessage m, int64_t seq) {
  m.seq = seq;
  counters().xdsPosted.fetch_add(1, std::memory_order_relaxed);
  messageBox().post(boxedFor(to, m));
}

void PushWorker::xdsGone(const std::string& sid, const std::string& mid) {
  // "<seq>.<sid>.<mid>": one message ends with ".<sid>.<mid>"; a subscription's contain ".<sid>.".
  const std::string key = mid.empty() ? "." + sid + "." : envelopeSuffix(sid, mid);
  messageBox().removeIf([&](const BoxedMessage& m) {
    return mid.empty() ? m.id.find(key) == 16 : m.id.ends_with(key);
  });
}

void PushWorker::repostXds() {
  PushStore* st = shared_.store();
  if (st == nullptr) return;
  // At startup the deliver-xds subscriptions (one query for their "xds:" markers) have their pending
  // messages posted into the box again (the box lives in memory, the store on disk).
  st->subscriptionIds(back<std::vector<std::string>>([this](Result<std::vector<std::string>> ids) {
    if (!ids) return spdlog::error("webpush: store: list subscriptions: {}", ids.error().detail);
    for (const std::string& sid : *ids) {
      PushStore* s = shared_.store();
      s->subscriptionById(sid, back<std::optional<Subscription>>([this, sid](Result<std::optional<Subscription>> sub) {
        if (!sub || !*sub) return;
        auto to = xdsRecipient(**sub);
        if (!to) return;
        shared_.store()->pending(sid, 0, wallMs(), Urgency::VeryLow, kRepostBatch,
                                 back<std::vector<StoredMessage>>([this, to = *to](Result<std::vector<StoredMessage>> r) {
                                   if (!r) return spdlog::error("webpush: store: pending messages: {}", r.error().detail);
                                   repost(to, *r);
                                 }));
      }));
    }
  }), std::string(kXdsTopicPrefix), /*topicPrefix=*/true);
}

void PushWorker::repost(const std::string& to, const std::vector<StoredMessage>& msgs) {
  for (const StoredMessage& m : msgs) postToXds(to, m, m.seq);
  if (!msgs.empty()) spdlog::info("webpush: {} stored message(s) for node {} posted for xDS again", msgs.size(), to);
}

void PushWorker::takeFromXds(std::vector<BoxedMessage> msgs) {
  PushStore* st = shared_.store();
  const std::string self = w_.tls() ? w_.tls()->nodeId() : std::string();
  for (BoxedMessage& b : msgs) {
    if (st != nullptr && isTopicMailbox(b.recipient)) {
      takeFromTopic(std::move(b));
      continue;
    }
    auto m = st && b.recipient == self ? storedFromEnvelope(b, wallMs()) : std::nullopt;
    if (!m) {
      counters().reject("xds_bad_envelope");
      if (w_.logBudget()) {
        spdlog::warn("webpush: xDS message {} for {}: {}", b.id.substr(0, 80), b.recipient.substr(0, 64),
                     st == nullptr ? "no store open" : b.recipient != self ? "not this node's mailbox"
                                                                          : "not <seq>.<sid>.<mid>, or expired");
      }
      continue;
    }
    // Only into a local copy made through this node (subscribeXds): anything else is left at the
    // gateway, unacknowledged.
    const std::string sid = m->subscription;
    st->subscriptionById(sid, back<std::optional<Subscription>>([this, m = std::move(*m)](
                                                                   Result<std::optional<Subscription>> sub) mutable {
      if (!sub || !*sub || (*sub)->topic != kXdsLocalTopic) {
        counters().reject("xds_unknown_subscription");
        if (w_.logBudget()) {
          spdlog::warn("webpush: xDS message {} names subscription {}, which this node did not make for xDS delivery",
                       m.id, m.subscription);
        }
        return;
      }
      const std::string sid2 = m.subscription, mid = m.id;
      shared_.store()->put(std::move(m), back<int64_t>([this, sid2, mid](Result<int64_t> r) {
        if (r || r.error().code == Errc::AlreadyExists) counters().xdsTaken.fetch_add(1, std::memory_order_relaxed);
        // The relay's rules: counted, subscribers woken, acknowledged at the gateway once committed
        // (again when it was here already), the subscription dropped when it is gone here.
        if (relay_) return relay_->stored(sid2, mid, r);
        if (r) shared_.notify(sid2, "", false);
        spdlog::warn("webpush: xDS message {} stored, but no webpush.gateway to acknowledge it at", mid);
      }));
    }));
  }
}

void PushWorker::takeFromTopic(BoxedMessage b) {
  // A topic mailbox's envelope: a copy for each local subscription bound to it, each above the
  // gateway sequence that subscription took last (nothing twice); never acknowledged at G.
  auto m = storedFromEnvelope(b, wallMs());
  auto seq = envelopeSeq(b.id);
  if (!m || !seq || *seq <= 0) {  // (a sequence of 0 or over 2^63 is not one the gateway's store made)
    counters().reject("xds_bad_envelope");
    if (w_.logBudget()) spdlog::warn("webpush: xDS message {} for {}: not <seq>.<sid>.<mid>, or expired", b.id.substr(0, 80), b.recipient);
    return;
  }
  m->upstreamSeq = *seq;
  shared_.store()->subscriptionIds(
      back<std::vector<std::string>>([this, m = std::move(*m), mb = b.recipient](Result<std::vector<std::string>> ids) {
        if (!ids) return spdlog::error("webpush: store: subscriptions of {}: {}", mb, ids.error().detail);
        if (ids->empty()) {
          counters().reject("xds_topic_unbound");
          if (w_.logBudget()) spdlog::warn("webpush: xDS message {} of {}: no local subscription is bound to it", m.id, mb);
          return;
        }
        for (const std::string& sid : *ids) {
          StoredMessage copy = m;
          copy.subscription = sid;
          copy.id = newMessageId(wallMs());
          const std::string mid = copy.id;
          shared_.store()->put(std::move(copy), back<int64_t>([this, sid, mid, mb](Result<int64_t> r) {
            if (!r && r.error().code == Errc::AlreadyExists) return;  // taken before (the mailbox came again)
            if (!r) return spdlog::error("webpush: store: put {} from {} for {}: {}", mid, mb, sid, r.error().detail);
            counters().xdsTaken.fetch_add(1, std::memory_order_relaxed);
            shared_.notify(sid, "", false);
          }));
        }
      }),
      xdsReadMarker(b.recipient));
}

}  // namespace ugate::webpush
