#include "webpush/vapid.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/encoding.h"
#include "auth/jwt.h"

namespace ugate::webpush {

namespace {

using Json = nlohmann::json;

bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// isTchar: RFC 9110 token characters.
bool isTchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// isToken68: RFC 9110 token68 (base64-ish characters, then '=' padding only at the end).
bool isToken68(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                          (s[i] >= '0' && s[i] <= '9') ||
                          std::string_view("-._~+/").find(s[i]) != std::string_view::npos)) {
    ++i;
  }
  if (i == 0) return false;
  while (i < s.size() && s[i] == '=') ++i;
  return i == s.size();
}

// isCanonicalBase64Url: unpadded base64url whose unused trailing bits are zero, so that a token
// has exactly one spelling (a changed last character cannot decode to the same bytes).
bool isCanonicalBase64Url(std::string_view s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  for (char c : s) {
    if (value(c) < 0) return false;
  }
  switch (s.size() % 4) {
    case 1: return false;
    case 2: return (value(s.back()) & 0x0f) == 0;
    case 3: return (value(s.back()) & 0x03) == 0;
    default: return true;
  }
}

// isCanonicalJws: three non-empty canonical base64url segments.
bool isCanonicalJws(std::string_view token) {
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || d1 == 0 || d2 == d1 + 1 || d2 + 1 == token.size()) return false;
  return isCanonicalBase64Url(token.substr(0, d1)) &&
         isCanonicalBase64Url(token.substr(d1 + 1, d2 - d1 - 1)) &&
         isCanonicalBase64Url(token.substr(d2 + 1));
}

struct Param {
  std::string name;
  std::string value;
};

PushError malformed(std::string what) { return pushError(PushErrc::MalformedHeader, std::move(what)); }

// parseParams reads `name=value` items (value a token-ish run or a quoted-string) separated by
// any of `separators`, with optional whitespace around everything; empty items are skipped.
PushResult<std::vector<Param>> parseParams(std::string_view s, std::string_view separators) {
  std::vector<Param> out;
  auto isSep = [&](char c) { return separators.find(c) != std::string_view::npos; };
  size_t i = 0;
  const size_t n = s.size();
  for (;;) {
    while (i < n && (isOws(s[i]) || isSep(s[i]))) ++i;
    if (i == n) break;
    Param p;
    while (i < n && isTchar(s[i])) p.name += s[i++];
    if (p.name.empty()) {
      return malformed("expected a parameter name at offset " + std::to_string(i));
    }
    while (i < n && isOws(s[i])) ++i;
    if (i == n || s[i] != '=') return malformed("parameter '" + p.name + "' has no '=' value");
    ++i;
    while (i < n && isOws(s[i])) ++i;
    if (i < n && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i == n) break;
          c = s[i++];
        }
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return malformed("control character in the value of '" + p.name + "'");
        }
        p.value += c;
      }
      if (!closed) return malformed("unterminated quoted value of '" + p.name + "'");
    } else {
      while (i < n && !isOws(s[i]) && !isSep(s[i])) {
        char c = s[i++];
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f ||
            c == '"') {
          return malformed("invalid character in the value of '" + p.name + "'");
        }
        p.value += c;
      }
    }
    if (p.value.empty()) return malformed("parameter '" + p.name + "' has an empty value");
    while (i < n && isOws(s[i])) ++i;
    if (i < n && !isSep(s[i])) {
      return malformed("unexpected character after the value of '" + p.name + "'");
    }
    out.push_back(std::move(p));
  }
  return out;
}

// pickParam: the single value of parameter `name` (case-insensitive); a repeated name is an error.
PushResult<std::optional<std::string>> pickParam(const std::vector<Param>& params,
                                                 std::string_view name) {
  std::optional<std::string> found;
  for (const auto& p : params) {
    if (!iequals(p.name, name)) continue;
    if (found) return malformed("parameter '" + std::string(name) + "' is given twice");
    found = p.value;
  }
  return found;
}

PushResult<Bytes> decodeKey(std::string_view text, std::string_view what) {
  auto key = auth::base64Decode(text);
  if (!key || key->size() != kP256PublicLen || !auth::isP256PublicKey(*key)) {
    return pushError(PushErrc::BadKey,
                     std::string(what) + " is not a base64url uncompressed P-256 public key");
  }
  return std::move(*key);
}

