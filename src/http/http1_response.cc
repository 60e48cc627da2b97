#include "http/http1_response.h"

#include <ugate/text.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

#include "http/http1_internal.h"

namespace ugate::http {
namespace {

using namespace detail;  // NOLINT(google-build-using-namespace): the shared grammar helpers

// isFixedHopByHop: the connection-specific fields of RFC 9110 7.6.1 and RFC 9114 4.2.
bool isFixedHopByHop(std::string_view name) {
  return iequals(name, "connection") || iequals(name, "keep-alive") ||
         iequals(name, "proxy-connection") || iequals(name, "transfer-encoding") ||
         iequals(name, "upgrade") || iequals(name, "te") || iequals(name, "trailer");
}

// dropFromRequest: fields formatRequestHead writes itself or must not forward.
bool dropFromRequest(std::string_view name) {
  return iequals(name, "host") || iequals(name, "content-length") || isFixedHopByHop(name);
}

bool isOws(char c) { return c == ' ' || c == '\t'; }

bool validTargetBytes(std::string_view target) {
  if (target.empty()) {
    return false;
  }
  return std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

bool isHopByHop(std::string_view name, const std::vector<Header>& headers) {
  if (isFixedHopByHop(name)) {
    return true;
  }
  for (const Header& h : headers) {
    if (!iequals(h.name, "connection")) {
      continue;
    }
    const bool listed = !forEachListElement(
        h.value, [&](std::string_view option) { return !iequals(option, name); });
    if (listed) {
      return true;
    }
  }
  return false;
}

const Header* Response::find(std::string_view lowerName) const {
  return findHeader(headers, lowerName);
}

bool Response::isHopByHop(std::string_view name) const { return http::isHopByHop(name, headers); }

ResponseParser::ResponseParser(ResponseLimits limits) : limits_(limits) {}

Response ResponseParser::takeResponse() {
  Response out = std::move(response_);
  response_ = Response{};
  return out;
}

void ResponseParser::reset() {
  noBody_ = false;
  state_ = State::StatusLine;
  sawBytes_ = false;
  pendingCr_ = false;
  lineBytes_ = 0;
  partial_.clear();
  remaining_ = 0;
  bodyBytes_ = 0;
  interim_ = 0;
  response_ = Response{};
  trailers_.clear();
  error_ = {};
}

ResponseStep ResponseParser::fail(std::string_view reason, size_t consumed) {
  state_ = State::Error;
  error_ = reason;
  return ResponseStep{ResponseEvent::Error, consumed, {}};
}

ResponseStep ResponseParser::next(std::span<const uint8_t> in) {
  if (state_ == State::Done) {
    return ResponseStep{ResponseEvent::End, 0, {}};
  }
  if (state_ == State::Error) {
    return ResponseStep{ResponseEvent::Error, 0, {}};
  }
  const size_t n = in.size();
  sawBytes_ = sawBytes_ || n > 0;
  size_t pos = 0;
  while (true) {
    switch (state_) {
      case State::StatusLine:
      case State::Headers:
      case State::ChunkLine:
      case State::Trailers: {
        if (pos == n) {
          return ResponseStep{ResponseEvent::NeedMore, n, {}};
        }
        size_t budget = limits_.maxHeadBytes;
        std::string_view tooLong = "response head too large";
        std::string_view badByte = state_ == State::StatusLine
                                       ? "invalid character in status line"
                                       : "invalid character in header field";
        if (state_ == State::ChunkLine) {
          budget = limits_.maxChunkLineBytes;
          tooLong = "chunk size line too long";
          badByte = "invalid character in chunk size line";
        } else if (state_ == State::Trailers) {
          budget = limits_.maxTrailerBytes;
          tooLong = "trailer section too large";
          badByte = "invalid character in trailer field";
        }
        std::string_view line;
        const LineScan scan =
            scanLine(in, pos, kFieldLineByte, budget, lineBytes_, partial_, pendingCr_, line);
        if (scan == LineScan::NeedMore) {
          return ResponseStep{ResponseEvent::NeedMore, n, {}};
        }
        if (scan != LineScan::Line) {
          return fail(scan == LineScan::TooLong  ? tooLong
                      : scan == LineScan::BareCr ? std::string_view("CR not followed by LF")
                                                 : badByte,
                      pos);
        }
        const State before = state_;
        std::string_view err;
        if (state_ == State::StatusLine) {
          // Empty lines before the status line are skipped (bounded by maxHeadBytes): some
          // origins send a stray CRLF after a body.
          err = line.empty() ? std::string_view{} : parseStatusLine(line);
        } else if (state_ == State::Headers) {
          err = line.empty() ? finishHead() : parseFieldLine(line, response_.headers);
        } else if (state_ == State::ChunkLine) {
          err = parseChunkLine(line);
        } else if (line.empty()) {
          state_ = State::Done;
        } else {
          err = parseFieldLine(line, trailers_);
        }
        partial_.clear();
        if (!err.empty()) {
          return fail(err, pos);
        }
        if (before == State::Headers && state_ != State::Headers && state_ != State::StatusLine) {
          return ResponseStep{ResponseEvent::Head, pos, {}};
        }
        if (state_ == State::Done) {
          return ResponseStep{ResponseEvent::End, pos, {}};
        }
        break;
      }
      case State::BodyLength:
      case State::ChunkData:
      case State::UntilClose: {
        if (state_ != State::UntilClose && remaining_ == 0) {
          if (state_ == State::BodyLength) {
            state_ = State::Done;
            return ResponseStep{ResponseEvent::End, pos, {}};
          }
          state_ = State::ChunkDataCr;
          break;
        }
        if (pos == n) {
          return ResponseStep{ResponseEvent::NeedMore, n, {}};
        }
        size_t take = n - pos;
        if (state_ != State::UntilClose && remaining_ < take) {
          take = static_cast<size_t>(remaining_);
        }
        if (state_ != State::UntilClose) {
          remaining_ -= take;
        }
        bodyBytes_ += take;
        const std::span<const uint8_t> body = in.subspan(pos, take);
        pos += take;
        return ResponseStep{ResponseEvent::Body, pos, body};
      }
      case State::ChunkDataCr:
      case State::ChunkDataLf: {
        if (pos == n) {
          return ResponseStep{ResponseEvent::NeedMore, n, {}};
        }
        const uint8_t b = in[pos];
        if (b == '\r' && state_ == State::ChunkDataCr) {
          state_ = State::ChunkDataLf;
        } else if (b == '\n') {
          state_ = State::ChunkLine;
          lineBytes_ = 0;
        } else {
          return fail("missing CRLF after chunk data", pos);
        }
        ++pos;
        break;
      }
      case State::Done:
        return ResponseStep{ResponseEvent::End, pos, {}};
      case State::Error:
        return ResponseStep{ResponseEvent::Error, pos, {}};
    }
  }
}

ResponseStep ResponseParser::finish() {
  switch (state_) {
    case State::Done:
      return ResponseStep{ResponseEvent::End, 0, {}};
    case State::Error:
      return ResponseStep{ResponseEvent::Error, 0, {}};
    case State::UntilClose:
      state_ = State::Done;
      return ResponseStep{ResponseEvent::End, 0, {}};
    case State::StatusLine:
      if (!sawBytes_) {
        return fail("connection closed before response", 0);
      }
      return fail("truncated response head", 0);
    case State::Headers:
      return fail("truncated response head", 0);
    default:
      return fail("truncated body", 0);
  }
}

std::string_view ResponseParser::parseStatusLine(std::string_view line) {
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]; the SP after the code is
  // often missing when the reason is empty, and is accepted.
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !isDigit(line[5]) || line[6] != '.' ||
      !isDigit(line[7]) || line[8] != ' ') {
    return "malformed status line";
  }
  if (line[5] != '1') {
    return "unsupported HTTP version";
  }
  if (!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    return "malformed status line";
  }
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 100 || status > 599) {
    return "invalid status code";
  }
  response_.status = status;
  response_.versionMinor = line[7] - '0';
  response_.reason.assign(line.size() > 13 ? line.substr(13) : std::string_view{});
  state_ = State::Headers;
  return {};
}

