#pragma once
// splitPieces: a fuzz input cut into at most `max` pieces on the separator FE FE FE (the xDS client
// fuzzers feed each piece as one message).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

inline std::vector<std::string_view> splitPieces(const uint8_t* data, size_t size, size_t max = 16) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (pieces.size() < max) {
    const size_t sep = in.find("\xfe\xfe\xfe", start);
    pieces.push_back(in.substr(start, sep == std::string_view::npos ? std::string_view::npos : sep - start));
    if (sep == std::string_view::npos) break;
    start = sep + 3;
  }
  return pieces;
}
