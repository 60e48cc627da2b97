// libFuzzer target for the RFC 8188 aes128gcm decoder and the RFC 8291 decryption in front of it
// (src/webpush). Byte 0 picks the mode, the rest is the body:
//   0: aes128gcm decode with the IKM of RFC 8188 §3.1    1: ... with the IKM of §3.2
//   2: RFC 8291 decrypt with the Appendix A subscription key and auth secret
//   3: encode the rest (rs and padding from its first two bytes) and decode it back
// The seeds are the RFCs' bodies, so mutations start from records that authenticate. Properties:
// a decoded plaintext is never longer than the body; whatever decodes re-encodes (same salt, rs,
// keyid) to a body that decodes to the same plaintext; an encoded body always decodes back.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "auth/encoding.h"
#include "webpush/aes128gcm.h"
#include "webpush/message_crypto.h"

namespace {

using namespace ugate::webpush;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

const std::vector<uint8_t> kIkm31 = *ugate::auth::base64Decode("yqdlZ-tYemfogSmv7Ws5PQ");
const std::vector<uint8_t> kIkm32 = *ugate::auth::base64Decode("BO3ZVPxUlnLORbVGMpbT1Q");
const std::vector<uint8_t> kAuth = *ugate::auth::base64Decode("BTBZMqHH6r4Tts7J_aSIgg");
const EcdhKey kUa = *EcdhKey::fromPrivate(
    *ugate::auth::base64Decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"));

void decodeAndReencode(std::span<const uint8_t> body, std::span<const uint8_t> ikm) {
  auto plain = aes128gcmDecode(body, ikm, EceDecodeLimits{.maxPlaintext = 1 << 16});
  if (!plain) {
    check(!plain.error().detail.empty());
    return;
  }
  check(plain->size() <= body.size());
  auto header = parseEceHeader(body);
  check(static_cast<bool>(header));
  EceEncodeParams p;
  p.ikm = ikm;
  p.salt = header->salt;
  p.rs = header->rs;
  p.keyid = header->keyid;
  auto again = aes128gcmEncode(*plain, p);
  check(static_cast<bool>(again));
  auto back = aes128gcmDecode(*again, ikm);
  check(back && *back == *plain);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> body(data + 1, size - 1);
  switch (data[0] & 3) {
    case 0: decodeAndReencode(body, kIkm31); break;
    case 1: decodeAndReencode(body, kIkm32); break;
    case 2: {
      auto plain = decryptPushMessage(body, kUa, kAuth);
      if (plain) {
        check(plain->size() + 86 + 17 <= body.size());
      } else {
        check(!plain.error().detail.empty());
      }
      break;
    }
    default: {
      if (body.size() < 2) return 0;
      EceEncodeParams p;
      p.ikm = kIkm31;
      p.rs = kMinRecordSize + body[0];
      p.padding = body[1] % 64;
      auto plainIn = body.subspan(2);
      auto enc = aes128gcmEncode(plainIn, p);
      check(static_cast<bool>(enc));
      auto dec = aes128gcmDecode(*enc, kIkm31);
      check(dec && dec->size() == plainIn.size() &&
            std::equal(dec->begin(), dec->end(), plainIn.begin()));
      break;
    }
  }
  return 0;
}
