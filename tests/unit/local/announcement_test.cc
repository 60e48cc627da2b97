// The announcement codec: round trip, and one test per reason a datagram is refused.
#include "local/announcement.h"

#include <gtest/gtest.h>

namespace ugate::local {
namespace {

class AnnouncementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = auth::PrivateKey::generate();
    ASSERT_TRUE(k);
    key_ = *k;
  }
  Announcement sample() const {
    Announcement a;
    a.sequence = 1700000000000000ULL;
    a.timestampMs = 1700000000000;
    a.tcpPort = 15008;
    a.quicPort = 15009;
    a.name = "node-a";
    IpAddr v4, v6;
    EXPECT_TRUE(IpAddr::parse("10.1.2.3", v4));
    EXPECT_TRUE(IpAddr::parse("fe80::1", v6));
    a.addresses = {v4, v6};
    return a;
  }
  auth::Bytes encoded() const {
    auto b = encodeAnnouncement(sample(), key_);
    EXPECT_TRUE(b);
    return b ? *b : auth::Bytes{};
  }
  // resign replaces the signature of b with a valid one over its (modified) body.
  void resign(auth::Bytes& b) const {
    auto sig = key_.signEs256(std::span<const uint8_t>(b).first(b.size() - kSignatureLen));
    ASSERT_TRUE(sig);
    std::copy(sig->begin(), sig->end(), b.end() - kSignatureLen);
  }
  Reject parse(const auth::Bytes& b) const {
    Announcement out;
    return parseAnnouncement(b, out);
  }
  auth::PrivateKey key_;
};

TEST_F(AnnouncementTest, RoundTrip) {
  auth::Bytes b = encoded();
  EXPECT_EQ(b.size(), kNameOffset + 1 + 6 + 1 + 5 + 17 + auth::kPublicKeyLen + kSignatureLen);
  Announcement out;
  ASSERT_EQ(parseAnnouncement(b, out), Reject::None);
  Announcement want = sample();
  EXPECT_FALSE(out.reply);
  EXPECT_EQ(out.sequence, want.sequence);
  EXPECT_EQ(out.timestampMs, want.timestampMs);
  EXPECT_EQ(out.tcpPort, 15008);
  EXPECT_EQ(out.quicPort, 15009);
  EXPECT_EQ(out.name, "node-a");
  ASSERT_EQ(out.addresses.size(), 2u);
  EXPECT_EQ(out.addresses[0].str(), "10.1.2.3");
  EXPECT_EQ(out.addresses[1].str(), "fe80::1");
  // The announced ID is the TLS node ID: base32(SHA-256(65-byte key)).
  EXPECT_EQ(out.nodeId, key_.nodeId());
  EXPECT_EQ(out.nodeId, auth::nodeIdFromPublicKey(key_.publicKey()));
  EXPECT_EQ(out.publicKey, key_.publicKey());
}

TEST_F(AnnouncementTest, ReplyFlagRoundTrips) {
  Announcement a = sample();
  a.reply = true;
  auto b = encodeAnnouncement(a, key_);
  ASSERT_TRUE(b);
  Announcement out;
  ASSERT_EQ(parseAnnouncement(*b, out), Reject::None);
  EXPECT_TRUE(out.reply);
}

TEST_F(AnnouncementTest, LargestFitsMaxLen) {
  Announcement a = sample();
  a.name = std::string(kMaxNameLen, 'x');
  IpAddr v6;
  ASSERT_TRUE(IpAddr::parse("2001:db8::1", v6));
  a.addresses.assign(kMaxAddresses, v6);
  auto b = encodeAnnouncement(a, key_);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->size(), kMaxLen);
  EXPECT_EQ(parse(*b), Reject::None);
}

TEST_F(AnnouncementTest, EncodeRefusesBadInput) {
  Announcement a = sample();
  a.name = "Not_A_Label";
  EXPECT_FALSE(encodeAnnouncement(a, key_));
  a = sample();
  a.addresses.resize(kMaxAddresses + 1);
  EXPECT_FALSE(encodeAnnouncement(a, key_));
  EXPECT_FALSE(encodeAnnouncement(sample(), auth::PrivateKey()));
}

TEST_F(AnnouncementTest, Truncated) {
  auth::Bytes b = encoded();
  for (size_t n : {size_t{0}, size_t{5}, size_t{100}, b.size() - 1}) {
    auth::Bytes t(b.begin(), b.begin() + static_cast<long>(n));
    EXPECT_EQ(parse(t), Reject::Truncated) << n;
  }
}

TEST_F(AnnouncementTest, BadMagic) {
  auth::Bytes b = encoded();
  b[0] = '{';
  EXPECT_EQ(parse(b), Reject::BadMagic);
}

TEST_F(AnnouncementTest, BadVersion) {
  auth::Bytes b = encoded();
  b[2] = 2;
  EXPECT_EQ(parse(b), Reject::BadVersion);
}

