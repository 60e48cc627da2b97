// libFuzzer target for the HTTP/1.x request parser and response formatter.
// The first input byte picks a split point; the rest is the stream. The split feed must give
// exactly the result of a one-shot feed (the parser's documented contract), and pipelined
// requests in the remainder are parsed after reset() to exercise reuse.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "http/http1_parser.h"

namespace {

using ugate::http::Header;
using ugate::http::ParseStatus;
using ugate::http::Request;
using ugate::http::RequestParser;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

bool sameRequest(const Request& a, const Request& b) {
  if (a.method != b.method || a.target != b.target || a.versionMinor != b.versionMinor ||
      a.keepAlive != b.keepAlive || a.contentLength != b.contentLength || a.chunked != b.chunked ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

void checkInvariants(const RequestParser& parser, ParseStatus status) {
  if (status == ParseStatus::Error) {
    const int s = parser.errorStatus();
    check(s == 400 || s == 431 || s == 501 || s == 505);
    check(!parser.error().empty());
    return;
  }
  check(parser.errorStatus() == 0);
  if (status != ParseStatus::Done) {
    return;
  }
  const Request& r = parser.request();
  check(!r.method.empty() && !r.target.empty());
  check(r.versionMinor == 0 || r.versionMinor == 1);
  check(!(r.chunked && r.contentLength >= 0));
  check(r.contentLength >= -1);
  for (const Header& h : r.headers) {
    check(!h.name.empty());
    check(h.value.empty() || (h.value.front() != ' ' && h.value.back() != ' '));
    check(h.value.find('\r') == std::string::npos && h.value.find('\n') == std::string::npos);
  }
  // Whatever we parsed must format into a response without tripping anything.
  const std::string out =
      ugate::http::formatResponse(200, r.method, r.headers, r.target, r.keepAlive);
  check(out.compare(0, 9, "HTTP/1.1 ") == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::span<const uint8_t> input(data + 1, size - 1);
  const size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);
  // Small limits so the fuzzer reaches the 431 paths; the byte limit also varies with data[0].
  const size_t maxHeaderBytes = 64 + (data[0] & 0x3f) * 16;
  constexpr size_t kMaxHeaders = 8;

  RequestParser whole(maxHeaderBytes, kMaxHeaders);
  size_t wholeConsumed = 0;
  const ParseStatus wholeStatus = whole.feed(input, wholeConsumed);
  check(wholeConsumed <= input.size());
  check(wholeStatus != ParseStatus::NeedMore || wholeConsumed == input.size());
  checkInvariants(whole, wholeStatus);

  RequestParser pieces(maxHeaderBytes, kMaxHeaders);
  size_t c1 = 0;
  size_t c2 = 0;
  ParseStatus status = pieces.feed(input.first(split), c1);
  if (status == ParseStatus::NeedMore) {
    check(c1 == split);
    status = pieces.feed(input.subspan(split), c2);
  }
  check(status == wholeStatus);
  check(pieces.errorStatus() == whole.errorStatus());
  check(pieces.error() == whole.error());
  if (status == ParseStatus::Done) {
    check(c1 + c2 == wholeConsumed);
    check(sameRequest(pieces.request(), whole.request()));
  }

  // Parse any pipelined requests left after the first one, reusing the parser.
  size_t offset = wholeConsumed;
  ParseStatus next = wholeStatus;
  for (int i = 0; i < 16 && next == ParseStatus::Done && offset < input.size(); ++i) {
    const Request taken = whole.takeRequest();
    (void)taken;
    whole.reset();
    size_t consumed = 0;
    next = whole.feed(input.subspan(offset), consumed);
    check(consumed <= input.size() - offset);
    checkInvariants(whole, next);
    offset += consumed;
  }
  return 0;
}