// claimExp: the exp claim in whole seconds, saturated to int64.
PushResult<int64_t> claimExp(const Json& claims) {
  auto it = claims.find("exp");
  if (it == claims.end()) return pushError(PushErrc::MissingExpiry, "the token has no exp claim");
  if (it->is_number_integer()) {
    if (it->is_number_unsigned()) {
      uint64_t v = it->get<uint64_t>();
      return v > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                               : static_cast<int64_t>(v);
    }
    return it->get<int64_t>();
  }
  if (it->is_number_float()) {
    double v = it->get<double>();
    if (!std::isfinite(v)) return pushError(PushErrc::MissingExpiry, "exp is not a finite number");
    if (v >= 9.2e18) return std::numeric_limits<int64_t>::max();
    if (v <= -9.2e18) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(std::floor(v));
  }
  return pushError(PushErrc::MissingExpiry, "exp is not a NumericDate");
}

}  // namespace

PushResult<std::string> signVapidToken(const auth::PrivateKey& key, const VapidClaims& claims) {
  if (claims.aud.empty()) return pushError(PushErrc::InvalidArgument, "aud is empty");
  if (claims.exp <= 0) return pushError(PushErrc::InvalidArgument, "exp must be positive");
  Json j = {{"aud", claims.aud}, {"exp", claims.exp}};
  if (!claims.sub.empty()) j["sub"] = claims.sub;
  auto token = auth::signJwtEs256(key, j.dump(-1, ' ', false, Json::error_handler_t::replace));
  if (!token) return pushError(PushErrc::Internal, "signing failed: " + token.error().detail);
  return std::move(*token);
}

std::string vapidAuthorization(std::string_view token, std::span<const uint8_t> publicKey) {
  return "vapid t=" + std::string(token) + ", k=" + auth::base64UrlEncode(publicKey);
}

std::string webPushAuthorization(std::string_view token) { return "WebPush " + std::string(token); }

std::string cryptoKeyHeader(std::span<const uint8_t> publicKey) {
  return "p256ecdsa=" + auth::base64UrlEncode(publicKey);
}

PushResult<VapidCredentials> parseVapidAuthorization(std::string_view authorization,
                                                     std::string_view cryptoKey) {
  if (authorization.size() > kMaxVapidHeaderLen || cryptoKey.size() > kMaxVapidHeaderLen) {
    return pushError(PushErrc::TooLarge, "VAPID header longer than " +
                                             std::to_string(kMaxVapidHeaderLen) + " bytes");
  }
  std::string_view a = trimOws(authorization);
  if (a.empty()) return pushError(PushErrc::MissingToken, "empty Authorization header");
  size_t sp = 0;
  while (sp < a.size() && !isOws(a[sp])) ++sp;
  std::string_view scheme = a.substr(0, sp);
  std::string_view rest = trimOws(a.substr(sp));
  VapidCredentials creds;

  if (iequals(scheme, "vapid")) {
    auto params = parseParams(rest, ",");
    if (!params) return params.error();
    auto t = pickParam(*params, "t");
    if (!t) return t.error();
    auto k = pickParam(*params, "k");
    if (!k) return k.error();
    if (!*t) return pushError(PushErrc::MissingToken, "vapid credentials without t=");
    if (!*k) return pushError(PushErrc::MissingKey, "vapid credentials without k=");
    auto key = decodeKey(**k, "k");
    if (!key) return key.error();
    creds.scheme = VapidScheme::Vapid;
    creds.token = std::move(**t);
    creds.publicKey = std::move(*key);
    return creds;
  }
  if (iequals(scheme, "WebPush")) {
    if (rest.empty()) return pushError(PushErrc::MissingToken, "WebPush credentials without a JWT");
    if (!isToken68(rest)) return malformed("the WebPush credentials are not one token68");
    auto params = parseParams(cryptoKey, ",;");
    if (!params) return params.error();
    auto k = pickParam(*params, "p256ecdsa");
    if (!k) return k.error();
    if (!*k) return pushError(PushErrc::MissingKey, "Crypto-Key has no p256ecdsa=");
    auto key = decodeKey(**k, "p256ecdsa");
    if (!key) return key.error();
    creds.scheme = VapidScheme::WebPush;
    creds.token = std::string(rest);
    creds.publicKey = std::move(*key);
    return creds;
  }
  return malformed("Authorization scheme '" + std::string(scheme.substr(0, 32)) +
                   "' is neither vapid nor WebPush");
}

