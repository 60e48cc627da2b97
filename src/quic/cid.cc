#include "quic/cid.h"

#include <openssl/aes.h>
#include <openssl/rand.h>

#include <cstring>

namespace ugate::quic {

namespace {
// A CID that decrypts to this check value is ours (a random one passes with probability 2^-16;
// the worker index is then checked against the worker count by the caller).
constexpr uint8_t kCheck0 = 0x75, kCheck1 = 0x67;
}  // namespace

struct CidCodec::Impl {
  AES_KEY enc;
  AES_KEY dec;
};

CidCodec::CidCodec() : impl_(new Impl) {
  Key k;
  RAND_bytes(k.data(), k.size());
  AES_set_encrypt_key(k.data(), 128, &impl_->enc);
  AES_set_decrypt_key(k.data(), 128, &impl_->dec);
}

CidCodec::CidCodec(const Key& key) : impl_(new Impl) {
  AES_set_encrypt_key(key.data(), 128, &impl_->enc);
  AES_set_decrypt_key(key.data(), 128, &impl_->dec);
}

CidCodec::~CidCodec() { delete impl_; }

void CidCodec::make(uint16_t worker, std::span<uint8_t, kLen> out) const {
  uint8_t block[kLen];
  block[0] = kCheck0;
  block[1] = kCheck1;
  block[2] = static_cast<uint8_t>(worker >> 8);
  block[3] = static_cast<uint8_t>(worker);
  RAND_bytes(block + 4, kLen - 4);
  AES_encrypt(block, out.data(), &impl_->enc);
}

std::optional<uint16_t> CidCodec::workerOf(std::span<const uint8_t> cid) const {
  if (cid.size() != kLen) return std::nullopt;
  uint8_t block[kLen];
  AES_decrypt(cid.data(), block, &impl_->dec);
  if (block[0] != kCheck0 || block[1] != kCheck1) return std::nullopt;
  return static_cast<uint16_t>((block[2] << 8) | block[3]);
}

}  // namespace ugate::quic
