// PushWorker (src/webpush/push_service.h): the push service's request handling without sockets. A
// FakeExchange records what the worker answers; the worker runs on a FakeWorkerContext's reactor
// with a real store in a temporary directory, so every answer comes through the store thread and
// the post back to the reactor, as in ugated.
#include "webpush/push_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ugate/config.h>

#include "auth/crypto.h"
#include "auth/encoding.h"
#include "webpush/message_crypto.h"
#include "webpush/push_relay_wire.h"
#include "webpush/vapid.h"
#include "webpush/webpush_config.h"
#include "test_common/fake_worker_context.h"
#include "test_common/test_util.h"

namespace ugate::webpush {
namespace {

/** FakeExchange: the answers the worker gives, recorded. */
class FakeExchange final : public Exchange {
 public:
  FakeExchange(PushWorker& w, RequestInfo r) : Exchange(w, std::move(r)) {}
  void respond(int s, HeaderList h, std::string b) override {
    ++responses;
    status = s;
    headers = std::move(h);
    body = std::move(b);
  }
  void startEvents() override { status = 200, streaming = true; }
  void sendEvents(std::string_view bytes) override { events.append(bytes); }
  void endEvents() override { ended = true; }
  std::string header(std::string_view name) const { return std::string(headerValue(headers, name).value_or("")); }

  int responses{0};
  int status{0};
  HeaderList headers;
  std::string body;
  bool streaming{false};
  bool ended{false};
  std::string events;
};

RequestInfo request(std::string method, std::string target, HeaderList headers = {}, std::string body = {}) {
  RequestInfo r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.authority = "push.test:8443";
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.source = "127.0.0.1";
  return r;
}

// config: the defaults, but at most 2 messages in flight per delivery stream.
std::shared_ptr<Config> config() {
  auto c = std::make_shared<Config>();
  auto w = std::make_shared<WebpushConfig>();
  w->maxInFlight = 2;
  c->modules["webpush"] = w;
  return c;
}

/** WorkerFixture: a PushWorker on a fake worker with config c and a real store. */
class WorkerFixture : public ::testing::Test {
 protected:
  explicit WorkerFixture(std::shared_ptr<Config> c) : ctx_{std::move(c)} {}
  void SetUp() override {
    ASSERT_TRUE(shared_.ensureStore(dir_.path() + "/webpush.db", SyncMode::Normal));
    ctx_.run([&] { worker_ = std::make_unique<PushWorker>(ctx_, shared_); });
  }
  void TearDown() override {
    ctx_.run([&] {
      exchanges_.clear();
      worker_.reset();
    });
  }
  /** send hands a request to the worker; the exchange lives until the test ends. */
  FakeExchange* send(RequestInfo r) {
    FakeExchange* e = nullptr;
    ctx_.run([&] {
      exchanges_.push_back(std::make_unique<FakeExchange>(*worker_, std::move(r)));
      e = exchanges_.back().get();
      worker_->handle(*e);
    });
    return e;
  }
  /** answered waits for the exchange's answer (or its event stream). */
  bool answered(FakeExchange* e) {
    return ctx_.waitFor([e] { return e->responses > 0 || e->streaming; });
  }

