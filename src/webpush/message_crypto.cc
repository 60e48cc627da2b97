#include "webpush/message_crypto.h"

#include <string>
#include <string_view>

#include "auth/encoding.h"

namespace ugate::webpush {

namespace {
constexpr std::string_view kKeyInfo{"WebPush: info\0", 14};

PushError badAuthSecret(size_t n) {
  return pushError(PushErrc::BadKey,
                   "the auth secret is 16 bytes, got " + std::to_string(n));
}
}  // namespace

PushResult<SubscriptionKeys> generateSubscriptionKeys() {
  auto key = EcdhKey::generate();
  if (!key) return key.error();
  SubscriptionKeys keys;
  keys.key = std::move(*key);
  randomBytes(keys.auth);
  return keys;
}

std::array<uint8_t, 32> deriveWebPushIkm(std::span<const uint8_t> ecdhSecret,
                                         std::span<const uint8_t> authSecret,
                                         std::span<const uint8_t> uaPublic,
                                         std::span<const uint8_t> asPublic) {
  auto prk = hkdfExtract(authSecret, ecdhSecret);
  Bytes info;
  info.reserve(kKeyInfo.size() + uaPublic.size() + asPublic.size());
  auto label = auth::asBytes(kKeyInfo);
  info.insert(info.end(), label.begin(), label.end());
  info.insert(info.end(), uaPublic.begin(), uaPublic.end());
  info.insert(info.end(), asPublic.begin(), asPublic.end());
  std::array<uint8_t, 32> ikm{};
  hkdfExpand(prk, info, ikm);
  return ikm;
}

PushResult<Bytes> encryptPushMessage(std::span<const uint8_t> plaintext,
                                     std::span<const uint8_t> uaPublic,
                                     std::span<const uint8_t> authSecret,
                                     const PushEncryptOptions& options) {
  if (authSecret.size() != kAuthSecretLen) return badAuthSecret(authSecret.size());
  if (options.rs < kMinRecordSize) {
    return pushError(PushErrc::RecordSizeTooSmall,
                     "record size " + std::to_string(options.rs) + " is below the minimum 18");
  }
  // RFC 8291 §4: one record, so data, delimiter, padding and tag must fit in rs.
  if (plaintext.size() > options.rs || options.padding > options.rs ||
      plaintext.size() + options.padding + kRecordOverhead > options.rs) {
    return pushError(PushErrc::TooLarge, "plaintext of " + std::to_string(plaintext.size()) +
                                             " bytes and padding do not fit one record of " +
                                             std::to_string(options.rs));
  }
  EcdhKey ephemeral = options.ephemeralKeyForTest;
  if (!ephemeral.valid()) {
    auto generated = EcdhKey::generate();
    if (!generated) return generated.error();
    ephemeral = std::move(*generated);
  }
  auto secret = ephemeral.agree(uaPublic);
  if (!secret) return pushError(PushErrc::BadKey, "p256dh: " + secret.error().detail);
  auto ikm = deriveWebPushIkm(*secret, authSecret, uaPublic, ephemeral.publicKey());

  EceEncodeParams p;
  p.ikm = ikm;
  if (options.saltForTest) {
    p.salt = *options.saltForTest;
  } else {
    randomBytes(p.salt);
  }
  p.rs = options.rs;
  p.keyid = ephemeral.publicKey();
  p.padding = options.padding;
  p.maxBody = options.maxBody;
  return aes128gcmEncode(plaintext, p);
}

PushResult<Bytes> decryptPushMessage(std::span<const uint8_t> body, const EcdhKey& uaKey,
                                     std::span<const uint8_t> authSecret, size_t maxBody) {
  if (authSecret.size() != kAuthSecretLen) return badAuthSecret(authSecret.size());
  if (!uaKey.valid()) return pushError(PushErrc::BadKey, "no subscription key");
  if (body.size() > maxBody) {
    return pushError(PushErrc::TooLarge, "body of " + std::to_string(body.size()) +
                                             " bytes exceeds the limit of " + std::to_string(maxBody));
  }
  auto header = parseEceHeader(body);
  if (!header) return header.error();
  if (header->keyid.size() != kP256PublicLen) {
    return pushError(PushErrc::BadKeyId, "keyid of " + std::to_string(header->keyid.size()) +
                                             " bytes is not a 65-byte P-256 public key");
  }
  auto records = body.subspan(header->size());
  if (records.size() > header->rs) {
    return pushError(PushErrc::MultipleRecords, "a push message has one record; " +
                                                    std::to_string(records.size()) +
                                                    " bytes exceed rs " +
                                                    std::to_string(header->rs));
  }
  auto secret = uaKey.agree(header->keyid);
  if (!secret) {
    if (secret.error().code == PushErrc::BadKey) {
      return pushError(PushErrc::BadKeyId, "keyid: " + secret.error().detail);
    }
    return secret.error();
  }
  auto ikm = deriveWebPushIkm(*secret, authSecret, uaKey.publicKey(), header->keyid);
  return aes128gcmDecodeRecords(*header, records, ikm);
}

}  // namespace ugate::webpush