TEST_F(AnnouncementTest, BadLength) {
  auth::Bytes b = encoded();
  auth::Bytes longer = b;
  longer.push_back(0);  // a byte past the length field
  EXPECT_EQ(parse(longer), Reject::BadLength);
  auth::Bytes small = b;
  small[4] = 0;
  small[5] = 10;  // below the minimum
  EXPECT_EQ(parse(small), Reject::BadLength);
  auth::Bytes big = b;
  big[4] = 0xff;  // above the maximum
  EXPECT_EQ(parse(big), Reject::BadLength);
  // The address count says one more address than the length leaves room for.
  auth::Bytes count = b;
  count[kNameOffset + 1 + 6] = 3;
  EXPECT_EQ(parse(count), Reject::BadLength);
  // ... or one fewer: the fields end before the key.
  count[kNameOffset + 1 + 6] = 1;
  EXPECT_EQ(parse(count), Reject::BadLength);
}

TEST_F(AnnouncementTest, Malformed) {
  auth::Bytes b = encoded();
  auth::Bytes name = b;
  name[kNameOffset + 1] = 'A';  // upper case is not a valid name
  EXPECT_EQ(parse(name), Reject::Malformed);
  auth::Bytes fam = b;
  fam[kNameOffset + 1 + 6 + 1] = 5;  // first address family
  EXPECT_EQ(parse(fam), Reject::Malformed);
  auth::Bytes zero = b;
  zero[kNameOffset] = 0;  // empty name
  EXPECT_EQ(parse(zero), Reject::Malformed);
}

TEST_F(AnnouncementTest, BadKey) {
  auth::Bytes b = encoded();
  const size_t keyAt = b.size() - kSignatureLen - auth::kPublicKeyLen;
  b[keyAt + 10] ^= 0x01;  // almost surely off the curve
  b[keyAt + 40] ^= 0x01;
  EXPECT_EQ(parse(b), Reject::BadKey);
  b = encoded();
  b[keyAt] = 0x02;  // compressed form is not accepted
  EXPECT_EQ(parse(b), Reject::BadKey);
}

TEST_F(AnnouncementTest, IdMismatchEvenWhenSignedByTheKey) {
  auth::Bytes b = encoded();
  auto other = auth::PrivateKey::generate();
  ASSERT_TRUE(other);
  const std::string id = other->nodeId();
  std::copy(id.begin(), id.end(), b.begin() + kNodeIdOffset);  // claims another node's ID
  resign(b);  // the signature is valid: the key signed it, but the ID is not the key's
  EXPECT_EQ(parse(b), Reject::IdMismatch);
}

TEST_F(AnnouncementTest, BadSignature) {
  auth::Bytes b = encoded();
  auth::Bytes sig = b;
  sig.back() ^= 0x01;
  EXPECT_EQ(parse(sig), Reject::BadSignature);
  auth::Bytes body = b;
  body[22] ^= 0x01;  // the TCP port changed after signing
  EXPECT_EQ(parse(body), Reject::BadSignature);
  auth::Bytes flags = b;
  flags[3] |= kFlagReply;  // the flags are signed too
  EXPECT_EQ(parse(flags), Reject::BadSignature);
  // Another node's key and a matching ID, but the signature was made by us.
  auth::Bytes swapped = b;
  auto other = auth::PrivateKey::generate();
  ASSERT_TRUE(other);
  const std::string id = other->nodeId();
  std::copy(id.begin(), id.end(), swapped.begin() + kNodeIdOffset);
  std::copy(other->publicKey().begin(), other->publicKey().end(),
            swapped.end() - kSignatureLen - auth::kPublicKeyLen);
  EXPECT_EQ(parse(swapped), Reject::BadSignature);
}

TEST_F(AnnouncementTest, UnverifiedThenVerify) {
  auth::Bytes b = encoded();
  b[23] ^= 1;  // the TCP port's low byte, changed after signing: structure fine, signature not
  Announcement out;
  EXPECT_EQ(parseUnverified(b, out), Reject::None);
  EXPECT_EQ(out.tcpPort, 15008 ^ 1);
  EXPECT_EQ(verifySignature(b), Reject::BadSignature);
  EXPECT_EQ(verifySignature(encoded()), Reject::None);
  b = encoded();
  b[kNodeIdOffset] = b[kNodeIdOffset] == 'A' ? 'B' : 'A';
  EXPECT_EQ(parseUnverified(b, out), Reject::IdMismatch);  // the ID check needs no signature
}

TEST_F(AnnouncementTest, EveryRejectHasAName) {
  for (size_t i = 0; i < static_cast<size_t>(Reject::Count); ++i) {
    EXPECT_NE(rejectName(static_cast<Reject>(i)), "unknown") << i;
  }
}

TEST(ValidName, Labels) {
  EXPECT_TRUE(validName("a"));
  EXPECT_TRUE(validName("node-1"));
  EXPECT_FALSE(validName(""));
  EXPECT_FALSE(validName("-a"));
  EXPECT_FALSE(validName("a-"));
  EXPECT_FALSE(validName("a.b"));
  EXPECT_FALSE(validName(std::string(64, 'a')));
}

}  // namespace
}  // namespace ugate::local
