#include "http/http1_parser.h"

#include <charconv>
#include <limits>
#include <utility>

#include <ugate/text.h>

#include "http/http1_internal.h"

namespace ugate::http {
namespace {

using namespace detail;  // NOLINT(google-build-using-namespace): the shared grammar helpers

// kRequestLineByte: bytes allowed anywhere in a request line (CR/LF are handled by the scanner).
// The request line is ASCII only: SP separators and visible characters.
constexpr ByteTable kRequestLineByte = [] {
  ByteTable t{};
  t[' '] = true;
  for (int c = 0x21; c <= 0x7e; ++c) t[c] = true;
  return t;
}();

// kRegNameByte: unreserved / sub-delims / '%' (pct-encoding is checked separately), RFC 3986.
constexpr ByteTable kRegNameByte = [] {
  ByteTable t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=%")) t[static_cast<uint8_t>(c)] = true;
  return t;
}();

bool validPort(std::string_view port) {
  if (port.empty() || port.size() > 5) {
    return false;
  }
  uint32_t v = 0;
  for (char c : port) {
    if (!isDigit(c)) {
      return false;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v <= 65535;
}

// validRegName accepts reg-name / IPv4address: unreserved, sub-delims and well-formed %XX.
bool validRegName(std::string_view host) {
  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (!kRegNameByte[u8(c)]) {
      return false;
    }
    if (c == '%') {
      if (i + 2 >= host.size() || !isHexDigit(host[i + 1]) || !isHexDigit(host[i + 2])) {
        return false;
      }
      i += 2;
    }
  }
  return true;
}

// validIpLiteral accepts "[" IPv6address "]" loosely: hex digits, ':' and '.' (for an embedded
// IPv4). The caller's resolver does the exact parse.
bool validIpLiteral(std::string_view host) {
  if (host.size() < 4 || host.front() != '[' || host.back() != ']') {
    return false;
  }
  for (char c : host.substr(1, host.size() - 2)) {
    if (!isHexDigit(c) && c != ':' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

namespace detail {

// validAuthority checks uri-host [":" port] (RFC 9112 3.2.3, no userinfo). An empty value is
// valid only when no port is required (an empty Host header).
bool validAuthority(std::string_view a, bool requirePort) {
  if (a.empty()) {
    return !requirePort;
  }
  std::string_view host = a;
  std::string_view port;
  bool hasPort = false;
  if (a.front() == '[') {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    host = a.substr(0, close + 1);
    const std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return false;
      }
      port = rest.substr(1);
      hasPort = true;
    }
    if (!validIpLiteral(host)) {
      return false;
    }
  } else {
    const size_t colon = a.find(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      hasPort = true;
    }
    if (host.empty() || !validRegName(host)) {
      return false;
    }
  }
  if (hasPort) {
    return validPort(port);
  }
  return !requirePort;
}

}  // namespace detail

namespace {

// validTarget checks the request-target form against the method (RFC 9112 3.2).
bool validTarget(std::string_view method, std::string_view target) {
  // A fragment is never sent in a request-target.
  if (target.find('#') != std::string_view::npos) {
    return false;
  }
  if (method == "CONNECT") {
    return validAuthority(target, /*requirePort=*/true);
  }
  if (target.front() == '/') {
    return true;  // origin-form
  }
  if (target == "*") {
    return method == "OPTIONS";  // asterisk-form
  }
  // absolute-form: scheme ":" hier-part, scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  if (!isAlpha(target.front())) {
    return false;
  }
  for (size_t i = 1; i < target.size(); ++i) {
    const char c = target[i];
    if (c == ':') {
      return i + 1 < target.size();
    }
    if (!isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return false;
}

}  // namespace

namespace detail {

// parseContentLength folds one Content-Length field value into *length. A list of identical
// values ("5, 5") is accepted as RFC 9110 8.6 allows; any differing value is a conflict.
LengthResult parseContentLength(std::string_view value, int64_t* length) {
  LengthResult result = LengthResult::Ok;
  forEachListElement(value, [&](std::string_view element) {
    if (element.empty()) {
      result = LengthResult::Invalid;
      return false;
    }
    int64_t v = 0;
    for (char c : element) {
      if (!isDigit(c)) {
        result = LengthResult::Invalid;
        return false;
      }
      const int64_t d = c - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) {
        result = LengthResult::Invalid;
        return false;
      }
      v = v * 10 + d;
    }
    if (*length >= 0 && *length != v) {
      result = LengthResult::Conflict;
      return false;
    }
    *length = v;
    return true;
  });
  return result;
}

void appendInt(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

bool validFieldText(std::string_view s) {
  for (char c : s) {
    if (!kFieldLineByte[u8(c)]) {
      return false;
    }
  }
  return true;
}

}  // namespace detail

namespace {

bool isFramingHeader(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection");
}

int normalizeStatus(int status) { return (status < 100 || status > 999) ? 500 : status; }

}  // namespace

namespace detail {

LineScan scanLine(std::span<const uint8_t> in, size_t& pos, const ByteTable& allowed,
                  size_t budget, size_t& used, std::string& partial, bool& pendingCr,
                  std::string_view& line) {
  const uint8_t* p = in.data();
  const size_t n = in.size();
  const size_t room = budget - used;
  const size_t end = (n - pos > room) ? pos + room : n;
  bool cr = pendingCr;
  size_t i = pos;
  for (; i < end; ++i) {
    const uint8_t b = p[i];
    if (b == '\n') {
      break;
    }
    if (cr) {
      pos = i;
      return LineScan::BareCr;
    }
    if (b == '\r') {
      cr = true;
    } else if (!allowed[b]) {
      pos = i;
      return LineScan::BadByte;
    }
  }
  if (i == end) {
    if (end < n) {
      pos = end;
      return LineScan::TooLong;
    }
    partial.append(reinterpret_cast<const char*>(p + pos), n - pos);
    used += n - pos;
    pendingCr = cr;
    pos = n;
    return LineScan::NeedMore;
  }
  // p[i] is the LF ending a line.
  used += i - pos + 1;
  if (partial.empty()) {
    line = std::string_view(reinterpret_cast<const char*>(p + pos), i - pos);
  } else {
    partial.append(reinterpret_cast<const char*>(p + pos), i - pos);
    line = partial;
  }
  if (cr) {
    line.remove_suffix(1);
  }
  pendingCr = false;
  pos = i + 1;
  return LineScan::Line;
}

bool FramingFields::add(const Header& h) {
  if (iequals(h.name, "content-length")) {
    hasContentLength = true;
    const LengthResult r = parseContentLength(h.value, &contentLength);
    if (lengthError == LengthResult::Ok) {
      lengthError = r;
    }
    return true;
  }
  if (iequals(h.name, "transfer-encoding")) {
    hasTransferEncoding = true;
    forEachListElement(h.value, [&](std::string_view coding) {
      if (coding.empty()) {
        return true;
      }
      const bool chunked = iequals(coding, "chunked");
      chunkedTwice = chunkedTwice || (chunked && chunkedSeen);
      chunkedSeen = chunkedSeen || chunked;
      otherCoding = otherCoding || !chunked;
      return true;
    });
    return true;
  }
  if (iequals(h.name, "connection")) {
    forEachListElement(h.value, [&](std::string_view option) {
      connectionClose = connectionClose || iequals(option, "close");
      connectionKeepAlive = connectionKeepAlive || iequals(option, "keep-alive");
      return true;
    });
    return true;
  }
  return false;
}

const Header* findHeader(const std::vector<Header>& headers, std::string_view lowerName) {
  for (const Header& h : headers) {
    if (iequals(h.name, lowerName)) {
      return &h;
    }
  }
  return nullptr;
}

void appendHeaderLines(std::string& out, const std::vector<Header>& headers,
                       bool (*drop)(std::string_view name)) {
  for (const Header& h : headers) {
    if (!isToken(h.name) || drop(h.name) || !validFieldText(h.value)) {
      continue;
    }
    out.append(h.name);
    out.append(": ");
    out.append(trimOws(h.value));
    out.append("\r\n");
  }
}

}  // namespace detail

const Header* Request::find(std::string_view lowerName) const {
  return detail::findHeader(headers, lowerName);
}

RequestParser::RequestParser(size_t maxHeaderBytes, size_t maxHeaders)
    : maxHeaderBytes_(maxHeaderBytes), maxHeaders_(maxHeaders) {}

Request RequestParser::takeRequest() {
  Request out = std::move(request_);
  request_ = Request{};
  return out;
}

void RequestParser::reset() {
  state_ = State::RequestLine;
  pendingCr_ = false;
  headBytes_ = 0;
  partial_.clear();
  request_.method.clear();
  request_.target.clear();
  request_.versionMinor = 1;
  request_.headers.clear();
  request_.keepAlive = false;
  request_.contentLength = -1;
  request_.chunked = false;
  error_ = {};
  errorStatus_ = 0;
}

ParseStatus RequestParser::fail(int status, std::string_view message) {
  state_ = State::Error;
  errorStatus_ = status;
  error_ = message;
  return ParseStatus::Error;
}

// feed scans byte by byte, so every error is tied to a stream position (a bad byte, the first
// byte over the limit, or the LF ending a bad line) and the outcome is independent of how the
// stream was split. Complete lines are parsed in place; only an incomplete one is copied.
ParseStatus RequestParser::feed(std::span<const uint8_t> data, size_t& consumed) {
  consumed = 0;
  if (state_ == State::Done) {
    return ParseStatus::Done;
  }
  if (state_ == State::Error) {
    return ParseStatus::Error;
  }
  const size_t n = data.size();
  size_t pos = 0;
  while (pos < n) {
    const ByteTable& allowed = state_ == State::RequestLine ? kRequestLineByte : kFieldLineByte;
    std::string_view line;
    const LineScan scan =
        scanLine(data, pos, allowed, maxHeaderBytes_, headBytes_, partial_, pendingCr_, line);
    if (scan == LineScan::NeedMore) {
      break;
    }
    if (scan != LineScan::Line) {
      consumed = pos;
      if (scan == LineScan::TooLong) {
        return fail(431, "request header block too large");
      }
      if (scan == LineScan::BareCr) {
        return fail(400, "CR not followed by LF");
      }
      return fail(400, state_ == State::RequestLine ? "invalid character in request line"
                                                    : "invalid character in header field");
    }
    const ParseStatus s = processLine(line);
    partial_.clear();
    if (s != ParseStatus::NeedMore) {
      consumed = pos;
      return s;
    }
  }
  consumed = n;
  return ParseStatus::NeedMore;
}

ParseStatus RequestParser::processLine(std::string_view line) {
  if (state_ == State::RequestLine) {
    if (line.empty()) {
      // RFC 9112 2.2: ignore empty lines before the request line (bounded by maxHeaderBytes_).
      return ParseStatus::NeedMore;
    }
    return parseRequestLine(line);
  }
  return parseHeaderLine(line);
}

ParseStatus RequestParser::parseRequestLine(std::string_view line) {
  // request-line = method SP request-target SP HTTP-version, single SPs only.
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  if (!isToken(method)) {
    return fail(400, "invalid method");
  }
  const std::string_view rest = line.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const std::string_view target = rest.substr(0, sp2);
  const std::string_view version = rest.substr(sp2 + 1);
  if (target.empty()) {
    return fail(400, "malformed request line");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !isDigit(version[5]) ||
      version[6] != '.' || !isDigit(version[7])) {
    return fail(400, "malformed HTTP version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return fail(505, "unsupported HTTP version");
  }
  if (!validTarget(method, target)) {
    return fail(400, "invalid request target");
  }
  request_.method.assign(method);
  request_.target.assign(target);
  request_.versionMinor = version[7] - '0';
  state_ = State::Headers;
  return ParseStatus::NeedMore;
}

ParseStatus RequestParser::parseHeaderLine(std::string_view line) {
  if (line.empty()) {
    return finishHead();
  }
  if (line.front() == ' ' || line.front() == '\t') {
    return fail(400, "obsolete line folding");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return fail(400, "header line without colon");
  }
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) {
    return fail(400, "empty header name");
  }
  if (name.back() == ' ' || name.back() == '\t') {
    return fail(400, "whitespace before colon in header");
  }
  if (!isToken(name)) {
    return fail(400, "invalid header name");
  }
  if (request_.headers.size() >= maxHeaders_) {
    return fail(431, "too many headers");
  }
  // The scanner already rejected control characters; the value is field-vchar, SP and HTAB.
  const std::string_view value = trimOws(line.substr(colon + 1));
  request_.headers.push_back(Header{std::string(name), std::string(value)});
  return ParseStatus::NeedMore;
}

ParseStatus RequestParser::finishHead() {
  FramingFields f;
  int hostCount = 0;
  bool hostValid = true;

  for (const Header& h : request_.headers) {
    if (f.add(h)) {
      if (f.lengthError == LengthResult::Invalid) {
        return fail(400, "invalid Content-Length");
      }
      if (f.lengthError == LengthResult::Conflict) {
        return fail(400, "conflicting Content-Length values");
      }
    } else if (iequals(h.name, "host")) {
      ++hostCount;
      hostValid = hostValid && validAuthority(h.value, /*requirePort=*/false);
    }
  }

  // Framing first: ambiguity here is how requests get smuggled past a front end.
  if (f.hasTransferEncoding) {
    if (f.hasContentLength) {
      return fail(400, "both Content-Length and Transfer-Encoding");
    }
    if (request_.versionMinor == 0) {
      // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
      return fail(400, "Transfer-Encoding in HTTP/1.0 request");
    }
    if (f.otherCoding) {
      return fail(501, "unsupported transfer coding");
    }
    if (!f.chunkedSeen) {
      return fail(400, "empty Transfer-Encoding");
    }
    if (f.chunkedTwice) {
      return fail(400, "chunked applied more than once");
    }
  }
  if (hostCount > 1) {
    return fail(400, "multiple Host headers");
  }
  if (hostCount == 0 && request_.versionMinor == 1) {
    return fail(400, "missing Host header");
  }
  if (!hostValid) {
    return fail(400, "invalid Host header");
  }

  request_.chunked = f.chunkedSeen;
  request_.contentLength = f.contentLength;
  request_.keepAlive = f.keepAlive(request_.versionMinor);
  state_ = State::Done;
  return ParseStatus::Done;
}

std::string_view statusReason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return {};
  }
}

std::string formatResponseHead(int status, std::string_view reason,
                               const std::vector<Header>& headers, int64_t contentLength,
                               bool keepAlive) {
  status = normalizeStatus(status);
  if (reason.empty() || !validFieldText(reason)) {
    reason = statusReason(status);
  }
  size_t size = 96 + reason.size();
  for (const Header& h : headers) {
    size += h.name.size() + h.value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  out.append("HTTP/1.1 ");
  appendInt(out, status);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
  detail::appendHeaderLines(out, headers, isFramingHeader);
  if (contentLength >= 0) {
    out.append("Content-Length: ");
    appendInt(out, contentLength);
    out.append("\r\n");
  }
  out.append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  out.append("\r\n");
  return out;
}

std::string formatResponse(int status, std::string_view reason, const std::vector<Header>& headers,
                           std::string_view body, bool keepAlive) {
  status = normalizeStatus(status);
  // RFC 9110 6.4.1 / 8.6: 1xx, 204 and 304 carry no content and (here) no Content-Length.
  const bool bodyAllowed = status >= 200 && status != 204 && status != 304;
  std::string out = formatResponseHead(
      status, reason, headers, bodyAllowed ? static_cast<int64_t>(body.size()) : -1, keepAlive);
  if (bodyAllowed) {
    out.append(body);
  }
  return out;
}

}  // namespace ugate::http
