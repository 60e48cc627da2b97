#include "auth/jwt.h"

#include <gtest/gtest.h>

#include "auth/encoding.h"

namespace ugate::auth {
namespace {

// RFC 8292 §2.4 / §3.1 example (docs PROTOCOLS.md §1.4).
constexpr const char* kRfcToken =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0"
    "NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK"
    "2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA";
constexpr const char* kRfcKey =
    "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";

TEST(JwtTest, Rfc8292ExampleVerifies) {
  auto key = base64Decode(kRfcKey);
  ASSERT_TRUE(key);
  ASSERT_EQ(key->size(), kPublicKeyLen);
  auto parts = verifyJwtEs256(kRfcToken, *key);
  ASSERT_TRUE(parts) << parts.error().detail;
  EXPECT_EQ(parts->header, R"({"typ":"JWT","alg":"ES256"})");
  EXPECT_EQ(parts->claims,
            R"({"aud":"https://push.example.net","exp":1453523768,"sub":"mailto:push@example.com"})");
  EXPECT_EQ(jsonStringField(parts->claims, "aud"), "https://push.example.net");
  EXPECT_EQ(jsonStringField(parts->claims, "sub"), "mailto:push@example.com");
}

TEST(JwtTest, Rfc8292ExampleRejectsTamperingAndOtherKeys) {
  auto key = base64Decode(kRfcKey);
  std::string token = kRfcToken;
  // A different claims segment with the original signature.
  std::string forged = token;
  size_t d1 = forged.find('.');
  size_t d2 = forged.find('.', d1 + 1);
  forged.replace(d1 + 1, d2 - d1 - 1, base64UrlEncode(asBytes(R"({"aud":"https://evil"})")));
  auto r = verifyJwtEs256(forged, *key);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::AuthFailed);

  auto other = PrivateKey::generate();
  ASSERT_TRUE(other);
  EXPECT_FALSE(verifyJwtEs256(token, other->publicKey()));
  EXPECT_FALSE(verifyJwtEs256("a.b", *key));
  EXPECT_FALSE(verifyJwtEs256(token.substr(0, token.size() - 4), *key));
}

TEST(JwtTest, SignThenVerifyRoundTrip) {
  auto key = PrivateKey::generate();
  ASSERT_TRUE(key);
  std::string claims = R"({"aud":"https://push.example.net","exp":1999999999,"sub":"mailto:a@b.c"})";
  auto token = signJwtEs256(*key, claims);
  ASSERT_TRUE(token);
  EXPECT_EQ(token->rfind("eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.", 0), 0u);
  auto parts = verifyJwtEs256(*token, key->publicKey());
  ASSERT_TRUE(parts) << parts.error().detail;
  EXPECT_EQ(parts->claims, claims);
  // Raw r||s: the third segment decodes to exactly 64 bytes.
  EXPECT_EQ(base64Decode(token->substr(token->rfind('.') + 1))->size(), 64u);
}

TEST(JwtTest, RejectsAlgNone) {
  auto key = PrivateKey::generate();
  std::string t = base64UrlEncode(asBytes(R"({"alg":"none"})")) + "." +
                  base64UrlEncode(asBytes("{}")) + "." + base64UrlEncode(Bytes(64, 1));
  auto r = verifyJwtEs256(t, key->publicKey());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::NotSupported);
}

}  // namespace
}  // namespace ugate::auth
