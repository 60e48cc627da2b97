#include "auth/jwt.h"

#include "auth/encoding.h"

namespace ugate::auth {

namespace {
constexpr std::string_view kHeader = R"({"typ":"JWT","alg":"ES256"})";

void skipWs(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}
}  // namespace

std::string jsonStringField(std::string_view json, std::string_view key) {
  std::string quoted = "\"" + std::string(key) + "\"";
  size_t pos = 0;
  while ((pos = json.find(quoted, pos)) != std::string_view::npos) {
    size_t i = pos + quoted.size();
    skipWs(json, i);
    if (i < json.size() && json[i] == ':') {
      ++i;
      skipWs(json, i);
      if (i >= json.size() || json[i] != '"') return {};
      size_t end = json.find('"', i + 1);
      if (end == std::string_view::npos) return {};
      return std::string(json.substr(i + 1, end - i - 1));
    }
    pos = i;
  }
  return {};
}

Result<std::string> signJwtEs256(const PrivateKey& key, std::string_view claimsJson) {
  std::string signingInput = base64UrlEncode(asBytes(kHeader)) + "." +
                             base64UrlEncode(asBytes(claimsJson));
  auto sig = key.signEs256(asBytes(signingInput));
  if (!sig) return sig.error();
  return signingInput + "." + base64UrlEncode(*sig);
}

Result<JwtParts> verifyJwtEs256(std::string_view token, std::span<const uint8_t> publicKey) {
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return makeError(Errc::InvalidArgument, "JWT must have three dot-separated parts");
  }
  auto header = base64Decode(token.substr(0, d1));
  auto claims = base64Decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64Decode(token.substr(d2 + 1));
  if (!header || !claims || !sig) return makeError(Errc::InvalidArgument, "JWT part is not base64url");
  JwtParts parts{asString(*header), asString(*claims)};
  if (std::string alg = jsonStringField(parts.header, "alg"); alg != "ES256") {
    return makeError(Errc::NotSupported, "JWT alg '" + alg + "' is not ES256");
  }
  if (sig->size() != 64) return makeError(Errc::InvalidArgument, "ES256 signature must be 64 bytes");
  if (!isP256PublicKey(publicKey)) {
    return makeError(Errc::InvalidArgument, "public key is not an uncompressed P-256 point");
  }
  if (!verifyEs256(publicKey, asBytes(token.substr(0, d2)), *sig)) {
    return makeError(Errc::AuthFailed, "JWT signature does not verify");
  }
  return parts;
}

}  // namespace ugate::auth
