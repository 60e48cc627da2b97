#pragma once
// RFC 8291 message encryption for Web Push, sans I/O: an application server encrypts for a
// subscription's p256dh key and auth secret with a fresh ephemeral P-256 key (sent as the
// aes128gcm keyid); the user agent decrypts with its private key and the same auth secret.
//   ecdh_secret = ECDH(ephemeral, ua_public)
//   IKM = HKDF(salt=auth_secret, ikm=ecdh_secret, info="WebPush: info" 0x00 ua_public as_public, L=32)
//   then RFC 8188 with a random salt, keyid = as_public, one record only.
#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "webpush/aes128gcm.h"
#include "webpush/ece_crypto.h"
#include "webpush/push_error.h"

namespace ugate::webpush {

/** kAuthSecretLen: the subscription's authentication secret (RFC 8291 §3.2). */
constexpr size_t kAuthSecretLen = 16;
/** kMaxPushBody: the body size a push service must always accept (RFC 8030 §7.2). */
constexpr size_t kMaxPushBody = 4096;
/** kMaxPushPlaintext: the plaintext that fits in kMaxPushBody (4096 - 86 - 1 - 16, RFC 8291 §4). */
constexpr size_t kMaxPushPlaintext = 3993;

/** SubscriptionKeys: what a user agent creates for a subscription and keeps secret. */
struct SubscriptionKeys {
  /** key: the P-256 key pair; its public point is the subscription's `p256dh`. */
  EcdhKey key;
  /** auth: the 16-byte `auth` secret. */
  std::array<uint8_t, kAuthSecretLen> auth{};
};
/** generateSubscriptionKeys: a fresh key pair and auth secret from the CSPRNG. */
PushResult<SubscriptionKeys> generateSubscriptionKeys();

/**
 * deriveWebPushIkm: the RFC 8291 §3.4 input keying material from an ECDH secret, the auth secret
 * and both public keys (the user agent's first).
 */
std::array<uint8_t, 32> deriveWebPushIkm(std::span<const uint8_t> ecdhSecret,
                                         std::span<const uint8_t> authSecret,
                                         std::span<const uint8_t> uaPublic,
                                         std::span<const uint8_t> asPublic);

/** PushEncryptOptions: record size, padding and limits of one encryption. */
struct PushEncryptOptions {
  /** rs: the record size written to the header; the single record must fit in it. */
  uint32_t rs{4096};
  /** padding: zero bytes added after the delimiter (hides the plaintext length). */
  size_t padding{0};
  /** maxBody: the largest body produced; TooLarge above it. */
  size_t maxBody{kMaxPushBody};
  /** saltForTest: a fixed salt (test vectors only; a real message needs a fresh random one). */
  std::optional<std::array<uint8_t, kSaltLen>> saltForTest;
  /** ephemeralKeyForTest: a fixed application-server key (test vectors only). */
  EcdhKey ephemeralKeyForTest;
};

/**
 * encryptPushMessage encrypts plaintext for one subscription (application server side).
 * @param uaPublic the subscription's p256dh (65-byte uncompressed point).
 * @param authSecret the subscription's auth secret (16 bytes).
 * @return the aes128gcm body; BadKey for bad keys, TooLarge when the single record does not fit
 *         rs or the body exceeds maxBody.
 */
PushResult<Bytes> encryptPushMessage(std::span<const uint8_t> plaintext,
                                     std::span<const uint8_t> uaPublic,
                                     std::span<const uint8_t> authSecret,
                                     const PushEncryptOptions& options = {});

/**
 * decryptPushMessage decrypts a push message body (user agent side, untrusted input).
 * @param uaKey the subscription's key pair.
 * @param authSecret the subscription's auth secret.
 * @param maxBody bodies larger than this are refused (TooLarge) before any work.
 * @return the plaintext; Truncated, RecordSizeTooSmall, BadKeyId, MultipleRecords, DecryptFailed,
 *         BadPadding, BadDelimiter or TooLarge.
 */
PushResult<Bytes> decryptPushMessage(std::span<const uint8_t> body, const EcdhKey& uaKey,
                                     std::span<const uint8_t> authSecret,
                                     size_t maxBody = kMaxPushBody);

}  // namespace ugate::webpush
