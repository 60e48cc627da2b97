// What a node behind NAT reads from its gateway (src/webpush/push_relay_wire.h), sans I/O: the SSE
// delivery stream split into events (fed in any pieces, LF or CRLF, keepalive comments, the size
// limit), each event back into the message the gateway stored (and every malformed field refused),
// and the POST /subscribe answer.
#include "webpush/push_relay_wire.h"

#include <gtest/gtest.h>

#include "webpush/push_api.h"

namespace ugate::webpush {
namespace {

StoredMessage sample() {
  StoredMessage m;
  m.id = "AAAAAAAAAAAAAAAAAAAAAAAA";
  m.topic = "news";
  m.urgency = Urgency::High;
  m.receivedMs = 1000;
  m.expiresMs = 1000 + 60'000;
  m.encoding = "aes128gcm";
  m.body = std::string("\x00\x01\xffpayload", 10);
  return m;
}

TEST(PushRelayWireTest, SplitsWhatThePushServiceSendsInAnyPieces) {
  const std::string bytes = ": keepalive\n\n" + sseEvent(sample(), 1000) + ": keepalive\n\n" + sseEvent(sample(), 31'000);
  for (size_t piece : {size_t{1}, size_t{7}, bytes.size()}) {
    SseReader r;
    std::vector<std::string> events;
    for (size_t at = 0; at < bytes.size(); at += piece) ASSERT_TRUE(r.feed(std::string_view(bytes).substr(at, piece), events));
    ASSERT_EQ(events.size(), 2u) << "piece " << piece;
    auto m = parseRelayedEvent(events[0], 5000, 4096);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->id, sample().id);
    EXPECT_EQ(m->topic, "news");
    EXPECT_EQ(m->urgency, Urgency::High);
    EXPECT_EQ(m->ttlSeconds, 60);
    EXPECT_EQ(m->expiresMs, 5000 + 60'000);
    EXPECT_EQ(m->encoding, "aes128gcm");
    EXPECT_EQ(m->body, sample().body);
    EXPECT_EQ(parseRelayedEvent(events[1], 5000, 4096)->ttlSeconds, 30);
  }
}

TEST(PushRelayWireTest, AcceptsCrlfAndMultiLineData) {
  SseReader r;
  std::vector<std::string> events;
  ASSERT_TRUE(r.feed("id: x\r\ndata: a\r\ndata:b\r\n\r\nevent: only\r\n\r\n", events));
  ASSERT_EQ(events.size(), 1u);  // an event without data is no event
  EXPECT_EQ(events[0], "a\nb");
}

TEST(PushRelayWireTest, AnOversizedEventEndsTheStream) {
  SseReader r(64);
  std::vector<std::string> events;
  EXPECT_FALSE(r.feed("data: " + std::string(100, 'x'), events));
  SseReader lines(64);
  EXPECT_FALSE(lines.feed("data: " + std::string(40, 'x') + "\ndata: " + std::string(40, 'x') + "\n", events));
  EXPECT_TRUE(events.empty());
}

TEST(PushRelayWireTest, RefusesMalformedEvents) {
  const std::string good = R"({"id":"abc","topic":"","urgency":"normal","ttl":5,"encoding":"aes128gcm","body":"aGk"})";
  ASSERT_TRUE(parseRelayedEvent(good, 0, 4096));
  for (const char* bad : {
           "", "[]", "{}", "not json",
           R"({"id":"a/b","topic":"","urgency":"normal","ttl":5,"encoding":"aes128gcm","body":"aGk"})",
           R"({"id":"abc","topic":"a.b","urgency":"normal","ttl":5,"encoding":"aes128gcm","body":"aGk"})",
           R"({"id":"abc","topic":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","urgency":"normal","ttl":5,"encoding":"aes128gcm","body":"aGk"})",
           R"({"id":"abc","topic":"","urgency":"urgent","ttl":5,"encoding":"aes128gcm","body":"aGk"})",
           R"({"id":"abc","topic":"","urgency":"normal","ttl":-1,"encoding":"aes128gcm","body":"aGk"})",
           R"({"id":"abc","topic":"","urgency":"normal","ttl":"5","encoding":"aes128gcm","body":"aGk"})",
           R"({"id":"abc","topic":"","urgency":"normal","ttl":5,"encoding":"","body":"aGk"})",
           R"({"id":"abc","topic":"","urgency":"normal","ttl":5,"encoding":"aes128gcm","body":"!!"})",
           R"({"id":"abc","topic":"","urgency":"normal","ttl":5,"encoding":"aes128gcm"})",
       }) {
    EXPECT_FALSE(parseRelayedEvent(bad, 0, 4096)) << bad;
  }
  // A body over maxBody.
  StoredMessage big = sample();
  big.body.assign(5000, 'x');
  SseReader r(1 << 20);
  std::vector<std::string> events;
  ASSERT_TRUE(r.feed(sseEvent(big, 0), events));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(parseRelayedEvent(events[0], 0, 4096));
  EXPECT_TRUE(parseRelayedEvent(events[0], 0, 8192));
}

TEST(PushRelayWireTest, ReadsTheSubscribeAnswer) {
  auto r = parseSubscribeReply(subscribeJson("https://gw.example:8443/push/TOKEN_1", "/s/SID-2"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->endpoint, "https://gw.example:8443/push/TOKEN_1");
  EXPECT_EQ(r->token, "TOKEN_1");
  EXPECT_EQ(r->sid, "SID-2");
  EXPECT_FALSE(parseSubscribeReply(subscribeJson("http://gw/push/T", "/s/S")));     // not https
  EXPECT_FALSE(parseSubscribeReply(subscribeJson("https://gw/x/T", "/s/S")));       // no /push/
  EXPECT_FALSE(parseSubscribeReply(subscribeJson("https://gw/push/T/U", "/s/S")));  // token not an id
  EXPECT_FALSE(parseSubscribeReply(subscribeJson("https://gw/push/T", "/m/S")));
  EXPECT_FALSE(parseSubscribeReply(subscribeJson("https://gw/push/T", "/s/")));
  EXPECT_FALSE(parseSubscribeReply("{}"));
  EXPECT_FALSE(parseSubscribeReply("garbage"));
}

}  // namespace
}  // namespace ugate::webpush
