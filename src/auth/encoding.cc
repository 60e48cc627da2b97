#include "auth/encoding.h"

namespace ugate::auth {

namespace {
constexpr char kB32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64(std::span<const uint8_t> d, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((d.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= d.size(); i += 3) {
    uint32_t v = (uint32_t{d[i]} << 16) | (uint32_t{d[i + 1]} << 8) | d[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = d.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{d[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint32_t{d[i]} << 16) | (uint32_t{d[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

int b64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}
}  // namespace

std::string base32Encode(std::span<const uint8_t> data) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  uint32_t buf = 0;
  int bits = 0;
  for (uint8_t b : data) {
    buf = (buf << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kB32[(buf >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kB32[(buf << (5 - bits)) & 31];
  return out;
}

std::string base64Encode(std::span<const uint8_t> data) { return b64(data, kB64, true); }
std::string base64UrlEncode(std::span<const uint8_t> data) { return b64(data, kB64Url, false); }

std::optional<std::vector<uint8_t>> base64Decode(std::string_view text) {
  std::vector<uint8_t> out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buf = 0;
  int bits = 0;
  size_t pads = 0;
  size_t chars = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pads;
      continue;
    }
    if (pads > 0) return std::nullopt;  // data after padding
    int v = b64Value(c);
    if (v < 0) return std::nullopt;
    ++chars;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>(buf >> (bits - 8)));
      bits -= 8;
    }
  }
  if (chars % 4 == 1 || pads > 2) return std::nullopt;
  if (pads > 0 && (chars + pads) % 4 != 0) return std::nullopt;
  return out;
}

}  // namespace ugate::auth
