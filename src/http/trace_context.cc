#include "http/trace_context.h"

#include <algorithm>

namespace ugate::http {

namespace {

bool isOws(char c) { return c == ' ' || c == '\t'; }
bool isLcHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool isLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

bool lcHex(std::string_view s) { return std::all_of(s.begin(), s.end(), isLcHex); }
bool allZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

// forEachMember calls f(member) for every comma-separated member (OWS trimmed); stops at the first
// error f returns. Returns that error, or nullptr.
template <typename F>
const char* forEachMember(std::string_view v, F&& f) {
  for (;;) {
    size_t comma = v.find(',');
    if (const char* e = f(trim(v.substr(0, comma)))) return e;
    if (comma == std::string_view::npos) return nullptr;
    v.remove_prefix(comma + 1);
  }
}

// ---- tracestate (Trace Context section 3.3.1) ----

bool isKeyChar(char c) {
  return isLcAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

bool validTracestateKey(std::string_view k) {
  size_t at = k.find('@');
  if (at == std::string_view::npos) {  // simple-key = lcalpha 0*255(key chars)
    return !k.empty() && k.size() <= 256 && isLcAlpha(k[0]) && std::all_of(k.begin(), k.end(), isKeyChar);
  }
  // multi-tenant-key = tenant-id "@" system-id
  std::string_view tenant = k.substr(0, at), system = k.substr(at + 1);
  return !tenant.empty() && tenant.size() <= 241 && (isLcAlpha(tenant[0]) || isDigit(tenant[0])) &&
         std::all_of(tenant.begin(), tenant.end(), isKeyChar) && !system.empty() && system.size() <= 14 &&
         isLcAlpha(system[0]) && std::all_of(system.begin(), system.end(), isKeyChar);
}

bool validTracestateValue(std::string_view v) {
  // value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

// ---- baggage (W3C Baggage section 3.3.1) ----

bool isTchar(char c) {
  if (isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isBaggageOctet(char c) {
  // %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E: printable, no space, DQUOTE, comma, semicolon, backslash
  return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

// keyValue checks `key OWS "=" OWS value` (or, for a property, a bare `key`).
const char* keyValue(std::string_view s, bool valueOptional) {
  size_t eq = s.find('=');
  std::string_view key = trim(s.substr(0, eq));
  if (key.empty()) return "empty key";
  if (!std::all_of(key.begin(), key.end(), isTchar)) return "key is not a token";
  if (eq == std::string_view::npos) return valueOptional ? nullptr : "list-member without '='";
  std::string_view value = trim(s.substr(eq + 1));
  if (!std::all_of(value.begin(), value.end(), isBaggageOctet)) return "value has a character outside baggage-octet";
  return nullptr;
}

}  // namespace

const char* traceparentError(std::string_view v) {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  if (v.size() < 55) return "shorter than 55 characters";
  if (!lcHex(v.substr(0, 2))) return "version is not 2 lowercase hex digits";
  if (v.substr(0, 2) == "ff") return "version ff is forbidden";
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return "fields not separated by '-'";
  if (!lcHex(v.substr(3, 32))) return "trace-id is not 32 lowercase hex digits";
  if (allZero(v.substr(3, 32))) return "trace-id is all zeros";
  if (!lcHex(v.substr(36, 16))) return "parent-id is not 16 lowercase hex digits";
  if (allZero(v.substr(36, 16))) return "parent-id is all zeros";
  if (!lcHex(v.substr(53, 2))) return "trace-flags is not 2 lowercase hex digits";
  if (v.substr(0, 2) == "00") return v.size() == 55 ? nullptr : "version 00 has data after trace-flags";
  // A later version may add fields after a '-'; we pass them on untouched, printable only.
  if (v.size() > 55 && v[55] != '-') return "no '-' after trace-flags";
  if (!std::all_of(v.begin() + 55, v.end(), [](char c) { return c > 0x20 && c <= 0x7e; })) {
    return "space or control character after trace-flags";
  }
  return nullptr;
}

const char* tracestateError(std::string_view v) {
  size_t members = 0;
  return forEachMember(v, [&](std::string_view m) -> const char* {
    if (m.empty()) return nullptr;  // empty list-members are allowed and ignored
    if (++members > kMaxTracestateMembers) return "more than 32 list-members";
    size_t eq = m.find('=');
    if (eq == std::string_view::npos) return "list-member without '='";
    if (!validTracestateKey(m.substr(0, eq))) return "invalid key";
    if (!validTracestateValue(m.substr(eq + 1))) return "invalid value";
    return nullptr;
  });
}

const char* baggageError(std::string_view v) {
  if (v.size() > kMaxBaggageBytes) return "longer than 8192 bytes";
  size_t members = 0;
  return forEachMember(v, [&](std::string_view m) -> const char* {
    if (m.empty()) return "empty list-member";
    if (++members > kMaxBaggageMembers) return "more than 180 list-members";
    size_t semi = m.find(';');
    if (const char* e = keyValue(m.substr(0, semi), false)) return e;
    while (semi != std::string_view::npos) {  // properties: key [OWS "=" OWS value]
      m.remove_prefix(semi + 1);
      semi = m.find(';');
      std::string_view p = trim(m.substr(0, semi));
      if (p.empty()) return "empty property";
      if (const char* e = keyValue(p, true)) return e;
    }
    return nullptr;
  });
}

std::vector<TraceField> takeTraceContext(const std::function<std::string(std::string_view name)>& field) {
  std::vector<TraceField> out;
  std::string tp = field("traceparent");
  const char* tpError = tp.empty() ? "absent" : traceparentError(tp);
  if (!tp.empty()) out.push_back({"traceparent", std::move(tp), tpError});
  if (std::string ts = field("tracestate"); !ts.empty()) {
    const char* e = tpError ? "no valid traceparent" : tracestateError(ts);
    out.push_back({"tracestate", std::move(ts), e});
  }
  if (std::string bg = field("baggage"); !bg.empty()) {
    const char* e = baggageError(bg);
    out.push_back({"baggage", std::move(bg), e});
  }
  return out;
}

}  // namespace ugate::http
