#pragma once
// RFC 8292 VAPID, sans I/O: ES256 tokens (aud, exp, sub) signed with src/auth's JWT code, the
// `Authorization: vapid t=<jwt>, k=<key>` header and the older `Authorization: WebPush <jwt>` +
// `Crypto-Key: p256ecdsa=<key>` pair, their parsers (untrusted input) and the push service's
// checks: the signature with k, aud = the push resource's origin, exp present, not past and at
// most 24 h ahead, and k = the applicationServerKey of a restricted subscription. Time is passed
// in; nothing here reads a clock.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "auth/crypto.h"
#include "webpush/ece_crypto.h"
#include "webpush/push_error.h"

namespace ugate::webpush {

/** kMaxVapidHeaderLen: longer Authorization or Crypto-Key values are refused (TooLarge). */
constexpr size_t kMaxVapidHeaderLen = 4096;
/** kMaxVapidLifetime: exp may be at most this far after now (RFC 8292 §2). */
constexpr std::chrono::seconds kMaxVapidLifetime{24 * 3600};

/** VapidClaims: the claims VAPID uses. */
struct VapidClaims {
  /** aud: the origin of the push resource, e.g. "https://push.example.net". */
  std::string aud;
  /** exp: expiry, seconds since the Unix epoch. */
  int64_t exp{0};
  /** sub: a contact, "mailto:" or "https:" URI; optional (omitted from a token when empty). */
  std::string sub;
};

/**
 * signVapidToken signs claims as an ES256 JWT with header {"typ":"JWT","alg":"ES256"}.
 * @return the compact token; InvalidArgument when aud is empty or exp is not positive.
 */
PushResult<std::string> signVapidToken(const auth::PrivateKey& key, const VapidClaims& claims);

/** vapidAuthorization: the RFC 8292 header value `vapid t=<token>, k=<base64url(publicKey)>`. */
std::string vapidAuthorization(std::string_view token, std::span<const uint8_t> publicKey);
/** webPushAuthorization: the older header value `WebPush <token>` (pairs with cryptoKeyHeader). */
std::string webPushAuthorization(std::string_view token);
/** cryptoKeyHeader: the older `Crypto-Key` value `p256ecdsa=<base64url(publicKey)>`. */
std::string cryptoKeyHeader(std::span<const uint8_t> publicKey);

/** VapidScheme: which header form carried the credentials. */
enum class VapidScheme : uint8_t { Vapid, WebPush };

/** VapidCredentials: a token and key as parsed from request headers, not yet verified. */
struct VapidCredentials {
  VapidScheme scheme{VapidScheme::Vapid};
  std::string token;
  /** publicKey: the 65-byte uncompressed P-256 point from k= or p256ecdsa=. */
  Bytes publicKey;
};

/**
 * parseVapidAuthorization parses an Authorization header value (untrusted): scheme `vapid`
 * (case-insensitive) with auth-params t and k (tokens or quoted strings, other parameters
 * ignored), or scheme `WebPush` with the JWT as token68 and the key from cryptoKey's p256ecdsa
 * parameter.
 * @param cryptoKey the Crypto-Key header value, "" when absent (only WebPush reads it).
 * @return MalformedHeader, MissingToken, MissingKey, BadKey (k not a P-256 point) or TooLarge.
 */
PushResult<VapidCredentials> parseVapidAuthorization(std::string_view authorization,
                                                     std::string_view cryptoKey = {});

/** VapidVerifyParams: what a push service checks a token against. */
struct VapidVerifyParams {
  /** origin: the push resource's origin (scheme://host[:port]); aud must equal it. */
  std::string_view origin;
  /** now: the request's time. */
  auth::SystemTime now{};
  /** applicationServerKey: a restricted subscription's key (65 bytes); empty when unrestricted. */
  std::span<const uint8_t> applicationServerKey;
};

/**
 * verifyVapid checks credentials for one push request: k against a restricted subscription's key
 * (WrongKey), the ES256 signature (BadSignature, MalformedToken), aud (WrongAudience) and exp
 * (MissingExpiry, Expired, ExpiryTooFar).
 * @return the verified claims.
 */
PushResult<VapidClaims> verifyVapid(const VapidCredentials& credentials,
                                    const VapidVerifyParams& params);

/**
 * checkVapidClaims applies the claim rules to a token's decoded claims JSON (untrusted): a JSON
 * object whose aud (a string, or an array holding one) is expectedOrigin, whose exp is a number
 * after now and at most 24 h ahead, and whose sub, when present, is a string. verifyVapid calls it
 * once the signature verifies; it is public for fuzzing and for callers that verified otherwise.
 * @return the claims; MalformedToken, WrongAudience, MissingExpiry, Expired or ExpiryTooFar.
 */
PushResult<VapidClaims> checkVapidClaims(std::string_view claimsJson, std::string_view expectedOrigin,
                                         auth::SystemTime now);

/**
 * normalizeOrigin: scheme and host lower-cased, a trailing "/" and the scheme's default port
 * (:443 for https, :80 for http) dropped, so "HTTPS://Push.Example.net:443/" and
 * "https://push.example.net" compare equal.
 */
std::string normalizeOrigin(std::string_view origin);

}  // namespace ugate::webpush
