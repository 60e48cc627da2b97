#pragma once
// Text encodings used by identities, kubeconfig files and JWTs: base32 (RFC 4648, upper case, no
// padding) and base64 in the standard and URL-safe alphabets. Pure functions, no I/O.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ugate::auth {

/** base32Encode: RFC 4648 alphabet, upper case, without '=' padding. */
std::string base32Encode(std::span<const uint8_t> data);
/** base64Encode: standard alphabet with '=' padding (kubeconfig *-data fields). */
std::string base64Encode(std::span<const uint8_t> data);
/** base64UrlEncode: URL-safe alphabet without padding (JWT, VAPID `k`). */
std::string base64UrlEncode(std::span<const uint8_t> data);
/**
 * base64Decode accepts both alphabets, with or without padding; whitespace is skipped.
 * @return the bytes, or nullopt on an invalid character or length.
 */
std::optional<std::vector<uint8_t>> base64Decode(std::string_view text);

inline std::span<const uint8_t> asBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string asString(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace ugate::auth
