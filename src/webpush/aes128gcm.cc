#include "webpush/aes128gcm.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "auth/encoding.h"

namespace ugate::webpush {

namespace {

constexpr std::string_view kCekInfo{"Content-Encoding: aes128gcm\0", 28};
constexpr std::string_view kNonceInfo{"Content-Encoding: nonce\0", 24};

// recordNonce: the base nonce XOR the record sequence number as a 96-bit big-endian integer.
std::array<uint8_t, kGcmNonceLen> recordNonce(const std::array<uint8_t, kGcmNonceLen>& base,
                                              uint64_t seq) {
  std::array<uint8_t, kGcmNonceLen> n = base;
  for (size_t i = 0; i < 8; ++i) n[kGcmNonceLen - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
  return n;
}

}  // namespace

PushResult<EceHeader> parseEceHeader(std::span<const uint8_t> body) {
  if (body.size() < kEceHeaderFixedLen) {
    return pushError(PushErrc::Truncated, "aes128gcm header needs 21 bytes, body has " +
                                              std::to_string(body.size()));
  }
  EceHeader h;
  std::copy_n(body.begin(), kSaltLen, h.salt.begin());
  h.rs = (uint32_t{body[16]} << 24) | (uint32_t{body[17]} << 16) | (uint32_t{body[18]} << 8) |
         uint32_t{body[19]};
  size_t idlen = body[20];
  if (h.rs < kMinRecordSize) {
    return pushError(PushErrc::RecordSizeTooSmall,
                     "record size " + std::to_string(h.rs) + " is below the minimum 18");
  }
  if (body.size() < kEceHeaderFixedLen + idlen) {
    return pushError(PushErrc::Truncated, "aes128gcm header ends inside its " +
                                              std::to_string(idlen) + "-byte keyid");
  }
  h.keyid.assign(body.begin() + kEceHeaderFixedLen, body.begin() + kEceHeaderFixedLen + idlen);
  return h;
}

EceKeys deriveEceKeys(std::span<const uint8_t> salt, std::span<const uint8_t> ikm) {
  auto prk = hkdfExtract(salt, ikm);
  EceKeys k;
  hkdfExpand(prk, auth::asBytes(kCekInfo), k.cek);
  hkdfExpand(prk, auth::asBytes(kNonceInfo), k.nonce);
  return k;
}

PushResult<Bytes> aes128gcmEncode(std::span<const uint8_t> plaintext, const EceEncodeParams& p) {
  if (p.rs < kMinRecordSize) {
    return pushError(PushErrc::RecordSizeTooSmall,
                     "record size " + std::to_string(p.rs) + " is below the minimum 18");
  }
  if (p.keyid.size() > 255) {
    return pushError(PushErrc::InvalidArgument, "keyid is longer than 255 bytes");
  }
  // Every record carries up to `cap` bytes of data and padding, plus its delimiter and tag; all
  // records but the last are full, so the count and the size are known before any work.
  const size_t cap = p.rs - kRecordOverhead;
  const size_t header = kEceHeaderFixedLen + p.keyid.size();
  size_t inner = 0;
  size_t total = 0;
  if (__builtin_add_overflow(plaintext.size(), p.padding, &inner)) {
    return pushError(PushErrc::TooLarge, "plaintext and padding overflow a size");
  }
  const size_t records = inner == 0 ? 1 : inner / cap + (inner % cap != 0 ? 1 : 0);
  if (__builtin_mul_overflow(records, kRecordOverhead, &total) ||
      __builtin_add_overflow(total, inner, &total) || __builtin_add_overflow(total, header, &total) ||
      total > std::min(p.maxBody, kMaxEceEncodedSize)) {
    return pushError(PushErrc::TooLarge, "the encoded body exceeds the limit of " +
                                             std::to_string(std::min(p.maxBody, kMaxEceEncodedSize)) +
                                             " bytes");
  }

  Bytes out;
  out.reserve(total);
  out.insert(out.end(), p.salt.begin(), p.salt.end());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(p.rs >> shift));
  out.push_back(static_cast<uint8_t>(p.keyid.size()));
  out.insert(out.end(), p.keyid.begin(), p.keyid.end());

