#pragma once
// Error values of the Web Push crypto (RFC 8188 aes128gcm, RFC 8291 message encryption, RFC 8292
// VAPID). Each code has a stable snake_case reason for logs and "rejected by reason" counters; the
// detail says what exactly was wrong. Nothing in src/webpush throws across its API.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ugate::webpush {

/** PushErrc: why a Web Push crypto operation failed. */
enum class PushErrc : uint8_t {
  InvalidArgument,     // a caller's argument is out of range (salt length, rs, key sizes)
  Truncated,           // the body ends inside the header, a record or before the last record
  RecordSizeTooSmall,  // rs < 18 (RFC 8188 §2.1)
  TooLarge,            // over the caller's size limit (plaintext, body, header, token)
  DecryptFailed,       // the AES-GCM tag does not verify: wrong key, wrong salt or altered bytes
  BadPadding,          // a record holds no non-zero delimiter byte (all padding)
  BadDelimiter,        // the delimiter is not 0x01/0x02, or 0x02 is not on the last record
  BadKeyId,            // RFC 8291: the keyid is not a 65-byte P-256 point
  MultipleRecords,     // RFC 8291 allows one record only
  BadKey,              // a public key, private key or auth secret is malformed
  MalformedHeader,     // Authorization / Crypto-Key syntax
  MissingToken,        // no t= (vapid) or no JWT (WebPush)
  MissingKey,          // no k= (vapid) or no p256ecdsa= (Crypto-Key)
  MalformedToken,      // JWT shape, base64url, JSON or alg
  BadSignature,        // the JWT signature does not verify with k
  WrongAudience,       // aud is not the push resource's origin
  MissingExpiry,       // no numeric exp claim
  Expired,             // exp is not after now
  ExpiryTooFar,        // exp is more than 24 h after now
  WrongKey,            // k is not the restricted subscription's applicationServerKey
  Internal,            // the crypto library failed (out of memory, RNG)
};

/** pushErrcReason: the stable reason string of a code, e.g. "bad_delimiter". */
std::string_view pushErrcReason(PushErrc c);

/** PushError: a code plus a human readable detail. */
struct PushError {
  PushErrc code{PushErrc::Internal};
  std::string detail;
  std::string_view reason() const { return pushErrcReason(code); }
};

inline PushError pushError(PushErrc c, std::string detail) { return PushError{c, std::move(detail)}; }

/** PushResult: a value or a PushError (the shape of std::expected<T, PushError>). */
template <class T>
class [[nodiscard]] PushResult {
 public:
  PushResult(T v) : v_(std::move(v)) {}             // NOLINT: implicit like std::expected
  PushResult(PushError e) : v_(std::move(e)) {}     // NOLINT
  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const PushError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, PushError> v_;
};

}  // namespace ugate::webpush
