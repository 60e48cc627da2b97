// The push service's request checks (src/webpush/push_api.h), sans I/O: which resource a request
// names (404/405), the push headers (TTL mandatory and clamped, Urgency, Topic, encoding, 413),
// the subscribe body (restricted subscriptions), the receive request (Accept, urgency filter,
// Last-Event-ID), the SSE event bytes, capabilities and the token bucket behind 429.
#include "webpush/push_api.h"

#include <gtest/gtest.h>

#include <set>

namespace ugate::webpush {
namespace {

constexpr const char* kRfcKey =
    "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";

template <typename T>
Refusal refusal(const std::variant<T, Refusal>& v) {
  EXPECT_TRUE(std::holds_alternative<Refusal>(v));
  return std::holds_alternative<Refusal>(v) ? std::get<Refusal>(v) : Refusal{};
}

TEST(PushApiTest, MatchesTheResourcesOfTheContract) {
  auto t = std::get<ApiTarget>(matchTarget("POST", "/subscribe"));
  EXPECT_EQ(t.resource, Resource::Subscribe);
  t = std::get<ApiTarget>(matchTarget("POST", "/push/abc_-9"));
  EXPECT_EQ(t.resource, Resource::Push);
  EXPECT_EQ(t.id, "abc_-9");
  t = std::get<ApiTarget>(matchTarget("GET", "/s/sid?urgency=high"));
  EXPECT_EQ(t.resource, Resource::Receive);
  EXPECT_EQ(t.id, "sid");
  EXPECT_EQ(t.query, "urgency=high");
  EXPECT_EQ(std::get<ApiTarget>(matchTarget("DELETE", "/s/sid")).resource, Resource::Unsubscribe);
  EXPECT_EQ(std::get<ApiTarget>(matchTarget("DELETE", "/m/mid")).resource, Resource::DeleteMessage);
}

TEST(PushApiTest, TopicsAreNodeSlashName) {
  auto t = std::get<ApiTarget>(matchTarget("POST", "/topic/gw1/alerts"));
  EXPECT_EQ(t.resource, Resource::Publish);
  EXPECT_EQ(t.id, "gw1/alerts");
  EXPECT_EQ(refusal(matchTarget("GET", "/topic/gw1/alerts")).status, 405);
  EXPECT_EQ(refusal(matchTarget("POST", "/topic/alerts")).status, 404);
  EXPECT_EQ(refusal(matchTarget("POST", "/topic/gw1/a/b")).status, 404);
  EXPECT_EQ(refusal(matchTarget("POST", "/topic//alerts")).status, 404);
  EXPECT_EQ(refusal(matchTarget("POST", "/topic/gw1/" + std::string(33, 'a'))).status, 404);
  EXPECT_TRUE(isTopicName("a.b-c_d/" + std::string(32, 'z')));
  EXPECT_FALSE(isTopicName(std::string(64, 'n') + "/x"));
}

TEST(PushApiTest, UnknownPathsAre404AndOtherMethods405WithAllow) {
  EXPECT_EQ(refusal(matchTarget("GET", "/")).status, 404);
  EXPECT_EQ(refusal(matchTarget("POST", "/push/")).status, 404);
  EXPECT_EQ(refusal(matchTarget("POST", "/push/a/b")).status, 404);
  EXPECT_EQ(refusal(matchTarget("POST", "/push/" + std::string(65, 'a'))).status, 404);
  EXPECT_EQ(refusal(matchTarget("GET", "/pushy")).status, 404);
  Refusal r = refusal(matchTarget("GET", "/push/abc"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.detail, "POST");
  EXPECT_EQ(refusal(matchTarget("POST", "/s/abc")).detail, "GET, DELETE");
  EXPECT_EQ(refusal(matchTarget("GET", "/subscribe")).status, 405);
}

TEST(PushApiTest, TtlIsMandatoryAndClampedToMaxTtl) {
  const PushLimits l{3600, 4096};
  EXPECT_EQ(refusal(checkPushHeaders({}, 0, l)).reason, "missing_ttl");
  for (const char* bad : {"", "-1", "1.5", " 7", "abc", "9999999999999999999999"}) {
    EXPECT_EQ(refusal(checkPushHeaders({{"ttl", bad}}, 0, l)).reason, "bad_ttl") << bad;
  }
  auto h = std::get<PushHeaders>(checkPushHeaders({{"ttl", "60"}}, 0, l));
  EXPECT_EQ(h.ttl, 60);
  EXPECT_FALSE(h.clamped);
  EXPECT_EQ(h.urgency, Urgency::Normal);
  h = std::get<PushHeaders>(checkPushHeaders({{"ttl", "86400"}}, 0, l));
  EXPECT_EQ(h.ttl, 3600);
  EXPECT_TRUE(h.clamped);
  EXPECT_EQ(std::get<PushHeaders>(checkPushHeaders({{"ttl", "0"}}, 0, l)).ttl, 0);
}

TEST(PushApiTest, UrgencyTopicAndEncoding) {
  const PushLimits l{3600, 4096};
  auto h = std::get<PushHeaders>(
      checkPushHeaders({{"ttl", "1"}, {"urgency", "Very-Low"}, {"topic", "news_1-x"}, {"content-encoding", "aes128gcm"}}, 10, l));
  EXPECT_EQ(h.urgency, Urgency::VeryLow);
  EXPECT_EQ(h.topic, "news_1-x");
  EXPECT_EQ(h.encoding, "aes128gcm");
  EXPECT_EQ(refusal(checkPushHeaders({{"ttl", "1"}, {"urgency", "urgent"}}, 0, l)).reason, "bad_urgency");
  EXPECT_EQ(refusal(checkPushHeaders({{"ttl", "1"}, {"topic", std::string(33, 'a')}}, 0, l)).reason, "bad_topic");
  EXPECT_EQ(refusal(checkPushHeaders({{"ttl", "1"}, {"topic", "a b"}}, 0, l)).reason, "bad_topic");
  EXPECT_EQ(refusal(checkPushHeaders({{"ttl", "1"}, {"topic", ""}}, 0, l)).reason, "bad_topic");
  EXPECT_TRUE(std::holds_alternative<PushHeaders>(checkPushHeaders({{"ttl", "1"}, {"topic", std::string(32, 'a')}}, 0, l)));
  // A body must be encrypted (RFC 8291); an empty push needs no encoding.
  EXPECT_EQ(refusal(checkPushHeaders({{"ttl", "1"}}, 5, l)).reason, "bad_encoding");
  EXPECT_EQ(refusal(checkPushHeaders({{"ttl", "1"}, {"content-encoding", "gzip"}}, 5, l)).reason, "bad_encoding");
}

TEST(PushApiTest, BodiesUpTo4096AreAcceptedLargerThanMaxBodyAre413) {
  const PushLimits l{3600, 4096};
  const HeaderList h{{"ttl", "1"}, {"content-encoding", "aes128gcm"}};
  EXPECT_TRUE(std::holds_alternative<PushHeaders>(checkPushHeaders(h, 4096, l)));
  Refusal r = refusal(checkPushHeaders(h, 4097, l));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.reason, "too_large");
}

TEST(PushApiTest, SubscribeBodies) {
  EXPECT_TRUE(std::get<SubscribeRequest>(parseSubscribeBody("")).applicationServerKey.empty());
  EXPECT_TRUE(std::get<SubscribeRequest>(parseSubscribeBody("{}")).applicationServerKey.empty());
  auto s = std::get<SubscribeRequest>(parseSubscribeBody(std::string("{\"applicationServerKey\":\"") + kRfcKey + "\"}"));
  EXPECT_EQ(s.applicationServerKey.size(), 65u);
  EXPECT_EQ(refusal(parseSubscribeBody("{")).reason, "bad_json");
  EXPECT_EQ(refusal(parseSubscribeBody("[1]")).reason, "bad_json");
  EXPECT_EQ(refusal(parseSubscribeBody("{\"applicationServerKey\":\"AAAA\"}")).reason, "bad_application_server_key");
  EXPECT_EQ(refusal(parseSubscribeBody("{\"applicationServerKey\":5}")).reason, "bad_application_server_key");
  // 65 bytes that are not a point on P-256.
  const std::string notAPoint = "BA" + std::string(85, 'A');
  EXPECT_EQ(refusal(parseSubscribeBody("{\"applicationServerKey\":\"" + notAPoint + "\"}")).reason,
            "bad_application_server_key");
  EXPECT_EQ(refusal(parseSubscribeBody("{\"topic\":\"news\"}")).reason, "bad_topic");  // no node
  EXPECT_EQ(refusal(parseSubscribeBody("{\"topic\":\"gw/news\"}")).reason, "bad_keys");
  const std::string auth16 = "AAECAwQFBgcICQoLDA0ODw";
  auto topicSub = std::get<SubscribeRequest>(parseSubscribeBody(
      std::string("{\"topic\":\"gw-1.x/news_1\",\"keys\":{\"p256dh\":\"") + kRfcKey + "\",\"auth\":\"" + auth16 + "\"}}"));
  EXPECT_EQ(topicSub.topic, "gw-1.x/news_1");
  EXPECT_EQ(topicSub.p256dh.size(), 65u);
  EXPECT_EQ(topicSub.auth.size(), 16u);
  EXPECT_EQ(refusal(parseSubscribeBody(std::string("{\"topic\":\"gw/news\",\"keys\":{\"p256dh\":\"") + kRfcKey +
                                       "\",\"auth\":\"AAEC\"}}")).reason, "bad_keys");
}

TEST(PushApiTest, ReceiveRequests) {
  EXPECT_EQ(refusal(checkReceiveRequest({}, "")).status, 406);
  EXPECT_EQ(refusal(checkReceiveRequest({{"accept", "application/json"}}, "")).status, 406);
  const HeaderList sse{{"accept", "text/event-stream"}, {"last-event-id", "mid_1"}};
  auto r = std::get<ReceiveRequest>(checkReceiveRequest(sse, "a=b&urgency=high"));
  EXPECT_EQ(r.minUrgency, Urgency::High);
  EXPECT_EQ(r.lastEventId, "mid_1");
  EXPECT_EQ(std::get<ReceiveRequest>(checkReceiveRequest(sse, "")).minUrgency, Urgency::VeryLow);
  EXPECT_EQ(refusal(checkReceiveRequest(sse, "urgency=now")).reason, "bad_urgency");
  // A garbage Last-Event-ID is ignored, not fatal.
  r = std::get<ReceiveRequest>(checkReceiveRequest({{"accept", "*/*"}, {"last-event-id", "a\"b"}}, ""));
  EXPECT_TRUE(r.lastEventId.empty());
}

TEST(PushApiTest, SseEventIsOneEventWithOneJsonDataLine) {
  StoredMessage m;
  m.id = "mid";
  m.topic = "t";
  m.urgency = Urgency::Low;
  m.expiresMs = 61'000;
  m.encoding = "aes128gcm";
  m.body = std::string("\x00\xff\n", 3);
  EXPECT_EQ(sseEvent(m, 1'000),
            "id: mid\nevent: push\ndata: {\"id\":\"mid\",\"topic\":\"t\",\"urgency\":\"low\",\"ttl\":60,"
            "\"encoding\":\"aes128gcm\",\"body\":\"AP8K\"}\n\n");
  EXPECT_EQ(subscribeJson("https://h/push/x", "/s/y"), "{\"endpoint\":\"https://h/push/x\",\"receive\":\"/s/y\"}\n");
}

TEST(PushApiTest, IdsAreFreshCapabilitiesOfAtLeast128Bits) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = newId();
    EXPECT_TRUE(isId(id));
    EXPECT_GE(id.size(), 22u);  // 16 bytes = 22 base64url characters
    EXPECT_TRUE(seen.insert(id).second);
  }
  EXPECT_GE(newId(1).size(), 22u);
}

TEST(PushApiTest, MessageIdsSortByTimeAndKeep144RandomBits) {
  std::set<std::string> seen;
  std::string prev;
  for (int64_t ms = 1'700'000'000'000; ms < 1'700'000'000'000 + 300; ms += 3) {
    for (int i = 0; i < 3; ++i) {
      std::string id = newMessageId(ms);
      EXPECT_TRUE(isId(id));
      EXPECT_EQ(id.size(), 36u);  // 12 hex digits + 18 bytes in base64url
      EXPECT_TRUE(seen.insert(id).second);
      if (i == 0) {
        EXPECT_LT(prev, id);  // a later millisecond sorts after every id of earlier ones
      }
      prev = std::max(prev, id);
    }
  }
  EXPECT_EQ(newMessageId(0x0123456789ab).substr(0, 12), "0123456789ab");
}

TEST(PushApiTest, TokenBucketLimitsAndTellsWhenToRetry) {
  TokenBucket b(1.0, 2.0, 0);
  int64_t retry = 0;
  EXPECT_TRUE(b.take(0, retry));
  EXPECT_TRUE(b.take(0, retry));
  EXPECT_FALSE(b.take(0, retry));
  EXPECT_EQ(retry, 1);
  EXPECT_FALSE(b.full(500));
  EXPECT_TRUE(b.take(1000, retry));
  EXPECT_TRUE(b.full(10'000));
  TokenBucket off(0, 0, 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(off.take(0, retry));
  TokenBucket slow(0.1, 1, 0);
  EXPECT_TRUE(slow.take(0, retry));
  EXPECT_FALSE(slow.take(0, retry));
  EXPECT_EQ(retry, 10);
}

// RFC 8030 §5.1: the receipt subscribe resource, the receipt subscription (read, delete) and one
// receipt's acknowledgement.
TEST(PushApiTest, ReceiptResources) {
  auto t = std::get<ApiTarget>(matchTarget("POST", "/receipts/tok_-1"));
  EXPECT_EQ(t.resource, Resource::ReceiptSubscribe);
  EXPECT_EQ(t.id, "tok_-1");
  t = std::get<ApiTarget>(matchTarget("GET", "/r/rsid"));
  EXPECT_EQ(t.resource, Resource::ReceiptReceive);
  EXPECT_EQ(t.id, "rsid");
  EXPECT_EQ(std::get<ApiTarget>(matchTarget("DELETE", "/r/rsid")).resource, Resource::ReceiptUnsubscribe);
  t = std::get<ApiTarget>(matchTarget("DELETE", "/r/rsid/42"));
  EXPECT_EQ(t.resource, Resource::ReceiptAck);
  EXPECT_EQ(t.id, "rsid");
  EXPECT_EQ(t.seq, 42);
  EXPECT_EQ(refusal(matchTarget("GET", "/receipts/tok")).detail, "POST");
  EXPECT_EQ(refusal(matchTarget("POST", "/r/rsid")).detail, "GET, DELETE");
  EXPECT_EQ(refusal(matchTarget("GET", "/r/rsid/1")).detail, "DELETE");
  for (const char* bad : {"/r/", "/r/a b", "/r/rsid/", "/r/rsid/x1", "/r/rsid/1/2", "/r/rsid/-1", "/receipts/"}) {
    EXPECT_EQ(refusal(matchTarget("DELETE", bad)).status, 404) << bad;
  }
  EXPECT_EQ(refusal(matchTarget("DELETE", "/r/rsid/" + std::string(19, '9'))).status, 404);  // no overflow
}

TEST(PushApiTest, PushReceiptNamesAReceiptSubscriptionOfThisService) {
  const std::string origin = "https://push.example.net:8443";
  EXPECT_EQ(std::get<std::string>(parsePushReceipt("/r/abc", origin)), "abc");
  EXPECT_EQ(std::get<std::string>(parsePushReceipt(" https://push.example.net:8443/r/abc_-9 ", origin)), "abc_-9");
  EXPECT_EQ(std::get<std::string>(parsePushReceipt("HTTPS://Push.Example.NET:8443/r/abc", origin)), "abc");
  for (const char* bad : {"", "r/abc", "/r/", "/r/a/b", "/s/abc", "/r/a b", "https://elsewhere.example/r/abc",
                          "https://push.example.net:8443", "https://push.example.net:84430/r/abc",
                          "https://push.example.net/r/abc"}) {
    Refusal r = refusal(parsePushReceipt(bad, origin));
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.reason, "bad_push_receipt") << bad;
  }
  EXPECT_EQ(refusal(parsePushReceipt("https://x/r/abc", "")).status, 400);  // no origin: paths only
}

// RFC 7240: Prefer is a list of preferences; unknown ones and junk are ignored (§2).
TEST(PushApiTest, PreferRespondAsyncAndWait) {
  Preferences p;
  parsePrefer("respond-async", p);
  EXPECT_TRUE(p.respondAsync);
  EXPECT_EQ(p.wait, -1);
  p = {};
  parsePrefer("return=minimal, Respond-Async ; foo=bar, wait=10", p);
  EXPECT_TRUE(p.respondAsync);
  EXPECT_EQ(p.wait, 10);
  p = {};
  parsePrefer("wait=\"5\"", p);
  EXPECT_EQ(p.wait, 5);
  EXPECT_FALSE(p.respondAsync);
  for (const char* no : {"", "respond-async=1", "respond-asyncx", "return=representation", ",,,;", "wait=x",
                         "wait=9999999999"}) {
    p = {};
    parsePrefer(no, p);
    EXPECT_FALSE(p.respondAsync) << no;
  }
  EXPECT_TRUE(preferences({{"prefer", "return=minimal"}, {"prefer", "respond-async"}}).respondAsync);
  EXPECT_FALSE(preferences({{"x-prefer", "respond-async"}}).respondAsync);
}

TEST(PushApiTest, ReceiptSseEventNamesTheAcknowledgedMessage) {
  EXPECT_EQ(receiptSseEvent("rs", 7, "mid1", 1700000000000),
            "id: 7\nevent: receipt\ndata: {\"message\":\"/m/mid1\",\"acknowledged\":1700000000000,\"ack\":\"/r/rs/7\"}\n\n");
}

}  // namespace
}  // namespace ugate::webpush
