// libFuzzer target for the VAPID (RFC 8292) header parsers and the token checks behind them
// (src/webpush/vapid.h). The input up to the first '\n' is the Authorization value, the rest the
// Crypto-Key value; both go through parseVapidAuthorization and, when that succeeds, verifyVapid
// against the RFC's push origin at the RFC token's time (restricted to the RFC key when byte 0 is
// odd). The whole input also goes through checkVapidClaims as a claims object, which a fuzzer
// could not reach behind a signature. Properties: a parsed key is a 65-byte point; verified claims
// have the expected origin and an exp within (now, now + 24 h]; every failure has a detail.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/encoding.h"
#include "webpush/vapid.h"

namespace {

using namespace ugate::webpush;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::string_view kOrigin = "https://push.example.net";
constexpr int64_t kNow = 1453523768 - 3600;
const std::vector<uint8_t> kRfcKey = *ugate::auth::base64Decode(
    "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs");

void checkClaims(const PushResult<VapidClaims>& claims) {
  if (!claims) {
    check(!claims.error().detail.empty());
    return;
  }
  check(normalizeOrigin(claims->aud) == kOrigin);
  check(claims->exp > kNow && claims->exp <= kNow + 86400);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string_view authorization = in.substr(0, nl);
  std::string_view cryptoKey = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  const auto now = ugate::auth::SystemTime(std::chrono::seconds(kNow));

  auto creds = parseVapidAuthorization(authorization, cryptoKey);
  if (creds) {
    check(creds->publicKey.size() == 65 && !creds->token.empty());
    VapidVerifyParams p;
    p.origin = kOrigin;
    p.now = now;
    if (size > 0 && (data[0] & 1) != 0) p.applicationServerKey = kRfcKey;
    checkClaims(verifyVapid(*creds, p));
  } else {
    check(!creds.error().detail.empty());
  }
  checkClaims(checkVapidClaims(in, kOrigin, now));
  return 0;
}
