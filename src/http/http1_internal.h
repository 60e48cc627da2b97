#pragma once
// Internal to src/http: the HTTP/1.1 grammar helpers shared by the request parser and formatter
// (http1_parser.cc) and the response parser and request formatter (http1_response.cc). Not a
// public interface; nothing outside src/http includes it.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"

namespace ugate::http::detail {

using ByteTable = std::array<bool, 256>;

// kTchar: RFC 9110 5.6.2 token characters.
inline constexpr ByteTable kTchar = [] {
  ByteTable t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] = true;
  return t;
}();

// kFieldLineByte: bytes allowed anywhere in a header line: field-vchar (VCHAR / obs-text), SP and
// HTAB. Every other control character, NUL and DEL included, is rejected.
inline constexpr ByteTable kFieldLineByte = [] {
  ByteTable t{};
  t[' '] = true;
  t['\t'] = true;
  for (int c = 0x21; c <= 0x7e; ++c) t[c] = true;
  for (int c = 0x80; c <= 0xff; ++c) t[c] = true;
  return t;
}();

constexpr uint8_t u8(char c) { return static_cast<uint8_t>(c); }

inline bool isDigit(char c) { return c >= '0' && c <= '9'; }
inline bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline bool isToken(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!kTchar[u8(c)]) {
      return false;
    }
  }
  return true;
}

inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// forEachListElement calls fn(element) for each comma-separated element with OWS trimmed,
// including empty ones (RFC 9110 5.6.1 list syntax). Stops early when fn returns false.
template <class Fn>
bool forEachListElement(std::string_view list, Fn&& fn) {
  while (true) {
    const size_t comma = list.find(',');
    if (!fn(trimOws(list.substr(0, comma)))) {
      return false;
    }
    if (comma == std::string_view::npos) {
      return true;
    }
    list.remove_prefix(comma + 1);
  }
}

enum class LengthResult { Ok, Invalid, Conflict };

// parseContentLength folds one Content-Length field value into *length (-1: none seen yet). A
// list of identical values ("5, 5") is accepted as RFC 9110 8.6 allows; any differing value is a
// conflict; signs, empty elements and values over INT64_MAX are invalid.
LengthResult parseContentLength(std::string_view value, int64_t* length);

// FramingFields collects what the framing and persistence fields of one head say, for the
// request and the response parsers to judge by their own rules.
struct FramingFields {
  // contentLength is the agreed Content-Length value, or -1.
  int64_t contentLength{-1};
  bool hasContentLength{false};
  // lengthError is the first Content-Length problem (Ok when there is none).
  LengthResult lengthError{LengthResult::Ok};
  bool hasTransferEncoding{false};
  bool chunkedSeen{false};
  bool chunkedTwice{false};
  bool otherCoding{false};
  bool connectionClose{false};
  bool connectionKeepAlive{false};

  // add folds in h when it is Content-Length, Transfer-Encoding or Connection, returning true;
  // other fields return false.
  bool add(const Header& h);
  // keepAlive is the persistence decision from the version and the Connection options.
  bool keepAlive(int versionMinor) const {
    return !connectionClose && (versionMinor != 0 || connectionKeepAlive);
  }
};

// validAuthority checks uri-host [":" port] (RFC 9112 3.2.3, no userinfo). An empty value is
// valid only when no port is required (an empty Host header).
bool validAuthority(std::string_view a, bool requirePort);

// validFieldText is true when s holds only field-vchar, SP and HTAB (no CR, LF or NUL).
bool validFieldText(std::string_view s);

void appendInt(std::string& out, int64_t v);

// LineScan is what scanLine found.
enum class LineScan : uint8_t { Line, NeedMore, BareCr, BadByte, TooLong };

// scanLine finds the end of the current line in in from pos: byte by byte, so every error is tied
// to a stream position and the outcome does not depend on how the stream was split. used counts
// the bytes of the bounded section (a head, a chunk-size line, a trailer section) so far, against
// budget (line endings included). partial and pendingCr carry an incomplete line between calls.
// Line: line is the line without its CRLF or LF (a view into in or partial; clear partial after
// using it), pos is past the LF. NeedMore: the rest of in went to partial, pos is in.size().
// BareCr (a CR not followed by LF), BadByte (a byte not in allowed) and TooLong (budget
// exceeded): pos is the offending byte.
LineScan scanLine(std::span<const uint8_t> in, size_t& pos, const ByteTable& allowed, size_t budget,
                  size_t& used, std::string& partial, bool& pendingCr, std::string_view& line);

// findHeader returns the first header whose name equals lowerName ignoring case, or nullptr.
const Header* findHeader(const std::vector<Header>& headers, std::string_view lowerName);

// appendHeaderLines writes "name: value\r\n" for each header, skipping those with an invalid name,
// a control character in the value, or a name for which drop(name) is true.
void appendHeaderLines(std::string& out, const std::vector<Header>& headers,
                       bool (*drop)(std::string_view name));

}  // namespace ugate::http::detail
