// Delivery over xDS, the sans-I/O parts (src/webpush/push_xds_feed.h, parseSubscribeBody's
// "deliver"): the subscription markers, the caller's node ID, envelope ids, and a stored message
// to an envelope and back with its TTL.
#include "webpush/push_xds_feed.h"

#include <gtest/gtest.h>

#include "webpush/push_api.h"

namespace ugate::webpush {
namespace {

const std::string kNode = "O2V2P3ZXT5QFAAB3GKRXGMBV2H5EPPRK5ZWRE64NZS7VYKDSRTYQ";

Refusal refusal(const std::variant<SubscribeRequest, Refusal>& v) {
  EXPECT_TRUE(std::holds_alternative<Refusal>(v));
  return std::holds_alternative<Refusal>(v) ? std::get<Refusal>(v) : Refusal{};
}

TEST(PushXdsFeed, SubscribeBodyDeliver) {
  EXPECT_FALSE(std::get<SubscribeRequest>(parseSubscribeBody("{}")).deliverXds);
  EXPECT_TRUE(std::get<SubscribeRequest>(parseSubscribeBody(R"({"deliver":"xds"})")).deliverXds);
  EXPECT_EQ(refusal(parseSubscribeBody(R"({"deliver":"sse"})")).reason, "bad_deliver");
  EXPECT_EQ(refusal(parseSubscribeBody(R"({"deliver":1})")).reason, "bad_deliver");
}

TEST(PushXdsFeed, SubscribeBodyTopicMailbox) {
  auto ok = parseSubscribeBody(R"({"deliver":"xds","mailbox":"topic:grp-1_A"})");
  ASSERT_TRUE(std::holds_alternative<SubscribeRequest>(ok));
  EXPECT_TRUE(std::get<SubscribeRequest>(ok).deliverXds);
  EXPECT_EQ(std::get<SubscribeRequest>(ok).mailbox, "topic:grp-1_A");
  auto local = parseSubscribeBody(R"({"mailbox":"topic:grp"})");  // N: a local subscription reading it
  ASSERT_TRUE(std::holds_alternative<SubscribeRequest>(local));
  EXPECT_FALSE(std::get<SubscribeRequest>(local).deliverXds);
  EXPECT_EQ(std::get<SubscribeRequest>(local).mailbox, "topic:grp");
  EXPECT_TRUE(std::get<SubscribeRequest>(parseSubscribeBody("{}")).mailbox.empty());
  EXPECT_TRUE(std::holds_alternative<SubscribeRequest>(
      parseSubscribeBody(R"({"mailbox":"topic:)" + std::string(32, 'a') + "\"}")));
  for (const std::string& bad : std::vector<std::string>{R"({"mailbox":"topic:"})", R"({"mailbox":"grp"})", R"({"mailbox":1})",
                                R"({"mailbox":"topic:a/b"})", R"({"mailbox":"topic:a="})", R"({"mailbox":"Topic:a"})",
                                R"({"mailbox":")" + kNode + "\"}", R"({"mailbox":"topic:)" + std::string(33, 'a') + "\"}"}) {
    EXPECT_EQ(refusal(parseSubscribeBody(bad)).reason, "bad_mailbox") << bad;
  }
  const std::string keys = R"("keys":{"p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4","auth":"BTBZMqHH6r4Tts7J_aSIgg"})";
  EXPECT_EQ(refusal(parseSubscribeBody(R"({"topic":"gw/news",)" + keys + R"(,"mailbox":"topic:grp"})")).reason,
            "bad_mailbox")
      << "a pub/sub topic and a topic mailbox exclude each other";
  EXPECT_TRUE(isTopicMailbox("topic:x"));
  EXPECT_FALSE(isTopicMailbox("topic:x y"));
  EXPECT_FALSE(isTopicMailbox(""));
}

TEST(PushXdsFeed, TopicMailboxMarkers) {
  Subscription s;
  s.topic = "xds:topic:grp";  // G: posted to the topic mailbox
  EXPECT_EQ(xdsRecipient(s), "topic:grp");
  EXPECT_FALSE(isXdsLocal(s));
  s.topic = xdsReadMarker("topic:grp");  // N: filled from it, not streamed by the relay
  EXPECT_EQ(s.topic, "xds-read:topic:grp");
  EXPECT_TRUE(isXdsLocal(s));
  EXPECT_FALSE(xdsRecipient(s));
  EXPECT_EQ(envelopeSeq("00000000000000ff.sid.mid"), 255);
  EXPECT_EQ(envelopeSeq(envelopeId(0x123456789a, "s", "m")), 0x123456789a);
  EXPECT_FALSE(envelopeSeq("00000000000000ff.sid"));
  EXPECT_FALSE(envelopeSeq("xyz"));
}

