#include "webpush/message_crypto.h"

#include <gtest/gtest.h>

#include "auth/crypto.h"
#include "webpush_test_util.h"

namespace ugate::webpush {
namespace {

using test::arr;
using test::b64u;
using test::bytes;
using test::hex;

// RFC 8291 Appendix A (docs PROTOCOLS.md §1.3).
constexpr const char* kPlaintext = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24";
constexpr const char* kAsPublic =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
constexpr const char* kAsPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
constexpr const char* kUaPublic =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
constexpr const char* kUaPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
constexpr const char* kSalt = "DGv6ra1nlYgDCS1FRnbzlw";
constexpr const char* kAuth = "BTBZMqHH6r4Tts7J_aSIgg";
constexpr const char* kBody =
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6Tl"
    "zAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
constexpr const char* kBodyHex =
    "0c6bfaadad67958803092d454676f397000010004104fe33f4ab0dea71914db55823f73b54948f41306d920732dbb9"
    "a59a53286482200e597a7b7bc260ba1c227998580992e93973002f3012a28ae8f06bbb78e5ec0ff297de5b429bba71"
    "53d3a4ae0caa091fd425f3b4b5414add8ab37a19c1bbb05cf5cb5b2a2e0562d558635641ec52812c6c8ff42e95ccb8"
    "6be7cd";

EcdhKey key(const char* b64Private) {
  auto k = EcdhKey::fromPrivate(b64u(b64Private));
  EXPECT_TRUE(k) << k.error().detail;
  return k ? *k : EcdhKey{};
}

TEST(MessageCryptoTest, Rfc8291AppendixAKeysAndIntermediateValues) {
  EcdhKey as = key(kAsPrivate);
  EcdhKey ua = key(kUaPrivate);
  EXPECT_EQ(as.publicKey(), b64u(kAsPublic));
  EXPECT_EQ(ua.publicKey(), b64u(kUaPublic));
  EXPECT_EQ(as.privateKey(), hex("c9f58f89813e9f8e872e71f42aa64e1757c9254dcc62b72ddc010bb4043ea11c"));

  auto s1 = as.agree(ua.publicKey());
  auto s2 = ua.agree(as.publicKey());
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(*s1, *s2);
  EXPECT_EQ(Bytes(s1->begin(), s1->end()), b64u("kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"));

  auto prkKey = hkdfExtract(b64u(kAuth), *s1);
  EXPECT_EQ(Bytes(prkKey.begin(), prkKey.end()),
            b64u("Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k"));
  auto ikm = deriveWebPushIkm(*s1, b64u(kAuth), ua.publicKey(), as.publicKey());
  EXPECT_EQ(Bytes(ikm.begin(), ikm.end()), b64u("S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"));
  auto prk = hkdfExtract(b64u(kSalt), ikm);
  EXPECT_EQ(Bytes(prk.begin(), prk.end()), b64u("09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"));
  auto keys = deriveEceKeys(b64u(kSalt), ikm);
  EXPECT_EQ(Bytes(keys.cek.begin(), keys.cek.end()), b64u("oIhVW04MRdy2XN9CiKLxTg"));
  EXPECT_EQ(Bytes(keys.nonce.begin(), keys.nonce.end()), b64u("4h_95klXJ5E_qnoN"));
}

TEST(MessageCryptoTest, Rfc8291AppendixADecrypts) {
  auto body = b64u(kBody);
  ASSERT_EQ(body.size(), 144u);  // the RFC's example request says Content-Length: 145
  EXPECT_EQ(body, hex(kBodyHex));
  auto plain = decryptPushMessage(body, key(kUaPrivate), b64u(kAuth));
  ASSERT_TRUE(plain) << plain.error().detail;
  EXPECT_EQ(*plain, b64u(kPlaintext));
  EXPECT_EQ(*plain, bytes("When I grow up, I want to be a watermelon"));
}

TEST(MessageCryptoTest, Rfc8291AppendixAEncryptsByteForByte) {
  PushEncryptOptions o;
  o.saltForTest = arr<16>(b64u(kSalt));
  o.ephemeralKeyForTest = key(kAsPrivate);
  auto body = encryptPushMessage(b64u(kPlaintext), b64u(kUaPublic), b64u(kAuth), o);
  ASSERT_TRUE(body) << body.error().detail;
  EXPECT_EQ(*body, hex(kBodyHex));
  // The ciphertext and tag after the 86-byte header, as the RFC lists them.
  EXPECT_EQ(Bytes(body->begin() + 86, body->end()),
            b64u("8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"));
}

TEST(MessageCryptoTest, RoundTripWithGeneratedKeysAndFreshSaltAndEphemeral) {
  auto sub = generateSubscriptionKeys();
  ASSERT_TRUE(sub) << sub.error().detail;
  ASSERT_EQ(sub->key.publicKey().size(), 65u);
  EXPECT_TRUE(auth::isP256PublicKey(sub->key.publicKey()));
  // The stored private scalar rebuilds the same key pair.
  auto again = EcdhKey::fromPrivate(sub->key.privateKey());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->publicKey(), sub->key.publicKey());

