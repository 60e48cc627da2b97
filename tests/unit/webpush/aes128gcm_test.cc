#include "webpush/aes128gcm.h"

#include <gtest/gtest.h>

#include <limits>

#include "webpush/ece_crypto.h"
#include "webpush_test_util.h"

namespace ugate::webpush {
namespace {

using test::arr;
using test::b64u;
using test::bytes;
using test::hex;

// RFC 8188 §3.1 (docs PROTOCOLS.md §1.2): one record, rs 4096, no keyid.
constexpr const char* k31Ikm = "yqdlZ-tYemfogSmv7Ws5PQ";
constexpr const char* k31Salt = "I1BsxtFttlv3u_Oo94xnmw";
constexpr const char* k31Body =
    "23506cc6d16db65bf7bbf3a8f78c679b0000100000f8d015b9bdaa160044b902916a9a19bbe231908bdadcc101d4f"
    "0fe972f138638";
// RFC 8188 §3.2: two records, rs 25, keyid "a1", one padding byte in the first record.
constexpr const char* k32Ikm = "BO3ZVPxUlnLORbVGMpbT1Q";
constexpr const char* k32Body =
    "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLWIq"
    "S_uA";

TEST(Aes128gcmTest, Rfc8188Section31IntermediateValues) {
  auto ikm = b64u(k31Ikm);
  auto salt = b64u(k31Salt);
  EXPECT_EQ(ikm, hex("caa76567eb587a67e88129afed6b393d"));
  EXPECT_EQ(salt, hex("23506cc6d16db65bf7bbf3a8f78c679b"));
  auto prk = hkdfExtract(salt, ikm);
  EXPECT_EQ(Bytes(prk.begin(), prk.end()),
            hex("cf2787e6986c22c814c9de28892108cb7e71fa0222e1a33bcb484217c9b09fd8"));
  auto keys = deriveEceKeys(salt, ikm);
  EXPECT_EQ(Bytes(keys.cek.begin(), keys.cek.end()), hex("ff09e2cad07ea1fb1c643878b5b4a31f"));
  EXPECT_EQ(Bytes(keys.nonce.begin(), keys.nonce.end()), hex("05cb3c82421128b23c19e23c"));
}

TEST(Aes128gcmTest, Rfc8188Section31DecodesAndEncodesByteForByte) {
  auto ikm = b64u(k31Ikm);
  auto body = hex(k31Body);
  ASSERT_EQ(body.size(), 53u);  // the RFC text says 54; the body is 53 bytes
  EXPECT_EQ(body, b64u("I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"));

  auto header = parseEceHeader(body);
  ASSERT_TRUE(header) << header.error().detail;
  EXPECT_EQ(header->rs, 4096u);
  EXPECT_TRUE(header->keyid.empty());
  EXPECT_EQ(header->size(), 21u);

  auto plain = aes128gcmDecode(body, ikm);
  ASSERT_TRUE(plain) << plain.error().detail;
  EXPECT_EQ(*plain, bytes("I am the walrus"));

  EceEncodeParams p;
  p.ikm = ikm;
  p.salt = arr<16>(b64u(k31Salt));
  p.rs = 4096;
  auto encoded = aes128gcmEncode(bytes("I am the walrus"), p);
  ASSERT_TRUE(encoded) << encoded.error().detail;
  EXPECT_EQ(*encoded, body);
}

TEST(Aes128gcmTest, Rfc8188Section32TwoRecordsDecodeAndEncodeByteForByte) {
  auto ikm = b64u(k32Ikm);
  EXPECT_EQ(ikm, hex("04edd954fc549672ce45b5463296d3d5"));
  auto body = b64u(k32Body);
  ASSERT_EQ(body.size(), 73u);

  auto header = parseEceHeader(body);
  ASSERT_TRUE(header) << header.error().detail;
  EXPECT_EQ(header->rs, 25u);
  EXPECT_EQ(header->keyid, bytes("a1"));
  EXPECT_EQ(Bytes(header->salt.begin(), header->salt.end()), b64u("uNCkWiNYzKTnBN9ji3-qWA"));

  auto plain = aes128gcmDecode(body, ikm);
  ASSERT_TRUE(plain) << plain.error().detail;
  EXPECT_EQ(*plain, bytes("I am the walrus"));

  // The first record carries "I am th", its delimiter and one padding byte: padding is spent from
  // the first record on, so a total padding of 1 reproduces the RFC's records.
  auto keyid = bytes("a1");
  EceEncodeParams p;
  p.ikm = ikm;
  p.salt = header->salt;
  p.rs = 25;
  p.keyid = keyid;
  p.padding = 1;
  auto encoded = aes128gcmEncode(bytes("I am the walrus"), p);
  ASSERT_TRUE(encoded) << encoded.error().detail;
  EXPECT_EQ(*encoded, body);
}

// sealRecords builds a body from hand-made record plaintexts (delimiters and padding included), to
// reach the error paths an honest encoder never produces.
Bytes sealRecords(std::span<const uint8_t> ikm, uint32_t rs, const std::vector<Bytes>& records) {
  std::array<uint8_t, kSaltLen> salt{};
  salt.fill(7);
  Bytes out(salt.begin(), salt.end());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(rs >> s));
  out.push_back(0);
  auto keys = deriveEceKeys(salt, ikm);
  Aes128GcmKey aead(keys.cek);
  for (size_t seq = 0; seq < records.size(); ++seq) {
    auto nonce = keys.nonce;
    nonce[11] ^= static_cast<uint8_t>(seq);
    size_t at = out.size();
    out.resize(at + records[seq].size() + kGcmTagLen);
    EXPECT_TRUE(aead.seal(nonce, records[seq], std::span<uint8_t>(out).subspan(at)));
  }
  return out;
}

const Bytes kIkm = hex("000102030405060708090a0b0c0d0e0f");

TEST(Aes128gcmTest, HandMadeRecordsDecode) {
  // Sanity for sealRecords: a well-formed two-record body decodes.
  auto body = sealRecords(kIkm, 19, {Bytes{'a', 'b', 0x01}, Bytes{'c', 0x02, 0x00}});
  auto plain = aes128gcmDecode(body, kIkm);
  ASSERT_TRUE(plain) << plain.error().detail;
  EXPECT_EQ(*plain, bytes("abc"));
}

TEST(Aes128gcmTest, RecordOfOnlyPaddingIsBadPadding) {
  auto r = aes128gcmDecode(sealRecords(kIkm, 4096, {Bytes{0, 0, 0}}), kIkm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadPadding);
  EXPECT_EQ(r.error().reason(), "bad_padding");
}

TEST(Aes128gcmTest, UnknownDelimiterIsBadDelimiter) {
  auto r = aes128gcmDecode(sealRecords(kIkm, 4096, {Bytes{'x', 0x03, 0}}), kIkm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadDelimiter);
  EXPECT_NE(r.error().detail.find("delimiter 3"), std::string::npos) << r.error().detail;
}

TEST(Aes128gcmTest, LastDelimiterBeforeTheEndIsBadDelimiter) {
  auto r = aes128gcmDecode(sealRecords(kIkm, 19, {Bytes{'a', 'b', 0x02}, Bytes{'c', 0x02}}), kIkm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::BadDelimiter);
  EXPECT_EQ(r.error().reason(), "bad_delimiter");
}

TEST(Aes128gcmTest, FinalRecordWithDelimiterOneIsTruncated) {
  // One full record whose delimiter promises more: the body was cut at a record boundary.
  auto r = aes128gcmDecode(sealRecords(kIkm, 20, {Bytes{'a', 'b', 0x01}}), kIkm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::Truncated);
  // The RFC 8188 §3.2 body without its second record.
  auto body = b64u(k32Body);
  body.resize(body.size() - 25);
  r = aes128gcmDecode(body, b64u(k32Ikm));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::Truncated);
}