  test::TempDir dir_;
  PushShared shared_;
  test::FakeWorkerContext ctx_;
  std::unique_ptr<PushWorker> worker_;
  std::vector<std::unique_ptr<FakeExchange>> exchanges_;
};

class PushServiceTest : public WorkerFixture {
 protected:
  PushServiceTest() : WorkerFixture(config()) {}
  FakeExchange* subscribe(std::string& token, std::string& sid) {
    FakeExchange* e = send(request("POST", "/subscribe"));
    EXPECT_TRUE(answered(e));
    std::string link = e->header("link");
    token = link.substr(7, link.find('>') - 7);
    sid = e->header("location").substr(3);
    return e;
  }
  std::string read(FakeExchange* e, std::string FakeExchange::*field) {
    std::string out;
    ctx_.run([&] { out = e->*field; });
    return out;
  }
};

TEST_F(PushServiceTest, SubscribeAnswers201WithTheReceiveAndPushResources) {
  std::string token, sid;
  FakeExchange* e = subscribe(token, sid);
  EXPECT_EQ(e->status, 201);
  EXPECT_GE(sid.size(), 22u);
  EXPECT_GE(token.size(), 22u);
  EXPECT_EQ(e->header("link"), "</push/" + token + ">; rel=\"urn:ietf:params:push\"");
  EXPECT_EQ(e->body, "{\"endpoint\":\"https://push.test:8443/push/" + token + "\",\"receive\":\"/s/" + sid + "\"}\n");
  EXPECT_EQ(shared_.counters().subscriptionsCreated.load(), 1u);
}

TEST_F(PushServiceTest, PushIsAnswered201OnlyAfterTheStoreAndDeliveredOnTheStream) {
  std::string token, sid;
  subscribe(token, sid);
  FakeExchange* rx = send(request("GET", "/s/" + sid, {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(rx));
  EXPECT_EQ(rx->status, 200);
  FakeExchange* p = send(request("POST", "/push/" + token,
                                 {{"ttl", "99999999"}, {"urgency", "high"}, {"topic", "t1"}, {"content-encoding", "aes128gcm"}},
                                 "ciphertext"));
  ASSERT_TRUE(answered(p));
  EXPECT_EQ(p->status, 201);
  EXPECT_EQ(p->header("ttl"), "2592000");  // clamped to the default maxTtl
  const std::string mid = p->header("location").substr(3);
  ASSERT_TRUE(ctx_.waitFor([&] { return rx->events.find("id: " + mid) != std::string::npos; }));
  const std::string ev = read(rx, &FakeExchange::events);
  EXPECT_NE(ev.find("\"topic\":\"t1\",\"urgency\":\"high\""), std::string::npos);
  EXPECT_NE(ev.find("\"body\":\"" + auth::base64UrlEncode({reinterpret_cast<const uint8_t*>("ciphertext"), 10}) + "\""),
            std::string::npos);
  // The acknowledgement deletes it: a second one finds nothing.
  FakeExchange* ack = send(request("DELETE", "/m/" + mid));
  ASSERT_TRUE(answered(ack));
  EXPECT_EQ(ack->status, 204);
  EXPECT_TRUE(ctx_.waitFor([&] { return shared_.counters().acked.load() == 1; }));
  FakeExchange* again = send(request("DELETE", "/m/" + mid));
  ASSERT_TRUE(answered(again));
  EXPECT_EQ(again->status, 404);
}

TEST_F(PushServiceTest, RefusalsCarryTheirStatusAndAreCountedByReason) {
  std::string token, sid;
  subscribe(token, sid);
  struct Case {
    RequestInfo req;
    int status;
    const char* reason;
  };
  std::vector<Case> cases = {
      {request("POST", "/push/" + token), 400, "missing_ttl"},
      {request("POST", "/push/" + token, {{"ttl", "1"}, {"topic", "no spaces"}}), 400, "bad_topic"},
      {request("POST", "/push/" + token, {{"ttl", "1"}, {"content-encoding", "aes128gcm"}}, std::string(4097, 'x')), 413,
       "too_large"},
      {request("POST", "/push/AAAAAAAAAAAAAAAAAAAAAAAA", {{"ttl", "1"}}), 404, "unknown_subscription"},
      {request("GET", "/push/" + token), 405, "method_not_allowed"},
      {request("GET", "/s/" + sid), 406, "not_event_stream"},
      {request("POST", "/subscribe", {}, "{\"applicationServerKey\": \"AAAA\"}"), 400, "bad_application_server_key"},
  };
  for (auto& c : cases) {
    FakeExchange* e = send(c.req);
    ASSERT_TRUE(answered(e)) << c.reason;
    EXPECT_EQ(e->status, c.status) << c.reason;
    EXPECT_EQ(e->body.rfind(c.reason, 0), 0u) << e->body;
    EXPECT_EQ(shared_.counters().rejected()[c.reason], 1u) << c.reason;
  }
  EXPECT_EQ(exchanges_[5]->header("allow"), "POST");  // [0] is the subscribe
}

TEST_F(PushServiceTest, AnUnsubscribedTokenIsGoneAndItsStreamEnds) {
  std::string token, sid;
  subscribe(token, sid);
  FakeExchange* rx = send(request("GET", "/s/" + sid, {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(rx));
  FakeExchange* del = send(request("DELETE", "/s/" + sid));
  ASSERT_TRUE(answered(del));
  EXPECT_EQ(del->status, 204);
  EXPECT_TRUE(ctx_.waitFor([&] { return rx->ended; }));
  FakeExchange* p = send(request("POST", "/push/" + token, {{"ttl", "60"}}));
  ASSERT_TRUE(answered(p));
  EXPECT_EQ(p->status, 410);
}

// RFC 8030 §5.1: the subscribe answer links the receipt subscribe resource; a receipt subscription
// made there names a push's Push-Receipt; the subscriber's acknowledgement stores a receipt that the
// receipt stream delivers once, which the application server then deletes. Prefer: respond-async
// gets 202 once the message is committed.
TEST_F(PushServiceTest, ReceiptsReachTheReceiptStreamOnceAfterTheAcknowledgement) {
  std::string token, sid;
  FakeExchange* s = subscribe(token, sid);
  std::vector<std::string> links;
  for (const auto& [n, v] : s->headers) {
    if (n == "link") links.push_back(v);
  }
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[1], "</receipts/" + token + ">; rel=\"urn:ietf:params:push:receipt\"");
  FakeExchange* rs = send(request("POST", "/receipts/" + token));
  ASSERT_TRUE(answered(rs));
  ASSERT_EQ(rs->status, 201);
  const std::string rpath = rs->header("location");
  ASSERT_EQ(rpath.rfind("/r/", 0), 0u);
  EXPECT_GE(rpath.size() - 3, 22u);  // ≥ 128 random bits
  FakeExchange* rx = send(request("GET", rpath, {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(rx));
  EXPECT_EQ(rx->status, 200);

  // A Push-Receipt that is not a receipt subscription of this push subscription: 400.
  std::string token2, sid2;
  subscribe(token2, sid2);
  FakeExchange* other = send(request("POST", "/push/" + token2, {{"ttl", "60"}, {"push-receipt", rpath}}));
  ASSERT_TRUE(answered(other));
  EXPECT_EQ(other->status, 400);
  EXPECT_EQ(other->body.rfind("unknown_receipt_subscription", 0), 0u);
  FakeExchange* bad = send(request("POST", "/push/" + token, {{"ttl", "60"}, {"push-receipt", "https://elsewhere/r/x"}}));
  ASSERT_TRUE(answered(bad));
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->body.rfind("bad_push_receipt", 0), 0u);

  FakeExchange* p = send(request("POST", "/push/" + token,
                                 {{"ttl", "60"}, {"push-receipt", "https://push.test:8443" + rpath}, {"prefer", "respond-async"}}));
  ASSERT_TRUE(answered(p));
  EXPECT_EQ(p->status, 202);
  EXPECT_EQ(p->header("preference-applied"), "respond-async");
  const std::string mid = p->header("location").substr(3);
  FakeExchange* plain = send(request("POST", "/push/" + token, {{"ttl", "60"}}));
  ASSERT_TRUE(answered(plain));
  EXPECT_EQ(plain->status, 201);
  EXPECT_EQ(plain->header("preference-applied"), "");

  FakeExchange* ua = send(request("GET", "/s/" + sid, {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(ua));
  ASSERT_TRUE(ctx_.waitFor([&] { return ua->events.find("id: " + mid) != std::string::npos; }));
  FakeExchange* ack = send(request("DELETE", "/m/" + mid));
  ASSERT_TRUE(answered(ack));
  EXPECT_EQ(ack->status, 204);
  ASSERT_TRUE(ctx_.waitFor([&] { return rx->events.find("event: receipt") != std::string::npos; }));
  const std::string ev = read(rx, &FakeExchange::events);
  EXPECT_NE(ev.find("\"message\":\"/m/" + mid + "\""), std::string::npos) << ev;
  const size_t at = ev.find("\"ack\":\"") + 7;
  const std::string ackPath = ev.substr(at, ev.find('"', at) - at);
  EXPECT_EQ(ackPath.rfind(rpath + "/", 0), 0u);
  EXPECT_EQ(shared_.counters().receiptsStored.load(), 1u);
  EXPECT_EQ(shared_.counters().receiptsRequested.load(), 1u);

  // The application server deletes it; a new stream has nothing to send.
  FakeExchange* rack = send(request("DELETE", ackPath));
  ASSERT_TRUE(answered(rack));
  EXPECT_EQ(rack->status, 204);
  FakeExchange* rack2 = send(request("DELETE", ackPath));
  ASSERT_TRUE(answered(rack2));
  EXPECT_EQ(rack2->status, 404);
  FakeExchange* del = send(request("DELETE", rpath));
  ASSERT_TRUE(answered(del));
  EXPECT_EQ(del->status, 204);
  EXPECT_TRUE(ctx_.waitFor([&] { return rx->ended; }));
  FakeExchange* gone = send(request("GET", rpath, {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(gone));
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(ev.find("event: receipt"), ev.rfind("event: receipt"));  // exactly one

  // Removing the push subscription removes its receipt subscriptions and ends their streams.
  FakeExchange* rs2 = send(request("POST", "/receipts/" + token));
  ASSERT_TRUE(answered(rs2));
  ASSERT_EQ(rs2->status, 201);
  FakeExchange* rx2 = send(request("GET", rs2->header("location"), {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(rx2));
  EXPECT_EQ(rx2->status, 200);
  FakeExchange* unsub = send(request("DELETE", "/s/" + sid));
  ASSERT_TRUE(answered(unsub));
  EXPECT_EQ(unsub->status, 204);
  EXPECT_TRUE(ctx_.waitFor([&] { return rx2->ended; }));
  FakeExchange* gone2 = send(request("GET", rs2->header("location"), {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(gone2));
  EXPECT_EQ(gone2->status, 404);
}

// maxInFlight 2, both slots taken, then a message replaces the in-flight one of its topic: the
// replaced one can never be acknowledged, so its slot must not stay taken.
TEST_F(PushServiceTest, AMessageReplacedByItsTopicFreesItsInFlightSlot) {
  std::string token, sid;
  subscribe(token, sid);
  FakeExchange* rx = send(request("GET", "/s/" + sid, {{"accept", "text/event-stream"}}));
  ASSERT_TRUE(answered(rx));
  auto push = [&](HeaderList h) {
    FakeExchange* p = send(request("POST", "/push/" + token, std::move(h)));
    EXPECT_TRUE(answered(p));
    EXPECT_EQ(p->status, 201);
    return p->header("location").substr(3);
  };
  const std::string a = push({{"ttl", "600"}});
  const std::string t1 = push({{"ttl", "600"}, {"topic", "news"}});
  ASSERT_TRUE(ctx_.waitFor([&] { return rx->events.find("id: " + t1) != std::string::npos; }));
  const std::string t2 = push({{"ttl", "600"}, {"topic", "news"}});
  EXPECT_TRUE(ctx_.waitFor([&] { return rx->events.find("id: " + t2) != std::string::npos; }));
  (void)a;
}

TEST_F(PushServiceTest, AClientThatLeftBeforeItsAnswerGetsNoneAndTheWorkerGoesOn) {
  std::string token, sid;
  subscribe(token, sid);
  // The connection goes at once: the store's completions find no exchange and stop there (a message
  // whose put was already queued is still stored; a 201 was promised to nobody).
  ctx_.run([&] {
    exchanges_.push_back(std::make_unique<FakeExchange>(*worker_, request("POST", "/push/" + token, {{"ttl", "60"}})));
    worker_->handle(*exchanges_.back());
    exchanges_.pop_back();
  });
  FakeExchange* p = send(request("POST", "/push/" + token, {{"ttl", "60"}}));
  ASSERT_TRUE(answered(p));
  EXPECT_EQ(p->status, 201);
  FakeExchange* rx = send(request("GET", "/s/" + sid, {{"accept", "text/event-stream"}}));
  const std::string mid = p->header("location").substr(3);
  EXPECT_TRUE(ctx_.waitFor([&] { return rx->events.find("id: " + mid) != std::string::npos; }));
}

}  // namespace
}  // namespace ugate::webpush

namespace ugate::webpush {
namespace {

// Pub/sub (push_topics.cc): a node `gw` with topic `alerts` and one listed publisher key.
class PushTopicsTest : public WorkerFixture {
 protected:
  PushTopicsTest() : WorkerFixture(topicConfig(std::string(publisher_.publicKey().begin(), publisher_.publicKey().end()))) {}
  static std::shared_ptr<Config> topicConfig(const std::string& publisher) {
    auto c = std::make_shared<Config>();
    c->node.name = "gw";
    auto w = std::make_shared<WebpushConfig>();
    TopicConfig t;
    t.name = "alerts";
    t.publishers = {publisher};
    t.identities = {"NODEA", "spiffe://mesh.test/ns/default/sa/pub"};
    t.rate = 1000;
    t.burst = 1000;
    w->topics = {t};
    c->modules["webpush"] = w;
    return c;
  }
  /** call: send and wait for the answer. */
  FakeExchange* call(RequestInfo r) {
    FakeExchange* e = send(std::move(r));
    EXPECT_TRUE(answered(e));
    return e;
  }
  std::string authorization(const auth::PrivateKey& k) {
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto token = signVapidToken(k, {.aud = "https://push.test:8443", .exp = now + 3600, .sub = "mailto:t@example.net"});
    return vapidAuthorization(*token, k.publicKey());
  }

  static inline auth::PrivateKey publisher_ = *auth::PrivateKey::generate();
};

TEST_F(PushTopicsTest, EachSubscriberGetsItsOwnCiphertextOfEveryPublishInOrder) {
  struct Sub {
    PushResult<SubscriptionKeys> keys = generateSubscriptionKeys();
    std::string sid;
    FakeExchange* rx{nullptr};
  };
  std::vector<Sub> subs(3);
  for (auto& s : subs) {
    ASSERT_TRUE(s.keys);
    const std::string body = "{\"topic\":\"gw/alerts\",\"keys\":{\"p256dh\":\"" + auth::base64UrlEncode(s.keys->key.publicKey()) +
                             "\",\"auth\":\"" + auth::base64UrlEncode(s.keys->auth) + "\"}}";
    FakeExchange* e = call(request("POST", "/subscribe", {}, body));
    ASSERT_EQ(e->status, 201) << e->body;
    s.sid = e->header("location").substr(3);
    s.rx = call(request("GET", "/s/" + s.sid, {{"accept", "text/event-stream"}}));
  }
  for (const char* text : {"one", "two"}) {
    FakeExchange* p = call(request("POST", "/topic/gw/alerts", {{"ttl", "60"}, {"authorization", authorization(publisher_)}}, text));
    ASSERT_EQ(p->status, 201) << p->body;
    EXPECT_EQ(p->body, "{\"subscribers\":3,\"stored\":3,\"skipped\":0}\n");
  }
  std::vector<std::string> bodies;
  for (auto& s : subs) {
    ASSERT_TRUE(ctx_.waitFor([&] { return s.rx->events.find("id: ", s.rx->events.find("id: ") + 1) != std::string::npos; }));
    std::string ev;
    ctx_.run([&] { ev = s.rx->events; });
    SseReader r;
    std::vector<std::string> events;
    ASSERT_TRUE(r.feed(ev, events));
    ASSERT_EQ(events.size(), 2u);
    std::vector<std::string> plain;
    for (const auto& data : events) {
      auto m = parseRelayedEvent(data, 0, 4096);
      ASSERT_TRUE(m);
      bodies.push_back(m->body);
      auto p = decryptPushMessage({reinterpret_cast<const uint8_t*>(m->body.data()), m->body.size()}, s.keys->key, s.keys->auth);
      ASSERT_TRUE(p);
      plain.emplace_back(p->begin(), p->end());
    }
    EXPECT_EQ(plain, (std::vector<std::string>{"one", "two"}));
  }
  std::sort(bodies.begin(), bodies.end());
  EXPECT_EQ(std::unique(bodies.begin(), bodies.end()), bodies.end());  // 6 different ciphertexts
}

TEST_F(PushTopicsTest, AListedMeshIdentityPublishesWithoutVapid) {
  auto withPeer = [](std::vector<std::string> peer) {
    RequestInfo r = request("POST", "/topic/gw/alerts", {{"ttl", "60"}}, "x");
    r.peer = std::move(peer);
    return r;
  };
  EXPECT_EQ(call(withPeer({"nodea"}))->status, 201);  // node IDs compare case-insensitively
  EXPECT_EQ(call(withPeer({"NODEB", "spiffe://mesh.test/ns/default/sa/pub"}))->status, 201);
  EXPECT_EQ(call(withPeer({"NODEB", "spiffe://mesh.test/ns/default/sa/other"}))->status, 401);
}

TEST_F(PushTopicsTest, RefusesWhoIsNotAListedPublisherAndUnknownTopics) {
  auto other = *auth::PrivateKey::generate();
  EXPECT_EQ(call(request("POST", "/topic/gw/alerts", {{"ttl", "60"}}, "x"))->status, 401);
  EXPECT_EQ(call(request("POST", "/topic/gw/alerts", {{"ttl", "60"}, {"authorization", authorization(other)}}, "x"))->status, 403);
  EXPECT_EQ(call(request("POST", "/topic/gw/other", {{"ttl", "60"}, {"authorization", authorization(publisher_)}}, "x"))->status, 404);
  EXPECT_EQ(call(request("POST", "/topic/gx/alerts", {{"ttl", "60"}, {"authorization", authorization(publisher_)}}, "x"))->status, 404);
  EXPECT_EQ(call(request("POST", "/topic/gw/alerts",
                         {{"ttl", "60"}, {"content-encoding", "aes128gcm"}, {"authorization", authorization(publisher_)}}, "x"))
                ->status,
            400);
  EXPECT_EQ(call(request("POST", "/topic/gw/alerts", {{"authorization", authorization(publisher_)}}, "x"))->status, 400);
  FakeExchange* p = call(request("POST", "/topic/gw/alerts", {{"ttl", "60"}, {"authorization", authorization(publisher_)}}, "x"));
  EXPECT_EQ(p->status, 201);
  EXPECT_EQ(p->body, "{\"subscribers\":0,\"stored\":0,\"skipped\":0}\n");
}

}  // namespace
}  // namespace ugate::webpush
