#pragma once
// JSON text out, without a JSON library: the access log (one line per stream) and admin documents
// (/nodes). Strings are escaped so that bytes from clients (host names, SNI) can never break a line.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ugate {

/** appendJsonString appends s as a quoted, escaped JSON string (invalid UTF-8 becomes U+FFFD). */
void appendJsonString(std::string& out, std::string_view s);

/**
 * JsonFields writes the members of one JSON object into out: `"key": value` pairs with their
 * separators. The caller writes the braces; `more` says members were written before (the first
 * member then also gets a separator). `sep` is between members: "," (compact) or ", ".
 */
class JsonFields {
 public:
  explicit JsonFields(std::string& out, bool more = false, std::string_view sep = ",", std::string_view colon = ":")
      : out_(out), more_(more), sep_(sep), colon_(colon) {}
  JsonFields& str(std::string_view key, std::string_view v);
  JsonFields& num(std::string_view key, int64_t v);
  JsonFields& unum(std::string_view key, uint64_t v);
  /** strs writes an array of strings. */
  JsonFields& strs(std::string_view key, const std::vector<std::string>& v);

 private:
  void key(std::string_view k);
  std::string& out_;
  bool more_;
  std::string_view sep_, colon_;
};

}  // namespace ugate