std::string_view ResponseParser::parseFieldLine(std::string_view line, std::vector<Header>& out) {
  if (isOws(line.front())) {
    return "obsolete line folding";
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return "header line without colon";
  }
  // RFC 9112 5.1: a proxy must remove whitespace between the name and the colon of a response.
  const std::string_view name = trimOws(line.substr(0, colon));
  if (!isToken(name)) {
    return "invalid header name";
  }
  if (out.size() >= limits_.maxHeaders) {
    return state_ == State::Trailers ? "too many trailer fields" : "too many headers";
  }
  out.push_back(Header{std::string(name), std::string(trimOws(line.substr(colon + 1)))});
  return {};
}

std::string_view ResponseParser::finishHead() {
  Response& r = response_;
  const int status = r.status;
  if (status == 101) {
    return "unexpected 101 Switching Protocols";
  }
  if (status < 200) {
    // An interim response: skip it and parse the next head with a fresh budget.
    if (++interim_ > limits_.maxInterimResponses) {
      return "too many interim responses";
    }
    r = Response{};
    lineBytes_ = 0;
    state_ = State::StatusLine;
    return {};
  }

  FramingFields f;
  for (const Header& h : r.headers) {
    f.add(h);
  }
  int64_t contentLength = f.contentLength;

  const bool bodyless = noBody_ || status == 204 || status == 304;
  bool framingConflict = false;
  if (f.hasTransferEncoding && !bodyless) {
    // Framing: an ambiguity here lets an origin split one response into two (desync).
    if (r.versionMinor == 0) {
      return "Transfer-Encoding in HTTP/1.0 response";
    }
    if (f.otherCoding) {
      return "unsupported transfer coding";
    }
    if (!f.chunkedSeen) {
      return "empty Transfer-Encoding";
    }
    if (f.chunkedTwice) {
      return "chunked applied more than once";
    }
    if (f.hasContentLength) {
      // RFC 9112 6.3 item 3: Transfer-Encoding overrides Content-Length, which is dropped; the
      // connection is not reused.
      framingConflict = true;
      std::erase_if(r.headers, [](const Header& h) { return iequals(h.name, "content-length"); });
      contentLength = -1;
    }
    r.framing = BodyFraming::Chunked;
  } else if (f.hasContentLength) {
    if (f.lengthError == LengthResult::Invalid) {
      return "invalid Content-Length";
    }
    if (f.lengthError == LengthResult::Conflict) {
      return "conflicting Content-Length values";
    }
    r.framing = BodyFraming::ContentLength;
  } else {
    r.framing = BodyFraming::UntilClose;
  }
  if (bodyless) {
    r.framing = BodyFraming::None;
  }
  r.contentLength = contentLength;

  r.keepAlive =
      f.keepAlive(r.versionMinor) && !framingConflict && r.framing != BodyFraming::UntilClose;

  switch (r.framing) {
    case BodyFraming::None:
      state_ = State::Done;
      break;
    case BodyFraming::ContentLength:
      remaining_ = static_cast<uint64_t>(contentLength);
      state_ = State::BodyLength;
      break;
    case BodyFraming::Chunked:
      lineBytes_ = 0;
      state_ = State::ChunkLine;
      break;
    case BodyFraming::UntilClose:
      state_ = State::UntilClose;
      break;
  }
  return {};
}