  Bytes plain(kMaxPushPlaintext, 'p');
  auto a = encryptPushMessage(plain, sub->key.publicKey(), sub->auth);
  auto b = encryptPushMessage(plain, sub->key.publicKey(), sub->auth);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), kMaxPushBody);  // 3993 bytes of plaintext fill 4096 exactly
  EXPECT_NE(Bytes(a->begin(), a->begin() + 16), Bytes(b->begin(), b->begin() + 16));   // salt
  EXPECT_NE(Bytes(a->begin() + 21, a->begin() + 86), Bytes(b->begin() + 21, b->begin() + 86));
  for (const auto& body : {*a, *b}) {
    auto d = decryptPushMessage(body, sub->key, sub->auth);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_EQ(*d, plain);
  }

  // Padding and a small rs still round-trip.
  PushEncryptOptions o;
  o.rs = 200;
  o.padding = 50;
  auto padded = encryptPushMessage(bytes("hi"), sub->key.publicKey(), sub->auth, o);
  ASSERT_TRUE(padded) << padded.error().detail;
  EXPECT_EQ(padded->size(), 86u + 2 + 50 + 17);
  auto d = decryptPushMessage(*padded, sub->key, sub->auth);
  ASSERT_TRUE(d) << d.error().detail;
  EXPECT_EQ(*d, bytes("hi"));
}

TEST(MessageCryptoTest, EncryptErrors) {
  auto ua = b64u(kUaPublic);
  auto authSecret = b64u(kAuth);
  Bytes plain(kMaxPushPlaintext + 1, 'x');
  auto r = encryptPushMessage(plain, ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::TooLarge);

  PushEncryptOptions big;
  big.rs = 8192;
  r = encryptPushMessage(plain, ua, authSecret, big);  // fits rs, not the 4096-byte body limit
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::TooLarge);
  big.maxBody = 8192;
  EXPECT_TRUE(encryptPushMessage(plain, ua, authSecret, big));

  PushEncryptOptions tiny;
  tiny.rs = 17;
  r = encryptPushMessage(bytes(""), ua, authSecret, tiny);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::RecordSizeTooSmall);

  r = encryptPushMessage(bytes("x"), ua, Bytes(15, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKey);
  EXPECT_EQ(r.error().reason(), "bad_key");

  Bytes offCurve = ua;
  offCurve[64] ^= 1;
  r = encryptPushMessage(bytes("x"), offCurve, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKey);
  r = encryptPushMessage(bytes("x"), Bytes(ua.begin(), ua.begin() + 33), authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKey);
}

