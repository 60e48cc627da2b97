#pragma once
// Small ASCII text helpers shared by parsers and matchers (header names, host names, node IDs).
#include <string_view>

namespace ugate {

/** asciiLower: c in lower case when it is an ASCII letter (no locale). */
constexpr char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

/** iequals: a and b are equal ignoring ASCII case (host names, HTTP header names, node IDs). */
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

/** isNodeId: 52 characters of the RFC 4648 base32 alphabet, either case (as `ugated id` prints). */
constexpr bool isNodeId(std::string_view s) {
  if (s.size() != 52) return false;
  for (char ch : s) {
    const char u = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - ('a' - 'A')) : ch;
    if (!((u >= 'A' && u <= 'Z') || (u >= '2' && u <= '7'))) return false;
  }
  return true;
}

}  // namespace ugate
