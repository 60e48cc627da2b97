// libFuzzer target for the RFC 8188 aes128gcm decoder and the RFC 8291 decryption in front of it
// (src/webpush). Byte 0 picks the mode, the rest is the body:
//   0: aes128gcm decode with the IKM of RFC 8188 §3.1    1: ... with the IKM of §3.2
//   2: RFC 8291 decrypt with the Appendix A subscription key and auth secret
//   3: encode the rest (rs and padding from its first two bytes) and decode it back
//   4: the rest (after an rs byte) is cut into record plaintexts, which the harness seals itself, so
//      the delimiter, padding and truncation rules behind the tag are fuzzed against a model
// The seeds are the RFCs' bodies, so mutations start from records that authenticate. Properties:
// a decoded plaintext is never longer than the body; whatever decodes re-encodes (same salt, rs,
// keyid) to a body that decodes to the same plaintext; an encoded body always decodes back; sealed
// records decode exactly as the model of RFC 8188's delimiter rules says.
#include <array>
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

// sealedRecords: mode 4. Record plaintexts of rs - 16 bytes (the last one shorter) are sealed with
// the §3.1 IKM and decoded; the outcome must match the model below.
void sealedRecords(std::span<const uint8_t> in) {
  if (in.empty()) return;
  const uint32_t rs = kMinRecordSize + in[0] % 48;
  std::span<const uint8_t> rest = in.subspan(1);
  if (rest.empty()) return;
  std::array<uint8_t, kSaltLen> salt{};
  std::vector<uint8_t> body(salt.begin(), salt.end());
  for (int sh = 24; sh >= 0; sh -= 8) body.push_back(static_cast<uint8_t>(rs >> sh));
  body.push_back(0);
  const EceKeys keys = deriveEceKeys(salt, kIkm31);
  const Aes128GcmKey aead(keys.cek);

  std::vector<uint8_t> expected;
  bool decided = false;
  PushErrc expectedError{};
  const size_t chunk = rs - kGcmTagLen;
  for (size_t pos = 0, seq = 0; pos < rest.size(); pos += chunk, ++seq) {
    auto rec = rest.subspan(pos, std::min(chunk, rest.size() - pos));
    auto nonce = keys.nonce;
    for (size_t i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
    size_t at = body.size();
    body.resize(at + rec.size() + kGcmTagLen);
    check(aead.seal(nonce, rec, std::span<uint8_t>(body).subspan(at)));
    if (decided) continue;
    const bool final = pos + rec.size() == rest.size();
    size_t d = rec.size();
    while (d > 0 && rec[d - 1] == 0) --d;
    if (d == 0) {
      decided = true;
      expectedError = PushErrc::BadPadding;
    } else if (rec[d - 1] == 2 && !final) {
      decided = true;
      expectedError = PushErrc::BadDelimiter;
    } else if (rec[d - 1] == 1 && final) {
      decided = true;
      expectedError = PushErrc::Truncated;
    } else if (rec[d - 1] != 1 && rec[d - 1] != 2) {
      decided = true;
      expectedError = PushErrc::BadDelimiter;
    } else {
      expected.insert(expected.end(), rec.begin(), rec.begin() + static_cast<ptrdiff_t>(d - 1));
    }
  }
  auto got = aes128gcmDecode(body, kIkm31);
  if (decided) {
    check(!got && got.error().code == expectedError);
  } else {
    check(got && *got == expected);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> body(data + 1, size - 1);
  switch (data[0] % 5) {
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
    case 4: sealedRecords(body); break;
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
