#pragma once
// ES256 JSON Web Tokens as VAPID (RFC 8292) uses them: header {"typ":"JWT","alg":"ES256"}, a
// base64url JSON claims object and a raw r||s P-256 signature. Claim policy (aud, exp) belongs to
// the caller (src/webpush); this only signs and checks signatures.
#include <span>
#include <string>
#include <string_view>

#include <ugate/result.h>

#include "auth/crypto.h"

namespace ugate::auth {

struct JwtParts {
  std::string header;  // header: decoded JSON text
  std::string claims;  // claims: decoded JSON text
};

/** signJwtEs256 signs claimsJson (a JSON object, passed through verbatim). @return the token. */
Result<std::string> signJwtEs256(const PrivateKey& key, std::string_view claimsJson);

/**
 * verifyJwtEs256 checks the token's shape, that its header says alg ES256, and its signature with
 * publicKey (65-byte uncompressed point, e.g. a decoded VAPID `k`).
 * @return the decoded header and claims; Errc::AuthFailed for a bad signature.
 */
Result<JwtParts> verifyJwtEs256(std::string_view token, std::span<const uint8_t> publicKey);

/**
 * jsonStringField: the value of a top-level string field of a flat JSON object (no escapes in the
 * value), or "" when absent. Enough for JWT headers; use a real parser for anything richer.
 */
std::string jsonStringField(std::string_view json, std::string_view key);

}  // namespace ugate::auth
