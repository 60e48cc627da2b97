#include "webpush/vapid.h"

#include <gtest/gtest.h>

#include "auth/encoding.h"
#include "auth/jwt.h"
#include "webpush_test_util.h"

namespace ugate::webpush {
namespace {

using test::b64u;
using std::chrono::seconds;

// RFC 8292 §2.4 / §3.1 example (docs PROTOCOLS.md §1.4).
constexpr const char* kRfcToken =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0"
    "NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK"
    "2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA";
constexpr const char* kRfcKey =
    "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";
constexpr int64_t kRfcExp = 1453523768;  // 2016-01-23T04:36:08Z
constexpr const char* kOrigin = "https://push.example.net";

auth::SystemTime at(int64_t unix) { return auth::SystemTime(seconds(unix)); }

VapidVerifyParams params(int64_t now, std::span<const uint8_t> restricted = {}) {
  VapidVerifyParams p;
  p.origin = kOrigin;
  p.now = at(now);
  p.applicationServerKey = restricted;
  return p;
}

std::string rfcHeader() { return std::string("vapid t=") + kRfcToken + ", k=" + kRfcKey; }

PushErrc verifyCode(const std::string& authorization, const VapidVerifyParams& p,
                    std::string_view cryptoKey = {}) {
  auto creds = parseVapidAuthorization(authorization, cryptoKey);
  if (!creds) return creds.error().code;
  auto claims = verifyVapid(*creds, p);
  EXPECT_FALSE(claims) << "expected a failure for " << authorization;
  return claims ? PushErrc::Internal : claims.error().code;
}

TEST(VapidTest, Rfc8292ExampleVerifies) {
  auto creds = parseVapidAuthorization(rfcHeader());
  ASSERT_TRUE(creds) << creds.error().detail;
  EXPECT_EQ(creds->scheme, VapidScheme::Vapid);
  EXPECT_EQ(creds->token, kRfcToken);
  EXPECT_EQ(creds->publicKey, b64u(kRfcKey));
  auto claims = verifyVapid(*creds, params(kRfcExp - 3600));
  ASSERT_TRUE(claims) << claims.error().detail;
  EXPECT_EQ(claims->aud, "https://push.example.net");
  EXPECT_EQ(claims->exp, kRfcExp);
  EXPECT_EQ(claims->sub, "mailto:push@example.com");
  // The subscription restricted to this very key accepts it.
  auto key = b64u(kRfcKey);
  EXPECT_TRUE(verifyVapid(*creds, params(kRfcExp - 3600, key)));
}

TEST(VapidTest, Rfc8292ExampleWithAnyOneCharacterChangedFails) {
  const std::string token = kRfcToken;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '.') continue;
    std::string t = token;
    t[i] = t[i] == alphabet[i % 64] ? alphabet[(i + 1) % 64] : alphabet[i % 64];
    auto creds = parseVapidAuthorization("vapid t=" + t + ", k=" + kRfcKey);
    ASSERT_TRUE(creds);
    auto claims = verifyVapid(*creds, params(kRfcExp - 3600));
    ASSERT_FALSE(claims) << "a change at " << i << " still verifies";
    EXPECT_TRUE(claims.error().code == PushErrc::BadSignature ||
                claims.error().code == PushErrc::MalformedToken)
        << i << ": " << claims.error().reason();
  }
  // One byte of the key changed: either no longer a point or a different key.
  auto key = b64u(kRfcKey);
  for (size_t i = 1; i < key.size(); i += 7) {
    auto k = key;
    k[i] ^= 0x01;
    EXPECT_NE(verifyCode(std::string("vapid t=") + kRfcToken + ", k=" + auth::base64UrlEncode(k),
                         params(kRfcExp - 3600)),
              PushErrc::Internal)
        << i;
  }
  // A one-byte change of the signature's decoded bytes.
  std::string sigB64 = token.substr(token.rfind('.') + 1);
  auto sig = b64u(sigB64);
  sig[10] ^= 0x40;
  std::string forged = token.substr(0, token.rfind('.') + 1) + auth::base64UrlEncode(sig);
  EXPECT_EQ(verifyCode("vapid t=" + forged + ", k=" + kRfcKey, params(kRfcExp - 3600)),
            PushErrc::BadSignature);
}

