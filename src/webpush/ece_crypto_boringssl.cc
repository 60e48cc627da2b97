// The BoringSSL backend of ece_crypto.h: the only file of src/webpush that calls BoringSSL.
#include <openssl/aead.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdh.h>
#include <openssl/err.h>
#include <openssl/digest.h>
#include <openssl/hkdf.h>
#include <openssl/nid.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "webpush/ece_crypto.h"

namespace ugate::webpush {

struct EcdhKey::Impl {
  bssl::UniquePtr<EC_KEY> key;
  Bytes pub;
};

struct Aes128GcmKey::Impl {
  bssl::ScopedEVP_AEAD_CTX ctx;
};

namespace {

// p256: BoringSSL's built-in group is static and need not be freed.
const EC_GROUP* p256() {
  static const EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  return group;
}

// encodePublic writes the uncompressed point of key; false when it cannot be encoded.
bool encodePublic(const EC_KEY* key, Bytes& out) {
  out.assign(kP256PublicLen, 0);
  size_t n = EC_POINT_point2oct(p256(), EC_KEY_get0_public_key(key), POINT_CONVERSION_UNCOMPRESSED,
                                out.data(), out.size(), nullptr);
  return n == kP256PublicLen;
}

}  // namespace

PushResult<EcdhKey> EcdhKey::generate() {
  auto impl = std::make_shared<Impl>();
  impl->key.reset(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (!impl->key || !EC_KEY_generate_key(impl->key.get()) || !encodePublic(impl->key.get(), impl->pub)) {
    ERR_clear_error();
    return pushError(PushErrc::Internal, "P-256 key generation failed");
  }
  return EcdhKey(std::move(impl));
}

PushResult<EcdhKey> EcdhKey::fromPrivate(std::span<const uint8_t> scalar) {
  if (scalar.size() != kP256PrivateLen) {
    return pushError(PushErrc::BadKey, "a P-256 private key is 32 bytes, got " +
                                           std::to_string(scalar.size()));
  }
  auto impl = std::make_shared<Impl>();
  impl->key.reset(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<BIGNUM> d(BN_bin2bn(scalar.data(), scalar.size(), nullptr));
  bssl::UniquePtr<EC_POINT> q(EC_POINT_new(p256()));
  if (!impl->key || !d || !q) {
    ERR_clear_error();
    return pushError(PushErrc::Internal, "out of memory");
  }
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(p256())) >= 0 ||
      !EC_KEY_set_private_key(impl->key.get(), d.get()) ||
      !EC_POINT_mul(p256(), q.get(), d.get(), nullptr, nullptr, nullptr) ||
      !EC_KEY_set_public_key(impl->key.get(), q.get()) || !encodePublic(impl->key.get(), impl->pub)) {
    ERR_clear_error();
    return pushError(PushErrc::BadKey, "the private key is not a valid P-256 scalar");
  }
  return EcdhKey(std::move(impl));
}

const Bytes& EcdhKey::publicKey() const {
  static const Bytes kEmpty;
  return impl_ ? impl_->pub : kEmpty;
}

Bytes EcdhKey::privateKey() const {
  Bytes out(kP256PrivateLen);
  if (!impl_ || !BN_bn2bin_padded(out.data(), out.size(), EC_KEY_get0_private_key(impl_->key.get()))) {
    return {};
  }
  return out;
}

PushResult<std::array<uint8_t, kEcdhSecretLen>> EcdhKey::agree(
    std::span<const uint8_t> peerPublic) const {
  if (!impl_) return pushError(PushErrc::BadKey, "no key");
  if (peerPublic.size() != kP256PublicLen || peerPublic[0] != 0x04) {
    return pushError(PushErrc::BadKey, "the peer key is not a 65-byte uncompressed P-256 point");
  }
  bssl::UniquePtr<EC_POINT> peer(EC_POINT_new(p256()));
  if (!peer || !EC_POINT_oct2point(p256(), peer.get(), peerPublic.data(), peerPublic.size(), nullptr)) {
    ERR_clear_error();
    return pushError(PushErrc::BadKey, "the peer key is not a point on P-256");
  }
  std::array<uint8_t, kEcdhSecretLen> secret{};
  if (ECDH_compute_key(secret.data(), secret.size(), peer.get(), impl_->key.get(), nullptr) !=
      static_cast<int>(secret.size())) {
    ERR_clear_error();
    return pushError(PushErrc::Internal, "ECDH failed");
  }
  return secret;
}

std::array<uint8_t, 32> hkdfExtract(std::span<const uint8_t> salt, std::span<const uint8_t> ikm) {
  std::array<uint8_t, 32> prk{};
  size_t len = 0;
  if (!HKDF_extract(prk.data(), &len, EVP_sha256(), ikm.data(), ikm.size(), salt.data(), salt.size())) {
    std::abort();  // only fails on allocation failure inside HMAC; a broken invariant
  }
  return prk;
}

void hkdfExpand(std::span<const uint8_t, 32> prk, std::span<const uint8_t> info,
                std::span<uint8_t> out) {
  if (!HKDF_expand(out.data(), out.size(), EVP_sha256(), prk.data(), prk.size(), info.data(),
                   info.size())) {
    std::abort();  // out longer than 255 * 32 is a programming error
  }
}

void randomBytes(std::span<uint8_t> out) { RAND_bytes(out.data(), out.size()); }

Aes128GcmKey::Aes128GcmKey(std::span<const uint8_t, kCekLen> key) : impl_(std::make_unique<Impl>()) {
  if (!EVP_AEAD_CTX_init(impl_->ctx.get(), EVP_aead_aes_128_gcm(), key.data(), key.size(),
                         kGcmTagLen, nullptr)) {
    std::abort();  // a 16-byte key with the default tag length cannot be refused
  }
}
Aes128GcmKey::~Aes128GcmKey() = default;
Aes128GcmKey::Aes128GcmKey(Aes128GcmKey&&) noexcept = default;
Aes128GcmKey& Aes128GcmKey::operator=(Aes128GcmKey&&) noexcept = default;

bool Aes128GcmKey::seal(std::span<const uint8_t, kGcmNonceLen> nonce, std::span<const uint8_t> in,
                        std::span<uint8_t> out) const {
  size_t outLen = 0;
  return EVP_AEAD_CTX_seal(impl_->ctx.get(), out.data(), &outLen, out.size(), nonce.data(),
                           nonce.size(), in.data(), in.size(), nullptr, 0) == 1 &&
         outLen == in.size() + kGcmTagLen;
}

bool Aes128GcmKey::open(std::span<const uint8_t, kGcmNonceLen> nonce, std::span<const uint8_t> in,
                        std::span<uint8_t> out) const {
  size_t outLen = 0;
  bool ok = EVP_AEAD_CTX_open(impl_->ctx.get(), out.data(), &outLen, out.size(), nonce.data(),
                              nonce.size(), in.data(), in.size(), nullptr, 0) == 1;
  if (!ok) ERR_clear_error();
  return ok && outLen + kGcmTagLen == in.size();
}

}  // namespace ugate::webpush