  const EceKeys keys = deriveEceKeys(p.salt, p.ikm);
  const Aes128GcmKey aead(keys.cek);
  Bytes record;
  record.reserve(std::min(cap, inner) + 1);
  size_t pos = 0;
  size_t padLeft = p.padding;
  for (uint64_t seq = 0;; ++seq) {
    size_t pad = std::min(padLeft, cap);
    padLeft -= pad;
    size_t take = std::min(plaintext.size() - pos, cap - pad);
    record.assign(plaintext.begin() + pos, plaintext.begin() + pos + take);
    pos += take;
    const bool last = pos == plaintext.size() && padLeft == 0;
    record.push_back(last ? 0x02 : 0x01);
    record.insert(record.end(), pad, 0x00);
    size_t at = out.size();
    out.resize(at + record.size() + kGcmTagLen);
    if (!aead.seal(recordNonce(keys.nonce, seq), record,
                   std::span<uint8_t>(out).subspan(at))) {
      return pushError(PushErrc::Internal, "AES-GCM seal failed");
    }
    if (last) break;
  }
  return out;
}

PushResult<Bytes> aes128gcmDecodeRecords(const EceHeader& header, std::span<const uint8_t> records,
                                         std::span<const uint8_t> ikm,
                                         const EceDecodeLimits& limits) {
  if (header.rs < kMinRecordSize) {
    return pushError(PushErrc::RecordSizeTooSmall,
                     "record size " + std::to_string(header.rs) + " is below the minimum 18");
  }
  if (header.rs > limits.maxRecordSize) {
    return pushError(PushErrc::TooLarge, "record size " + std::to_string(header.rs) +
                                             " exceeds the limit of " +
                                             std::to_string(limits.maxRecordSize));
  }
  if (records.empty()) return pushError(PushErrc::Truncated, "no record after the header");

  const EceKeys keys = deriveEceKeys(header.salt, ikm);
  const Aes128GcmKey aead(keys.cek);
  Bytes out;
  Bytes plain(std::min<size_t>(header.rs, records.size()));  // bounded by the bytes present
  size_t pos = 0;
  for (uint64_t seq = 0; pos < records.size(); ++seq) {
    const size_t len = std::min<size_t>(header.rs, records.size() - pos);
    const bool final = pos + len == records.size();
    const std::string which = "record " + std::to_string(seq);
    if (len <= kGcmTagLen) {
      return pushError(PushErrc::Truncated, which + " has " + std::to_string(len) +
                                                " bytes, less than a tag and a delimiter");
    }
    const size_t plainLen = len - kGcmTagLen;
    if (!aead.open(recordNonce(keys.nonce, seq), records.subspan(pos, len),
                   std::span<uint8_t>(plain).first(plainLen))) {
      return pushError(PushErrc::DecryptFailed, which + " does not authenticate");
    }
    size_t d = plainLen;
    while (d > 0 && plain[d - 1] == 0) --d;
    if (d == 0) return pushError(PushErrc::BadPadding, which + " has no delimiter, only padding");
    const uint8_t delim = plain[d - 1];
    if (delim == 0x02 && !final) {
      return pushError(PushErrc::BadDelimiter, which + " says it is the last but more records follow");
    }
    if (delim == 0x01 && final) {
      return pushError(PushErrc::Truncated,
                       which + " is the last present but its delimiter says more follow");
    }
    if (delim != 0x01 && delim != 0x02) {
      return pushError(PushErrc::BadDelimiter,
                       which + " has delimiter " + std::to_string(delim) + ", not 1 or 2");
    }
    if (d - 1 > limits.maxPlaintext - out.size()) {
      return pushError(PushErrc::TooLarge, "plaintext exceeds the limit of " +
                                               std::to_string(limits.maxPlaintext) + " bytes");
    }
    out.insert(out.end(), plain.begin(), plain.begin() + static_cast<ptrdiff_t>(d - 1));
    pos += len;
  }
  return out;
}

PushResult<Bytes> aes128gcmDecode(std::span<const uint8_t> body, std::span<const uint8_t> ikm,
                                  const EceDecodeLimits& limits) {
  auto header = parseEceHeader(body);
  if (!header) return header.error();
  return aes128gcmDecodeRecords(*header, body.subspan(header->size()), ikm, limits);
}

}  // namespace ugate::webpush