TEST(VapidTest, SignFormatParseAndVerifyRoundTrip) {
  auto key = auth::PrivateKey::generate();
  ASSERT_TRUE(key);
  const int64_t now = 1'800'000'000;
  auto token = signVapidToken(*key, {.aud = kOrigin, .exp = now + 12 * 3600, .sub = "mailto:a@b.c"});
  ASSERT_TRUE(token) << token.error().detail;
  // The header is RFC 8292's {"typ":"JWT","alg":"ES256"}; the claims are compact JSON.
  auto parts = auth::verifyJwtEs256(*token, key->publicKey());
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->header, R"({"typ":"JWT","alg":"ES256"})");
  EXPECT_EQ(parts->claims, R"({"aud":"https://push.example.net","exp":1800043200,"sub":"mailto:a@b.c"})");

  const std::string k = auth::base64UrlEncode(key->publicKey());
  const std::string vapid = vapidAuthorization(*token, key->publicKey());
  EXPECT_EQ(vapid, "vapid t=" + *token + ", k=" + k);
  auto creds = parseVapidAuthorization(vapid);
  ASSERT_TRUE(creds) << creds.error().detail;
  auto claims = verifyVapid(*creds, params(now, key->publicKey()));
  ASSERT_TRUE(claims) << claims.error().detail;
  EXPECT_EQ(claims->sub, "mailto:a@b.c");

  EXPECT_EQ(webPushAuthorization(*token), "WebPush " + *token);
  EXPECT_EQ(cryptoKeyHeader(key->publicKey()), "p256ecdsa=" + k);
  for (std::string ck : {cryptoKeyHeader(key->publicKey()),
                         "dh=BCVxsr7N_eNgVRqvHtD0zTZsEc6;p256ecdsa=" + k,
                         "dh=BCVxsr7N, p256ecdsa=\"" + k + "\""}) {
    auto old = parseVapidAuthorization(webPushAuthorization(*token), ck);
    ASSERT_TRUE(old) << ck << ": " << old.error().detail;
    EXPECT_EQ(old->scheme, VapidScheme::WebPush);
    EXPECT_EQ(old->publicKey, key->publicKey());
    EXPECT_TRUE(verifyVapid(*old, params(now)));
  }

  // No sub: the claim is left out. Bad arguments are refused.
  token = signVapidToken(*key, {.aud = kOrigin, .exp = now + 60});
  ASSERT_TRUE(token);
  EXPECT_EQ(auth::verifyJwtEs256(*token, key->publicKey())->claims,
            R"({"aud":"https://push.example.net","exp":1800000060})");
  EXPECT_EQ(signVapidToken(*key, {.aud = "", .exp = now}).error().code, PushErrc::InvalidArgument);
  EXPECT_EQ(signVapidToken(*key, {.aud = kOrigin, .exp = 0}).error().code, PushErrc::InvalidArgument);
}

TEST(VapidTest, HeaderSyntaxVariantsParse) {
  const std::string t = kRfcToken;
  const std::string k = kRfcKey;
  for (const std::string& h : {"vapid t=" + t + ",k=" + k, "VAPID   t = " + t + " ,  k = " + k + " ",
                               "Vapid t=\"" + t + "\", k=\"" + k + "\"",
                               "vapid k=" + k + ", realm=\"push\", t=" + t,
                               "vapid t=" + t + ", , k=" + k + ",", "\tvapid t=" + t + ", k=" + k}) {
    auto creds = parseVapidAuthorization(h);
    ASSERT_TRUE(creds) << h << ": " << creds.error().detail;
    EXPECT_EQ(creds->token, t);
    EXPECT_TRUE(verifyVapid(*creds, params(kRfcExp - 1)));
  }
}

TEST(VapidTest, MalformedHeadersAreRefusedWithTheirReason) {
  const std::string t = kRfcToken;
  const std::string k = kRfcKey;
  struct Case {
    std::string authorization;
    std::string cryptoKey;
    PushErrc code;
  };
  const Case cases[] = {
      {"", "", PushErrc::MissingToken},
      {"   ", "", PushErrc::MissingToken},
      {"vapid", "", PushErrc::MissingToken},
      {"vapid k=" + k, "", PushErrc::MissingToken},
      {"vapid t=" + t, "", PushErrc::MissingKey},
      {"vapid t=" + t + ", t=" + t + ", k=" + k, "", PushErrc::MalformedHeader},
      {"vapid t", "", PushErrc::MalformedHeader},
      {"vapid t=, k=" + k, "", PushErrc::MalformedHeader},
      {"vapid =" + t, "", PushErrc::MalformedHeader},
      {"vapid t=\"" + t + ", k=" + k, "", PushErrc::MalformedHeader},
      {"vapid t=" + t + " k=" + k, "", PushErrc::MalformedHeader},
      {"vapid t=\"a\x01\", k=" + k, "", PushErrc::MalformedHeader},
      {"vapid t=a\x7f, k=" + k, "", PushErrc::MalformedHeader},
      {"Bearer " + t, "", PushErrc::MalformedHeader},
      {"vapidt=" + t, "", PushErrc::MalformedHeader},
      {"vapid t=" + t + ", k=AAAA", "", PushErrc::BadKey},
      {"vapid t=" + t + ", k=!!!", "", PushErrc::BadKey},
      {"vapid t=" + t + ", k=" + k.substr(0, 80), "", PushErrc::BadKey},
      {"vapid t=" + std::string(5000, 'a') + ", k=" + k, "", PushErrc::TooLarge},
      {"WebPush", "p256ecdsa=" + k, PushErrc::MissingToken},
      {"WebPush " + t, "", PushErrc::MissingKey},
      {"WebPush " + t, "dh=abc", PushErrc::MissingKey},
      {"WebPush " + t + " extra", "p256ecdsa=" + k, PushErrc::MalformedHeader},
      {"WebPush " + t + ",", "p256ecdsa=" + k, PushErrc::MalformedHeader},
      {"WebPush " + t, "p256ecdsa=" + k + ";p256ecdsa=" + k, PushErrc::MalformedHeader},
      {"WebPush " + t, "p256ecdsa", PushErrc::MalformedHeader},
      {"WebPush " + t, "p256ecdsa=AAAA", PushErrc::BadKey},
      {"WebPush " + t, std::string(5000, 'x'), PushErrc::TooLarge},
  };
  for (const auto& c : cases) {
    auto r = parseVapidAuthorization(c.authorization, c.cryptoKey);
    ASSERT_FALSE(r) << c.authorization;
    EXPECT_EQ(r.error().code, c.code)
        << c.authorization.substr(0, 60) << " | " << c.cryptoKey.substr(0, 60) << ": "
        << r.error().reason() << " " << r.error().detail;
    EXPECT_FALSE(r.error().detail.empty());
    EXPECT_EQ(r.error().reason(), pushErrcReason(c.code));
  }
}

// signedHeader: vapid credentials for a token with arbitrary claims JSON, signed by key.
std::string signedHeader(const auth::PrivateKey& key, std::string_view claimsJson) {
  auto token = auth::signJwtEs256(key, claimsJson);
  EXPECT_TRUE(token);
  return vapidAuthorization(token ? *token : "", key.publicKey());
}

TEST(VapidTest, ExpiryRules) {
  auto key = auth::PrivateKey::generate();
  ASSERT_TRUE(key);
  const int64_t now = 1'800'000'000;
  auto withExp = [&](int64_t exp) {
    return vapidAuthorization(*signVapidToken(*key, {.aud = kOrigin, .exp = exp}), key->publicKey());
  };
  auto ok = [&](const std::string& h) {
    auto creds = parseVapidAuthorization(h);
    return creds && verifyVapid(*creds, params(now));
  };
  EXPECT_TRUE(ok(withExp(now + 1)));
  EXPECT_TRUE(ok(withExp(now + 24 * 3600)));
  EXPECT_EQ(verifyCode(withExp(now + 24 * 3600 + 1), params(now)), PushErrc::ExpiryTooFar);
  EXPECT_EQ(verifyCode(withExp(now), params(now)), PushErrc::Expired);
  EXPECT_EQ(verifyCode(withExp(now - 1), params(now)), PushErrc::Expired);
  // The RFC example, a day later.
  EXPECT_EQ(verifyCode(rfcHeader(), params(kRfcExp + 86400)), PushErrc::Expired);
  EXPECT_EQ(verifyCode(rfcHeader(), params(kRfcExp - 86401)), PushErrc::ExpiryTooFar);

  const std::string aud = std::string(R"("aud":")") + kOrigin + "\"";
  EXPECT_EQ(verifyCode(signedHeader(*key, "{" + aud + "}"), params(now)), PushErrc::MissingExpiry);
  EXPECT_EQ(verifyCode(signedHeader(*key, "{" + aud + R"(,"exp":"1800000100"})"), params(now)),
            PushErrc::MissingExpiry);
  EXPECT_EQ(verifyCode(signedHeader(*key, "{" + aud + R"(,"exp":null})"), params(now)),
            PushErrc::MissingExpiry);
  EXPECT_EQ(verifyCode(signedHeader(*key, "{" + aud + R"(,"exp":1e300})"), params(now)),
            PushErrc::ExpiryTooFar);
  EXPECT_EQ(verifyCode(signedHeader(*key, "{" + aud + R"(,"exp":18446744073709551615})"), params(now)),
            PushErrc::ExpiryTooFar);
  EXPECT_EQ(verifyCode(signedHeader(*key, "{" + aud + R"(,"exp":-5})"), params(now)),
            PushErrc::Expired);
  EXPECT_TRUE(ok(signedHeader(*key, "{" + aud + R"(,"exp":1800000100.75})")));
  // The largest exp against a clock before 1970 is too far, not an overflow.
  auto far = checkVapidClaims(R"({"aud":"https://a","exp":9223372036854775807})", "https://a",
                              at(-100));
  ASSERT_FALSE(far);
  EXPECT_EQ(far.error().code, PushErrc::ExpiryTooFar);
  auto fine = checkVapidClaims(R"({"aud":"https://a","exp":-40})", "https://a", at(-100));
  ASSERT_TRUE(fine) << fine.error().detail;
  EXPECT_EQ(fine->exp, -40);
}

TEST(VapidTest, AudienceMustBeThePushResourceOrigin) {
  auto key = auth::PrivateKey::generate();
  ASSERT_TRUE(key);
  const int64_t now = 1'800'000'000;
  auto withAud = [&](std::string aud) {
    return vapidAuthorization(*signVapidToken(*key, {.aud = std::move(aud), .exp = now + 60}),
                              key->publicKey());
  };
  for (std::string good : {"https://push.example.net", "HTTPS://Push.Example.NET",
                           "https://push.example.net:443", "https://push.example.net/"}) {
    auto creds = parseVapidAuthorization(withAud(good));
    ASSERT_TRUE(creds);
    EXPECT_TRUE(verifyVapid(*creds, params(now))) << good;
  }
  for (std::string bad : {"https://push.example.com", "http://push.example.net",
                          "https://push.example.net:8443", "https://push.example.net/push/abc",
                          "https://evil.example/https://push.example.net", "push.example.net"}) {
    EXPECT_EQ(verifyCode(withAud(bad), params(now)), PushErrc::WrongAudience) << bad;
  }
  // The RFC example against another push service.
  auto p = params(kRfcExp - 1);
  p.origin = "https://push.example.org";
  EXPECT_EQ(verifyCode(rfcHeader(), p), PushErrc::WrongAudience);

  EXPECT_EQ(verifyCode(signedHeader(*key, R"({"exp":1800000100})"), params(now)),
            PushErrc::WrongAudience);
  EXPECT_EQ(verifyCode(signedHeader(*key, R"({"aud":42,"exp":1800000100})"), params(now)),
            PushErrc::WrongAudience);
  auto creds = parseVapidAuthorization(signedHeader(
      *key, R"({"aud":["https://other","https://push.example.net"],"exp":1800000100})"));
  ASSERT_TRUE(creds);
  auto claims = verifyVapid(*creds, params(now));
  ASSERT_TRUE(claims) << claims.error().detail;
  EXPECT_EQ(claims->aud, kOrigin);

  EXPECT_EQ(normalizeOrigin("HTTP://Host.Example:80/"), "http://host.example");
  EXPECT_EQ(normalizeOrigin("https://[::1]:443"), "https://[::1]");
  EXPECT_EQ(normalizeOrigin("https://h:4443"), "https://h:4443");
}

TEST(VapidTest, RestrictedSubscriptionNeedsItsOwnKey) {
  auto key = auth::PrivateKey::generate();
  auto other = auth::PrivateKey::generate();
  ASSERT_TRUE(key && other);
  const int64_t now = 1'800'000'000;
  auto header = vapidAuthorization(*signVapidToken(*key, {.aud = kOrigin, .exp = now + 60}),
                                   key->publicKey());
  auto creds = parseVapidAuthorization(header);
  ASSERT_TRUE(creds);
  EXPECT_TRUE(verifyVapid(*creds, params(now, key->publicKey())));
  auto r = verifyVapid(*creds, params(now, other->publicKey()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, PushErrc::WrongKey);
  EXPECT_EQ(r.error().reason(), "wrong_key");
  // A token signed by the restricted key but presented with another k.
  EXPECT_EQ(verifyCode(rfcHeader(), params(kRfcExp - 1, key->publicKey())), PushErrc::WrongKey);
  // The same k but a signature by another key.
  auto forged = vapidAuthorization(*signVapidToken(*other, {.aud = kOrigin, .exp = now + 60}),
                                   key->publicKey());
  EXPECT_EQ(verifyCode(forged, params(now, key->publicKey())), PushErrc::BadSignature);
}

TEST(VapidTest, MalformedTokens) {
  auto key = auth::PrivateKey::generate();
  ASSERT_TRUE(key);
  const int64_t now = 1'800'000'000;
  const std::string k = auth::base64UrlEncode(key->publicKey());
  EXPECT_EQ(verifyCode(signedHeader(*key, "not json"), params(now)), PushErrc::MalformedToken);
  EXPECT_EQ(verifyCode(signedHeader(*key, "[1,2]"), params(now)), PushErrc::MalformedToken);
  EXPECT_EQ(verifyCode(signedHeader(*key, R"({"aud":"https://push.example.net","exp":1800000100,"sub":7})"),
                       params(now)),
            PushErrc::MalformedToken);
  for (const std::string& t : std::vector<std::string>{"abc", "a.b", "a..c", ".b.c", "a.b.", "a.b.c.d", "YQ==.YQ.YQ", "a+b.c.d",
                        std::string(kRfcToken) + "A"}) {
    EXPECT_EQ(verifyCode("vapid t=" + t + ", k=" + k, params(now)), PushErrc::MalformedToken) << t;
  }
  // alg none, with or without a signature part.
  std::string none = auth::base64UrlEncode(auth::asBytes(R"({"typ":"JWT","alg":"none"})")) + "." +
                     auth::base64UrlEncode(auth::asBytes(R"({"aud":"https://push.example.net","exp":1800000100})"));
  EXPECT_EQ(verifyCode("vapid t=" + none + ".AAAA, k=" + k, params(now)), PushErrc::MalformedToken);
  EXPECT_EQ(verifyCode("vapid t=" + none + "., k=" + k, params(now)), PushErrc::MalformedToken);
}

}  // namespace
}  // namespace ugate::webpush