TEST(Aes128gcmTest, CutInsideARecordIsRefused) {
  auto body = b64u(k32Body);
  auto ikm = b64u(k32Ikm);
  // A tail shorter than a tag and a delimiter: Truncated without trying to decrypt.
  Bytes tail16(body.begin(), body.end() - 9);  // last record keeps 16 bytes
  auto r = aes128gcmDecode(tail16, ikm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::Truncated);
  EXPECT_EQ(r.error().reason(), "truncated");
  // A longer partial record no longer authenticates.
  Bytes tail20(body.begin(), body.end() - 5);
  r = aes128gcmDecode(tail20, ikm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::DecryptFailed);
}

TEST(Aes128gcmTest, HeaderErrors) {
  auto body = b64u(k32Body);
  for (size_t n : {0u, 1u, 20u}) {
    auto r = parseEceHeader(std::span<const uint8_t>(body).first(n));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, PushErrc::Truncated) << n;
  }
  // idlen 2 but only one keyid byte present.
  auto r = parseEceHeader(std::span<const uint8_t>(body).first(22));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::Truncated);
  EXPECT_NE(r.error().detail.find("keyid"), std::string::npos);
  // Header alone, no record.
  auto d = aes128gcmDecode(std::span<const uint8_t>(body).first(23), b64u(k32Ikm));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, PushErrc::Truncated);
  // rs 17 and rs 0.
  for (uint8_t rs : {17, 0}) {
    Bytes b = body;
    b[16] = b[17] = b[18] = 0;
    b[19] = rs;
    auto h = parseEceHeader(b);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, PushErrc::RecordSizeTooSmall);
    EXPECT_EQ(h.error().reason(), "record_size_too_small");
  }
}

