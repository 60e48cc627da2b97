#pragma once
// RFC 8188 "aes128gcm" content encoding, sans I/O: the header
//   salt(16) | rs(uint32 BE) | idlen(1) | keyid(idlen)
// followed by records of rs bytes (the last may be shorter), each AES-128-GCM over
//   data || delimiter (0x01, or 0x02 on the last record) || 0x00 padding
// with CEK and NONCE derived from the salt and the input keying material (IKM) by HKDF-SHA-256.
// Whole-message functions: the caller holds the body in memory; nothing is allocated from a size
// the body claims (rs, idlen), only from the bytes actually present.
#include <array>
#include <cstdint>
#include <limits>
#include <span>

#include "webpush/ece_crypto.h"
#include "webpush/push_error.h"

namespace ugate::webpush {

constexpr size_t kSaltLen = 16;
/** kEceHeaderFixedLen: salt, rs and idlen; the keyid follows. */
constexpr size_t kEceHeaderFixedLen = 21;
/** kMinRecordSize: the smallest valid rs, a tag plus one byte (RFC 8188 §2.1 says rs < 18 is invalid). */
constexpr uint32_t kMinRecordSize = 18;
/** kRecordOverhead: the delimiter and the tag each record adds to its data and padding. */
constexpr size_t kRecordOverhead = 1 + kGcmTagLen;

/** EceHeader: the parsed aes128gcm header. */
struct EceHeader {
  std::array<uint8_t, kSaltLen> salt{};
  uint32_t rs{0};
  Bytes keyid;
  /** size: bytes the header takes on the wire. */
  size_t size() const { return kEceHeaderFixedLen + keyid.size(); }
};

/**
 * parseEceHeader reads the header at the start of body (untrusted).
 * @return Truncated when body ends inside it, RecordSizeTooSmall when rs < 18.
 */
PushResult<EceHeader> parseEceHeader(std::span<const uint8_t> body);

/** EceKeys: the content-encryption key and base nonce of one salt + IKM (RFC 8188 §2.2, §2.3). */
struct EceKeys {
  std::array<uint8_t, kCekLen> cek{};
  std::array<uint8_t, kGcmNonceLen> nonce{};
};
/** deriveEceKeys: PRK = HMAC-SHA-256(salt, ikm); CEK and NONCE by HKDF-Expand with their info. */
EceKeys deriveEceKeys(std::span<const uint8_t> salt, std::span<const uint8_t> ikm);

/** kMaxEceEncodedSize: no encoding is larger than this (1 GiB), whatever maxBody allows. */
constexpr size_t kMaxEceEncodedSize = size_t{1} << 30;

/** EceEncodeParams: what aes128gcmEncode needs besides the plaintext. Spans must outlive the call. */
struct EceEncodeParams {
  /** ikm: the input keying material (a pre-shared key, or RFC 8291's derived IKM). */
  std::span<const uint8_t> ikm;
  /** salt: must be fresh and random for every message (RFC 8188 §2.1). */
  std::array<uint8_t, kSaltLen> salt{};
  /** rs: the record size, at least 18. */
  uint32_t rs{4096};
  /** keyid: at most 255 bytes, written to the header verbatim. */
  std::span<const uint8_t> keyid;
  /** padding: zero bytes to add in total; spent from the first record on, greedily. */
  size_t padding{0};
  /** maxBody: the largest encoded body accepted (capped at kMaxEceEncodedSize); TooLarge above it. */
  size_t maxBody{std::numeric_limits<size_t>::max()};
};

/**
 * aes128gcmEncode encrypts plaintext into a complete aes128gcm body (header and records). Every
 * record but the last is exactly rs bytes; records are as full as the padding leaves them.
 * @return the body; RecordSizeTooSmall, InvalidArgument (keyid > 255 bytes) or TooLarge.
 */
PushResult<Bytes> aes128gcmEncode(std::span<const uint8_t> plaintext, const EceEncodeParams& params);

/** EceDecodeLimits: caps applied to untrusted bodies. */
struct EceDecodeLimits {
  /** maxPlaintext: the largest plaintext returned; TooLarge above it. */
  size_t maxPlaintext{std::numeric_limits<size_t>::max()};
  /** maxRecordSize: the largest rs accepted; TooLarge above it. */
  uint32_t maxRecordSize{std::numeric_limits<uint32_t>::max()};
};

/**
 * aes128gcmDecodeRecords decrypts the records that follow a parsed header (records = the body
 * after header.size() bytes) and checks each record's delimiter: 0x01 on all but the last, 0x02
 * on the last (a last record carrying 0x01 means the body was cut: Truncated).
 * @return the plaintext, or Truncated, DecryptFailed, BadPadding, BadDelimiter, TooLarge.
 */
PushResult<Bytes> aes128gcmDecodeRecords(const EceHeader& header, std::span<const uint8_t> records,
                                         std::span<const uint8_t> ikm,
                                         const EceDecodeLimits& limits = {});

/** aes128gcmDecode: parseEceHeader then aes128gcmDecodeRecords on a whole body. */
PushResult<Bytes> aes128gcmDecode(std::span<const uint8_t> body, std::span<const uint8_t> ikm,
                                  const EceDecodeLimits& limits = {});

}  // namespace ugate::webpush
