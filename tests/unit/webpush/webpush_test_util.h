#pragma once
// Helpers shared by the webpush unit tests: hex and base64url decoding of test vectors.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/encoding.h"

namespace ugate::webpush::test {

inline std::vector<uint8_t> hex(std::string_view s) {
  std::vector<uint8_t> out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    int hi = nibble(s[i]);
    int lo = nibble(s[i + 1]);
    EXPECT_TRUE(hi >= 0 && lo >= 0) << "bad hex in test vector";
    out.push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  EXPECT_EQ(s.size() % 2, 0u);
  return out;
}

inline std::vector<uint8_t> b64u(std::string_view s) {
  auto v = auth::base64Decode(s);
  EXPECT_TRUE(v.has_value()) << "bad base64url in test vector: " << s;
  return v.value_or(std::vector<uint8_t>{});
}

inline std::vector<uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

template <size_t N>
std::array<uint8_t, N> arr(const std::vector<uint8_t>& v) {
  std::array<uint8_t, N> a{};
  EXPECT_EQ(v.size(), N);
  std::copy_n(v.begin(), std::min(N, v.size()), a.begin());
  return a;
}

}  // namespace ugate::webpush::test
