// ugate.v1.Message (src/xds/message_convert.h) and its routing into ADS resources
// (ads::addMessages) and the MessageBox seam: only Web Push aes128gcm bodies are carried.
#include "xds/message_convert.h"

#include <gtest/gtest.h>

#include <ugate/message_box.h>

#include "ugate/v1/message.pb.h"
#include "xds/ads_resources.h"
#include "xds/messages.h"

namespace ugate::xds {
namespace {

std::string b64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-' ? 62 : 63;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// RFC 8291 Appendix A: the encrypted push message body (aes128gcm, rs 4096, the sender's key as keyid).
const std::string kRfc8291Body = b64url(
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl"
    "7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN");

// body: a header (rs, idlen, a keyid starting with first) and a record of n bytes.
std::string body(uint32_t rs, uint8_t idlen, size_t n, char first = 4) {
  std::string b(16, 's');
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<char>((rs >> (8 * i)) & 0xff));
  b.push_back(static_cast<char>(idlen));
  if (idlen) {
    b.push_back(first);
    b.append(idlen - 1u, 'k');
  }
  return b + std::string(n, 'r');
}

const std::string kNode(52, 'N');

TEST(MessageConvert, TheRfc8291ExampleIsAWebPushBody) {
  ASSERT_EQ(kRfc8291Body.size(), 144u);
  EXPECT_TRUE(checkAes128gcm(kRfc8291Body));
  EXPECT_TRUE(checkAes128gcm(body(4096, 65, 17)));
  EXPECT_TRUE(checkAes128gcm(body(4096, 65, 4096 - 86)));  // the largest: 4096 bytes in all
}

TEST(MessageConvert, WhatIsNotAWebPushBodyIsRefusedWithTheReason) {
  auto refused = [](const std::string& b, const std::string& why) {
    auto r = checkAes128gcm(b);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find(why), std::string::npos) << r.error().detail;
  };
  refused("", "shorter than an aes128gcm header");
  refused(kRfc8291Body.substr(0, 20), "shorter than an aes128gcm header");
  refused("plain text that someone forgot to encrypt, long enough to be a header", "keyid");
  refused(body(17, 65, 17), "record size 17 is under 18");
  refused(body(4096, 0, 40), "keyid");         // RFC 8188's own examples (no keyid): not Web Push
  refused(body(4096, 65, 40, 2), "keyid");     // a compressed key
  refused(body(4096, 65, 16), "no record");
  refused(body(18, 65, 40), "more than one record");
  refused(body(1u << 20, 65, 4096 - 85), "over 4096 bytes");
}

TEST(MessageConvert, RecipientsAndEnvelopes) {
  EXPECT_TRUE(checkRecipient(kNode));
  EXPECT_TRUE(checkRecipient("topic:news_1-a"));
  EXPECT_FALSE(checkRecipient("topic:"));
  EXPECT_FALSE(checkRecipient("topic:" + std::string(33, 'a')));
  EXPECT_FALSE(checkRecipient("topic:a/b"));
  EXPECT_FALSE(checkRecipient(std::string(52, 'n')));  // lower case is not an ID
  EXPECT_FALSE(checkRecipient("web.mesh"));
  EXPECT_TRUE(checkEnvelope({"m-1.x~", kRfc8291Body, 60, "high", 1}));
  EXPECT_FALSE(checkEnvelope({"", kRfc8291Body, 60, "", 1}));
  EXPECT_FALSE(checkEnvelope({"a b", kRfc8291Body, 60, "", 1}));
  EXPECT_FALSE(checkEnvelope({std::string(129, 'a'), kRfc8291Body, 60, "", 1}));
  EXPECT_FALSE(checkEnvelope({"m", kRfc8291Body, 60, "urgent", 1}));
  EXPECT_FALSE(checkEnvelope({"m", "hello", 60, "", 1}));
}

TEST(MessageConvert, MailboxRoundTripAndRefusals) {
  Mailbox m{kNode, {{"a", kRfc8291Body, 60, "high", 1000}, {"b", body(4096, 65, 30), 0, "", 2000}}};
  const std::string bytes = encodeMailbox(m);
  auto back = parseMailbox(bytes);
  ASSERT_TRUE(back) << back.error().detail;
  EXPECT_EQ(*back, m);
  EXPECT_EQ(encodeMailbox(*back), bytes) << "deterministic";

  ugate::v1::Message p;
  ASSERT_TRUE(p.ParseFromString(bytes));
  p.mutable_envelopes(0)->set_content_encoding("aesgcm");  // the old draft encoding
  EXPECT_NE(parseMailbox(p.SerializeAsString()).error().detail.find("content_encoding"), std::string::npos);
  ASSERT_TRUE(p.ParseFromString(bytes));
  p.mutable_envelopes(1)->set_id("a");
  EXPECT_NE(parseMailbox(p.SerializeAsString()).error().detail.find("envelope a twice"), std::string::npos);
  ASSERT_TRUE(p.ParseFromString(bytes));
  p.mutable_envelopes(1)->set_ciphertext("plaintext");
  EXPECT_FALSE(parseMailbox(p.SerializeAsString()));
  ASSERT_TRUE(p.ParseFromString(bytes));
  p.set_recipient("someone");
  EXPECT_FALSE(parseMailbox(p.SerializeAsString()));
  EXPECT_FALSE(parseMailbox("\xff\xff\xff"));
  Mailbox full{"topic:t", {}};
  for (size_t i = 0; i <= kMaxEnvelopes; ++i) full.envelopes.push_back({"m" + std::to_string(i), kRfc8291Body, 0, "", 0});
  EXPECT_NE(parseMailbox(encodeMailbox(full)).error().detail.find("over 256 envelopes"), std::string::npos);
}

