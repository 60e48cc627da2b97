#pragma once
// The primitives Web Push encryption needs beyond src/auth's (ECDH on P-256, HKDF-SHA-256,
// AES-128-GCM records, random bytes), behind one backend file (ece_crypto_boringssl.cc) so that
// nothing else in src/webpush names a BoringSSL type. Sans I/O; every object is immutable after
// creation and safe to use from several threads.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "auth/crypto.h"
#include "webpush/push_error.h"

namespace ugate::webpush {

using Bytes = std::vector<uint8_t>;

/** kP256PublicLen: an uncompressed P-256 point, 0x04 || X || Y (auth::kPublicKeyLen). */
constexpr size_t kP256PublicLen = auth::kPublicKeyLen;
/** kP256PrivateLen: a P-256 private scalar, big-endian. */
constexpr size_t kP256PrivateLen = 32;
constexpr size_t kEcdhSecretLen = 32;
constexpr size_t kGcmTagLen = 16;
constexpr size_t kGcmNonceLen = 12;
constexpr size_t kCekLen = 16;

/** EcdhKey: a P-256 key pair used for ECDH (a subscription's p256dh key, an ephemeral key). */
class EcdhKey {
 public:
  struct Impl;  // Impl: defined by the backend
  EcdhKey() = default;
  /** generate creates a fresh key pair from the CSPRNG. */
  static PushResult<EcdhKey> generate();
  /**
   * fromPrivate rebuilds a key pair from its 32-byte scalar (stored subscription state, test vectors).
   * @return BadKey when the scalar is not in [1, n-1].
   */
  static PushResult<EcdhKey> fromPrivate(std::span<const uint8_t> scalar);

  bool valid() const { return impl_ != nullptr; }
  /** publicKey: the 65-byte uncompressed point. */
  const Bytes& publicKey() const;
  /** privateKey: the 32-byte scalar (secret: store it like a private key). */
  Bytes privateKey() const;
  /**
   * agree computes the ECDH shared secret (the x coordinate) with a peer's uncompressed point.
   * @return BadKey when peerPublic is not a point on P-256.
   */
  PushResult<std::array<uint8_t, kEcdhSecretLen>> agree(std::span<const uint8_t> peerPublic) const;

 private:
  explicit EcdhKey(std::shared_ptr<const Impl> i) : impl_(std::move(i)) {}
  std::shared_ptr<const Impl> impl_;
};

/** hkdfExtract: HKDF-Extract with SHA-256 (RFC 5869), i.e. HMAC-SHA-256(salt, ikm). */
std::array<uint8_t, 32> hkdfExtract(std::span<const uint8_t> salt, std::span<const uint8_t> ikm);
/** hkdfExpand: HKDF-Expand with SHA-256 filling out (at most 255 * 32 bytes). */
void hkdfExpand(std::span<const uint8_t, 32> prk, std::span<const uint8_t> info,
                std::span<uint8_t> out);
/** randomBytes fills out from the CSPRNG. */
void randomBytes(std::span<uint8_t> out);

/** Aes128GcmKey: one AES-128-GCM key (a content-encryption key) with an empty AAD. */
class Aes128GcmKey {
 public:
  struct Impl;
  explicit Aes128GcmKey(std::span<const uint8_t, kCekLen> key);
  ~Aes128GcmKey();
  Aes128GcmKey(Aes128GcmKey&&) noexcept;
  Aes128GcmKey& operator=(Aes128GcmKey&&) noexcept;

  /** seal encrypts in into out, which must hold in.size() + kGcmTagLen bytes. @return success. */
  bool seal(std::span<const uint8_t, kGcmNonceLen> nonce, std::span<const uint8_t> in,
            std::span<uint8_t> out) const;
  /**
   * open decrypts and authenticates in (ciphertext || tag) into out, which must hold
   * in.size() - kGcmTagLen bytes. @return false when the tag does not verify.
   */
  bool open(std::span<const uint8_t, kGcmNonceLen> nonce, std::span<const uint8_t> in,
            std::span<uint8_t> out) const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ugate::webpush