TEST(MessageCryptoTest, DecryptErrors) {
  const auto body = b64u(kBody);
  const EcdhKey ua = key(kUaPrivate);
  const auto authSecret = b64u(kAuth);

  // Wrong auth secret, wrong subscription key, altered ciphertext: the tag fails.
  Bytes otherAuth = authSecret;
  otherAuth[0] ^= 1;
  auto r = decryptPushMessage(body, ua, otherAuth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::DecryptFailed);
  auto other = EcdhKey::generate();
  ASSERT_TRUE(other);
  r = decryptPushMessage(body, *other, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::DecryptFailed);
  Bytes altered = body;
  altered.back() ^= 0x80;
  r = decryptPushMessage(altered, ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::DecryptFailed);

  // A keyid that is not a 65-byte point on the curve.
  Bytes badPoint = body;
  badPoint[21 + 64] ^= 1;
  r = decryptPushMessage(badPoint, ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKeyId);
  EXPECT_EQ(r.error().reason(), "bad_keyid");
  Bytes shortId = body;
  shortId[20] = 64;
  r = decryptPushMessage(shortId, ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKeyId);

  // Two records: rs smaller than what follows the header.
  Bytes twoRecords = body;
  twoRecords[18] = 0;
  twoRecords[19] = 40;
  r = decryptPushMessage(twoRecords, ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::MultipleRecords);

  Bytes tinyRs = body;
  tinyRs[18] = 0;
  tinyRs[19] = 17;
  r = decryptPushMessage(tinyRs, ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::RecordSizeTooSmall);

  // Cut: inside the header, inside the keyid, right after the header, inside the record.
  for (size_t n : {10u, 50u, 86u, 90u, 143u}) {
    r = decryptPushMessage(std::span<const uint8_t>(body).first(n), ua, authSecret);
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code, n < 143 ? PushErrc::Truncated : PushErrc::DecryptFailed) << n;
  }

  r = decryptPushMessage(body, ua, authSecret, 143);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::TooLarge);
  r = decryptPushMessage(body, ua, Bytes(32, 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKey);
  r = decryptPushMessage(body, EcdhKey{}, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadKey);
}

TEST(MessageCryptoTest, DelimiterOtherThanTwoIsRefused) {
  // An application server that ended its one record with 0x01 (more to come) is refused, as RFC
  // 8291 §4 requires; so is a record of padding only.
  const EcdhKey ua = key(kUaPrivate);
  const EcdhKey as = key(kAsPrivate);
  auto authSecret = b64u(kAuth);
  auto secret = as.agree(ua.publicKey());
  ASSERT_TRUE(secret);
  auto ikm = deriveWebPushIkm(*secret, authSecret, ua.publicKey(), as.publicKey());
  auto salt = b64u(kSalt);
  auto keys = deriveEceKeys(salt, ikm);
  Aes128GcmKey aead(keys.cek);
  auto bodyFor = [&](Bytes record) {
    Bytes out(salt.begin(), salt.end());
    out.insert(out.end(), {0, 0, 0x10, 0, 65});
    out.insert(out.end(), as.publicKey().begin(), as.publicKey().end());
    size_t at = out.size();
    out.resize(at + record.size() + kGcmTagLen);
    EXPECT_TRUE(aead.seal(keys.nonce, record, std::span<uint8_t>(out).subspan(at)));
    return out;
  };
  auto r = decryptPushMessage(bodyFor({'h', 'i', 0x01}), ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::Truncated);
  r = decryptPushMessage(bodyFor({'h', 'i', 0x05, 0}), ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadDelimiter);
  r = decryptPushMessage(bodyFor({0, 0}), ua, authSecret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadPadding);
  auto ok = decryptPushMessage(bodyFor({'h', 'i', 0x02, 0, 0}), ua, authSecret);
  ASSERT_TRUE(ok) << ok.error().detail;
  EXPECT_EQ(*ok, bytes("hi"));
}

TEST(MessageCryptoTest, PrivateKeyRange) {
  EXPECT_EQ(EcdhKey::fromPrivate(Bytes(32, 0)).error().code, PushErrc::BadKey);
  EXPECT_EQ(EcdhKey::fromPrivate(Bytes(31, 1)).error().code, PushErrc::BadKey);
  // The group order n itself is out of range; n - 1 is the largest valid scalar.
  auto n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  EXPECT_EQ(EcdhKey::fromPrivate(n).error().code, PushErrc::BadKey);
  n.back() -= 1;
  EXPECT_TRUE(EcdhKey::fromPrivate(n));
}

}  // namespace
}  // namespace ugate::webpush