PushResult<VapidClaims> verifyVapid(const VapidCredentials& credentials,
                                    const VapidVerifyParams& params) {
  const auto& k = credentials.publicKey;
  if (!params.applicationServerKey.empty() &&
      !std::equal(k.begin(), k.end(), params.applicationServerKey.begin(),
                  params.applicationServerKey.end())) {
    return pushError(PushErrc::WrongKey,
                     "k is not the subscription's applicationServerKey");
  }
  if (credentials.token.size() > kMaxVapidHeaderLen) {
    return pushError(PushErrc::TooLarge, "token longer than " +
                                             std::to_string(kMaxVapidHeaderLen) + " bytes");
  }
  if (!isCanonicalJws(credentials.token)) {
    return pushError(PushErrc::MalformedToken,
                     "the token is not three unpadded canonical base64url parts");
  }
  auto parts = auth::verifyJwtEs256(credentials.token, k);
  if (!parts) {
    if (parts.error().code == Errc::AuthFailed) {
      return pushError(PushErrc::BadSignature, parts.error().detail);
    }
    return pushError(PushErrc::MalformedToken, parts.error().detail);
  }
  return checkVapidClaims(parts->claims, params.origin, params.now);
}

PushResult<VapidClaims> checkVapidClaims(std::string_view claimsJson, std::string_view expectedOrigin,
                                         auth::SystemTime now) {
  Json claims = Json::parse(claimsJson, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) {
    return pushError(PushErrc::MalformedToken, "the JWT claims are not a JSON object");
  }

  VapidClaims out;
  const std::string origin = normalizeOrigin(expectedOrigin);
  auto aud = claims.find("aud");
  bool audOk = false;
  if (aud != claims.end() && aud->is_string()) {
    out.aud = aud->get<std::string>();
    audOk = normalizeOrigin(out.aud) == origin;
  } else if (aud != claims.end() && aud->is_array()) {
    for (const auto& a : *aud) {
      if (a.is_string() && normalizeOrigin(a.get<std::string>()) == origin) {
        out.aud = a.get<std::string>();
        audOk = true;
        break;
      }
    }
  }
  if (!audOk) {
    return pushError(PushErrc::WrongAudience,
                     aud == claims.end() ? "the token has no aud claim"
                                         : "aud is not the push resource's origin " + origin);
  }

  auto exp = claimExp(claims);
  if (!exp) return exp.error();
  out.exp = *exp;
  const int64_t nowSecs =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (out.exp <= nowSecs) {
    return pushError(PushErrc::Expired, "exp " + std::to_string(out.exp) + " is not after now " +
                                            std::to_string(nowSecs));
  }
  // exp > nowSecs here, so the unsigned difference is exact even when nowSecs is negative.
  if (static_cast<uint64_t>(out.exp) - static_cast<uint64_t>(nowSecs) >
      static_cast<uint64_t>(kMaxVapidLifetime.count())) {
    return pushError(PushErrc::ExpiryTooFar, "exp " + std::to_string(out.exp) +
                                                 " is more than 24 h after now " +
                                                 std::to_string(nowSecs));
  }

  if (auto sub = claims.find("sub"); sub != claims.end()) {
    if (!sub->is_string()) return pushError(PushErrc::MalformedToken, "sub is not a string");
    out.sub = sub->get<std::string>();
  }
  return out;
}

std::string normalizeOrigin(std::string_view origin) {
  std::string s(trimOws(origin));
  if (!s.empty() && s.back() == '/') s.pop_back();
  size_t sep = s.find("://");
  size_t authority = sep == std::string::npos ? 0 : sep + 3;
  // Only the scheme and the authority are case-insensitive; anything after is left as it is.
  size_t end = s.find_first_of("/?#", authority);
  if (end == std::string::npos) end = s.size();
  std::transform(s.begin(), s.begin() + static_cast<ptrdiff_t>(end), s.begin(), lower);
  if (sep == std::string::npos || end != s.size()) return s;
  std::string_view scheme(s.data(), sep);
  auto dropPort = [&](std::string_view port) {
    if (s.size() - authority > port.size() && std::string_view(s).ends_with(port)) {
      s.resize(s.size() - port.size());
    }
  };
  if (scheme == "https") {
    dropPort(":443");
  } else if (scheme == "http") {
    dropPort(":80");
  }
  return s;
}

}  // namespace ugate::webpush