TEST(Aes128gcmTest, RecordSizeLimits) {
  EceEncodeParams p;
  p.ikm = kIkm;
  p.rs = 17;
  auto e = aes128gcmEncode(bytes("x"), p);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, PushErrc::RecordSizeTooSmall);

  // rs 18 is the smallest: one byte of data per record.
  p.rs = 18;
  e = aes128gcmEncode(bytes("hello"), p);
  ASSERT_TRUE(e) << e.error().detail;
  EXPECT_EQ(e->size(), 21u + 5u * 18u);
  auto d = aes128gcmDecode(*e, kIkm);
  ASSERT_TRUE(d) << d.error().detail;
  EXPECT_EQ(*d, bytes("hello"));

  // An rs claimed far beyond the bytes present costs nothing, but can be capped.
  p.rs = 0xffffffff;
  e = aes128gcmEncode(bytes("hello"), p);
  ASSERT_TRUE(e);
  d = aes128gcmDecode(*e, kIkm);
  ASSERT_TRUE(d) << d.error().detail;
  d = aes128gcmDecode(*e, kIkm, EceDecodeLimits{.maxRecordSize = 4096});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, PushErrc::TooLarge);
}

TEST(Aes128gcmTest, SizeLimits) {
  EceEncodeParams p;
  p.ikm = kIkm;
  p.rs = 100;
  Bytes plain(1000, 'z');
  auto e = aes128gcmEncode(plain, p);
  ASSERT_TRUE(e);
  // 1000 bytes in records of 83: 13 records.
  EXPECT_EQ(e->size(), 21u + 1000u + 13u * 17u);
  auto d = aes128gcmDecode(*e, kIkm, EceDecodeLimits{.maxPlaintext = 1000});
  ASSERT_TRUE(d) << d.error().detail;
  d = aes128gcmDecode(*e, kIkm, EceDecodeLimits{.maxPlaintext = 999});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, PushErrc::TooLarge);
  EXPECT_EQ(d.error().reason(), "too_large");

  p.maxBody = e->size();
  EXPECT_TRUE(aes128gcmEncode(plain, p));
  p.maxBody = e->size() - 1;
  auto e2 = aes128gcmEncode(plain, p);
  ASSERT_FALSE(e2);
  EXPECT_EQ(e2.error().code, PushErrc::TooLarge);
  // Absurd padding is refused before any allocation, with or without a body limit.
  p.maxBody = 1 << 20;
  p.padding = size_t{1} << 40;
  e2 = aes128gcmEncode(plain, p);
  ASSERT_FALSE(e2);
  EXPECT_EQ(e2.error().code, PushErrc::TooLarge);
  p.maxBody = std::numeric_limits<size_t>::max();
  for (size_t pad : {std::numeric_limits<size_t>::max(), std::numeric_limits<size_t>::max() - 1000,
                     std::numeric_limits<size_t>::max() / 17}) {
    p.padding = pad;
    e2 = aes128gcmEncode(plain, p);
    ASSERT_FALSE(e2) << pad;
    EXPECT_EQ(e2.error().code, PushErrc::TooLarge) << pad;
  }

  Bytes longId(256, 'k');
  EceEncodeParams q;
  q.ikm = kIkm;
  q.keyid = longId;
  e2 = aes128gcmEncode(plain, q);
  ASSERT_FALSE(e2);
  EXPECT_EQ(e2.error().code, PushErrc::InvalidArgument);
}