TEST(PushXdsFeed, MarkersAndTheCallersNodeId) {
  Subscription s;
  EXPECT_FALSE(xdsRecipient(s));
  EXPECT_FALSE(isXdsLocal(s));
  s.topic = "gw/news";  // a pub/sub topic is neither
  EXPECT_FALSE(xdsRecipient(s));
  s.topic = "xds:" + kNode;
  EXPECT_EQ(xdsRecipient(s), kNode);
  s.topic = "xds";
  EXPECT_FALSE(xdsRecipient(s));
  EXPECT_TRUE(isXdsLocal(s));
  EXPECT_EQ(callerNodeId({"spiffe://t.test/ns/default/sa/n", kNode}), kNode);
  EXPECT_FALSE(callerNodeId({"spiffe://t.test/ns/default/sa/n"}));
  EXPECT_FALSE(callerNodeId({}));
  std::string lower = kNode;
  lower[0] = 'o';
  EXPECT_FALSE(callerNodeId({lower})) << "node IDs are upper-case base32";
}

TEST(PushXdsFeed, EnvelopeIds) {
  EXPECT_EQ(envelopeId(0x1f, "sid", "mid"), "000000000000001f.sid.mid");
  EXPECT_EQ(envelopeSuffix("sid", "mid"), ".sid.mid");
  EXPECT_LT(envelopeId(9, "zzz", "m"), envelopeId(10, "aaa", "m")) << "ids sort in the store's order";
  auto p = splitEnvelopeId("00000000000000ff.abc_-1.01a2xyz");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->first, "abc_-1");
  EXPECT_EQ(p->second, "01a2xyz");
  EXPECT_FALSE(splitEnvelopeId("sid.mid")) << "no sequence";
  EXPECT_FALSE(splitEnvelopeId("000000000000000g.sid.mid"));
  EXPECT_FALSE(splitEnvelopeId("0000000000000001sid.mid"));
  EXPECT_FALSE(splitEnvelopeId("0000000000000001.nodot"));
  EXPECT_FALSE(splitEnvelopeId("0000000000000001..mid"));
  EXPECT_FALSE(splitEnvelopeId("0000000000000001.sid."));
  EXPECT_FALSE(splitEnvelopeId("0000000000000001.sid.m.d")) << "a mid is base64url: no second dot";
  EXPECT_FALSE(splitEnvelopeId("0000000000000001.s~d.mid"));
  EXPECT_FALSE(splitEnvelopeId("0000000000000001." + std::string(65, 's') + ".mid"));
  EXPECT_FALSE(splitEnvelopeId(""));
}

TEST(PushXdsFeed, AStoredMessageToAnEnvelopeAndBack) {
  StoredMessage m;
  m.id = "01a2mid";
  m.subscription = "sid";
  m.seq = 7;
  m.urgency = Urgency::High;
  m.ttlSeconds = 600;
  m.receivedMs = 1'000'000;
  m.expiresMs = 1'600'000;
  m.encoding = "aes128gcm";
  m.body = "ciphertext";
  BoxedMessage b = boxedFor(kNode, m);
  EXPECT_EQ(b.recipient, kNode);
  EXPECT_EQ(b.id, "0000000000000007.sid.01a2mid");
  EXPECT_EQ(b.ciphertext, "ciphertext");
  EXPECT_EQ(b.ttlSeconds, 600u);
  EXPECT_EQ(b.urgency, "high");
  EXPECT_EQ(b.createdUnixMs, 1'000'000);
  // At the node, 100.5 s later: what is left of the TTL, rounded up.
  auto back = storedFromEnvelope(b, 1'100'500);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, "01a2mid");
  EXPECT_EQ(back->subscription, "sid");
  EXPECT_EQ(back->urgency, Urgency::High);
  EXPECT_EQ(back->ttlSeconds, 500);
  EXPECT_EQ(back->expiresMs, 1'600'000);
  EXPECT_EQ(back->receivedMs, 1'100'500);
  EXPECT_EQ(back->encoding, "aes128gcm");
  EXPECT_EQ(back->body, "ciphertext");
  EXPECT_FALSE(storedFromEnvelope(b, 1'600'000)) << "expired on the way";
  // TTL 0 waits in the box for the store's grace period.
  m.ttlSeconds = 0;
  m.expiresMs = m.receivedMs + 30'000;
  EXPECT_EQ(boxedFor(kNode, m).ttlSeconds, 30u);
  b.id = "not-an-envelope-id";
  EXPECT_FALSE(storedFromEnvelope(b, 1'000'000));
  b.id = "0000000000000001.sid.mid";
  b.urgency = "";
  EXPECT_EQ(storedFromEnvelope(b, 1'000'000)->urgency, Urgency::Normal);
}

}  // namespace
}  // namespace ugate::webpush