TEST(MessageRouting, OneMailboxPerRecipientAndInvalidMessagesLeftOut) {
  const std::vector<BoxedMessage> in = {
      {kNode, "1", kRfc8291Body, 60, "", 5},
      {"topic:news", "2", kRfc8291Body, 60, "low", 6},
      {kNode, "3", body(4096, 65, 20), 60, "", 7},
      {kNode, "4", "not encrypted at all, which a relay must never carry", 60, "", 8},
      {"nobody", "5", kRfc8291Body, 60, "", 9},
  };
  ads::Snapshot s;
  std::vector<std::string> skipped;
  ads::addMessages(s, in, &skipped);
  ASSERT_EQ(s.ofType(kMessageType).size(), 2u);
  auto node = parseMailbox(s.find(kMessageType, kNode)->bytes);
  ASSERT_TRUE(node);
  ASSERT_EQ(node->envelopes.size(), 2u);
  EXPECT_EQ(node->envelopes[0].id, "1");
  EXPECT_EQ(node->envelopes[1].id, "3");
  auto topic = parseMailbox(s.find(kMessageType, "topic:news")->bytes);
  ASSERT_TRUE(topic);
  EXPECT_EQ(topic->envelopes[0].urgency, "low");
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_NE(skipped[0].find("message 4 for " + kNode), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[1].find("message 5 for nobody"), std::string::npos) << skipped[1];
}

TEST(MessageRouting, TheBoxReplacesRemovesAndExpires) {
  MessageBox box;
  box.post({kNode, "1", "x", 10, "", 1000});
  box.post({kNode, "2", "y", 0, "", 1000});
  box.post({kNode, "1", "z", 10, "", 1000});  // the same id: replaced
  auto now = box.list(1000);
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].ciphertext, "z");
  now = box.list(1001);  // message 2 had no TTL
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(box.size(), 1u);
  box.remove(kNode, "1");
  EXPECT_TRUE(box.list(1001).empty());
}

TEST(MessageRouting, TheBoxWakesItsServerOnChangesRemovesBySelectionAndDeliversToItsInbox) {
  MessageBox box;
  int posted = 0;
  box.setOnChange([&] { ++posted; });
  box.post({kNode, "s1.a", "x", 10, "", 1000});
  box.post({kNode, "s2.b", "y", 10, "", 1000});
  EXPECT_EQ(posted, 2);
  EXPECT_EQ(box.removeIf([](const BoxedMessage& m) { return m.id.starts_with("s1."); }), 1u);
  EXPECT_EQ(posted, 3) << "a removal wakes the server too";
  ASSERT_EQ(box.list(1000).size(), 1u);
  EXPECT_EQ(box.list(1000)[0].id, "s2.b");
  EXPECT_EQ(box.removeIf([](const BoxedMessage&) { return false; }), 0u);
  box.remove(kNode, "nothing");
  EXPECT_EQ(posted, 3) << "nothing removed: no wake";
  // The inbox: nothing registered takes nothing.
  EXPECT_FALSE(box.deliver({{kNode, "m", "c", 5, "", 1}}));
  std::vector<BoxedMessage> got;
  box.setInbox([&](std::vector<BoxedMessage> m) { got.insert(got.end(), m.begin(), m.end()); });
  EXPECT_TRUE(box.deliver({{kNode, "m", "c", 5, "", 1}}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "m");
  EXPECT_EQ(box.size(), 1u);  // delivered messages never enter the box
  box.setInbox(nullptr);
  EXPECT_FALSE(box.deliver({{kNode, "n", "c", 5, "", 1}}));
}

TEST(MessageRouting, TheBoxKnowsWhichTopicsThisNodeReads) {
  // xds.client.messages.topics, set as the config is applied; webpush binds local subscriptions
  // only to these.
  MessageBox box;
  EXPECT_FALSE(box.readsTopic("grp"));
  box.setReadTopics({"grp", "news"});
  EXPECT_TRUE(box.readsTopic("grp"));
  EXPECT_TRUE(box.readsTopic("news"));
  EXPECT_FALSE(box.readsTopic("topic:grp")) << "a topic, not a mailbox name";
  EXPECT_FALSE(box.readsTopic("gr"));
  box.setReadTopics({});
  EXPECT_FALSE(box.readsTopic("grp")) << "xds.client off: none";
}

TEST(MessageRouting, AClientWithAnIdentityNamesOnlyItsOwnMailboxAndTopics) {
  const std::string other(52, 'O');
  std::vector<std::string> refused;
  EXPECT_EQ(mailboxNamesFor(kNode, {kNode, "topic:news", other}, true, refused),
            (std::vector<std::string>{kNode, "topic:news"}));
  EXPECT_EQ(refused, (std::vector<std::string>{other}));
  refused.clear();
  EXPECT_EQ(mailboxNamesFor(kNode, {}, true, refused), (std::vector<std::string>{kNode})) << "SotW wildcard";
  EXPECT_TRUE(mailboxNamesFor(kNode, {}, false, refused).empty()) << "delta: naming nothing is no wildcard later";
  EXPECT_EQ(mailboxNamesFor(kNode, {"*", kNode}, false, refused), (std::vector<std::string>{kNode})) << "once";
  EXPECT_TRUE(refused.empty());
  // Only another node's name: never an empty list where that is a wildcard.
  EXPECT_EQ(mailboxNamesFor(kNode, {other}, true, refused), (std::vector<std::string>{kNode}));
  EXPECT_EQ(refused, (std::vector<std::string>{other}));
  EXPECT_TRUE(mailboxNamesFor(kNode, {other}, false, refused).empty());
}

}  // namespace
}  // namespace ugate::xds