TEST(Aes128gcmTest, WrongKeyAlteredByteAndReorderedRecordsFail) {
  auto body = b64u(k32Body);
  auto r = aes128gcmDecode(body, kIkm);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::DecryptFailed);
  EXPECT_EQ(r.error().reason(), "decrypt_failed");

  for (size_t i = 0; i < body.size(); ++i) {
    // The keyid (bytes 21-22) only names the key; aes128gcm does not authenticate it.
    if (i == 21 || i == 22) continue;
    Bytes b = body;
    b[i] ^= 0x01;
    auto d = aes128gcmDecode(b, b64u(k32Ikm));
    EXPECT_FALSE(d) << "flipped byte " << i << " went unnoticed";
  }
  Bytes swapped(body.begin(), body.begin() + 23);
  swapped.insert(swapped.end(), body.begin() + 48, body.end());
  swapped.insert(swapped.end(), body.begin() + 23, body.begin() + 48);
  r = aes128gcmDecode(swapped, b64u(k32Ikm));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::DecryptFailed);
}

TEST(Aes128gcmTest, RoundTripsAcrossRecordSizesAndPadding) {
  Bytes keyid = bytes("key-7");
  for (uint32_t rs : {18u, 19u, 31u, 64u, 4096u}) {
    for (size_t len : {0u, 1u, 2u, 13u, 14u, 15u, 100u, 3000u}) {
      for (size_t pad : {0u, 1u, 14u, 40u}) {
        Bytes plain(len);
        for (size_t i = 0; i < len; ++i) plain[i] = static_cast<uint8_t>(i * 31 + 7);
        EceEncodeParams p;
        p.ikm = kIkm;
        randomBytes(p.salt);
        p.rs = rs;
        p.keyid = keyid;
        p.padding = pad;
        auto e = aes128gcmEncode(plain, p);
        ASSERT_TRUE(e) << e.error().detail;
        const size_t cap = rs - 17;
        const size_t records = len + pad == 0 ? 1 : (len + pad + cap - 1) / cap;
        ASSERT_EQ(e->size(), 26u + len + pad + records * 17) << rs << "/" << len << "/" << pad;
        auto d = aes128gcmDecode(*e, kIkm);
        ASSERT_TRUE(d) << rs << "/" << len << "/" << pad << ": " << d.error().detail;
        EXPECT_EQ(*d, plain);
      }
    }
  }
}

}  // namespace
}  // namespace ugate::webpush