std::string_view ResponseParser::parseChunkLine(std::string_view line) {
  // chunk = chunk-size [ chunk-ext ] CRLF; chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS
  // ext-val ] ). Extensions are ignored (their bytes were already checked as field text).
  uint64_t size = 0;
  size_t i = 0;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (; i < line.size() && isHexDigit(line[i]); ++i) {
    if (size > (kMax >> 4)) {
      return "chunk size too large";
    }
    const char c = line[i];
    const uint64_t d =
        isDigit(c) ? static_cast<uint64_t>(c - '0') : static_cast<uint64_t>((c | 0x20) - 'a' + 10);
    size = (size << 4) | d;
  }
  if (i == 0) {
    return "invalid chunk size";
  }
  std::string_view rest = line.substr(i);
  while (!rest.empty() && isOws(rest.front())) {
    rest.remove_prefix(1);
  }
  if (rest.size() != line.size() - i && rest.empty()) {
    return "invalid chunk size";  // BWS only before ';'
  }
  if (!rest.empty() && rest.front() != ';') {
    return "invalid chunk size";
  }
  lineBytes_ = 0;
  if (size == 0) {
    state_ = State::Trailers;
  } else {
    remaining_ = size;
    state_ = State::ChunkData;
  }
  return {};
}

std::string formatRequestHead(std::string_view method, std::string_view target,
                              std::string_view host, const std::vector<Header>& headers,
                              int64_t contentLength, bool keepAlive) {
  if (!isToken(method) || !validTargetBytes(target) || !validAuthority(host, false)) {
    return {};
  }
  size_t size = 96 + method.size() + target.size() + host.size();
  for (const Header& h : headers) {
    size += h.name.size() + h.value.size() + 4;
  }
  std::string out;
  out.reserve(size);
  out.append(method);
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\nHost: ");
  out.append(host);
  out.append("\r\n");
  appendHeaderLines(out, headers, dropFromRequest);
  if (contentLength >= 0) {
    out.append("Content-Length: ");
    appendInt(out, contentLength);
    out.append("\r\n");
  } else if (contentLength == kChunkedBody) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (!keepAlive) {
    out.append("Connection: close\r\n");
  }
  out.append("\r\n");
  return out;
}

void appendChunkHeader(std::string& out, size_t size) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof(buf), size, 16);
  out.append(buf, r.ptr);
  out.append("\r\n");
}

void appendChunk(std::string& out, std::span<const uint8_t> data) {
  if (data.empty()) {
    return;
  }
  appendChunkHeader(out, data.size());
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  out.append("\r\n");
}

void appendLastChunk(std::string& out) { out.append("0\r\n\r\n"); }

}  // namespace ugate::http
