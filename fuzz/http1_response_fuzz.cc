// libFuzzer target for the HTTP/1.x response parser, the request-head writer and the chunk
// encoder. Input: byte 0 holds flags (bit 0: the request was HEAD; bit 1: EOF after the input;
// bits 2-7: vary the limits), byte 1 seeds the piece sizes, the rest is the stream from the origin.
// Checks: the parse fed whole, fed in seeded pieces and fed byte by byte gives the same events,
// body, head, trailers, error and consumed total (split invariance); Body spans point into the
// caller's buffer; responses left on a keep-alive connection parse after reset(); a parsed head's
// fields written by formatRequestHead are accepted by the request parser; the decoded body
// re-encoded with appendChunk decodes to itself.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "http/http1_response.h"

namespace {

using ugate::http::Header;
using ugate::http::ResponseEvent;
using ugate::http::ResponseLimits;
using ugate::http::ResponseParser;
using ugate::http::ResponseStep;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Trace {
  std::string events;
  std::string body;
  std::string error;
  size_t consumed{0};
  ResponseEvent last{ResponseEvent::NeedMore};
  ugate::http::Response head;
  std::vector<Header> trailers;
};

bool sameHeaders(const std::vector<Header>& a, const std::vector<Header>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) {
      return false;
    }
  }
  return true;
}

bool same(const Trace& a, const Trace& b) {
  return a.events == b.events && a.body == b.body && a.error == b.error &&
         a.consumed == b.consumed && a.last == b.last && a.head.status == b.head.status &&
         a.head.reason == b.head.reason && a.head.versionMinor == b.head.versionMinor &&
         a.head.framing == b.head.framing && a.head.contentLength == b.head.contentLength &&
         a.head.keepAlive == b.head.keepAlive && sameHeaders(a.head.headers, b.head.headers) &&
         sameHeaders(a.trailers, b.trailers);
}

// parse feeds input in pieces of the given sizes (cycled; empty means whole), keeping unconsumed
// bytes like a connection does, until End or Error; then finish() when eof.
Trace parse(std::string_view input, const std::vector<size_t>& sizes, bool eof,
            ResponseParser& parser) {
  Trace t;
  std::string pending;
  size_t at = 0;
  size_t k = 0;
  bool over = false;
  auto record = [&](ResponseEvent e) {
    t.last = e;
    if (e == ResponseEvent::NeedMore) {
      return;
    }
    const char c = "NHBEX"[static_cast<int>(e)];
    if (e == ResponseEvent::Body && !t.events.empty() && t.events.back() == 'B') {
      return;
    }
    t.events.push_back(c);
  };
  while (!over && at < input.size()) {
    const size_t n = sizes.empty() ? input.size() : sizes[k++ % sizes.size()];
    const size_t take = n < input.size() - at ? n : input.size() - at;
    pending.append(input.substr(at, take));
    at += take;
    while (true) {
      const ResponseStep s = parser.next(bytes(pending));
      check(s.consumed <= pending.size());
      record(s.event);
      if (s.event == ResponseEvent::Body) {
        const auto* lo = reinterpret_cast<const uint8_t*>(pending.data());
        check(!s.body.empty());
        check(s.body.data() >= lo && s.body.data() + s.body.size() <= lo + pending.size());
        t.body.append(reinterpret_cast<const char*>(s.body.data()), s.body.size());
      } else {
        check(s.body.empty());
      }
      t.consumed += s.consumed;
      pending.erase(0, s.consumed);
      if (s.event == ResponseEvent::NeedMore) {
        check(pending.empty());
        break;
      }
      if (s.event == ResponseEvent::End || s.event == ResponseEvent::Error) {
        over = true;
        break;
      }
    }
  }
  if (!over && input.empty()) {
    record(parser.next({}).event);
    over = t.last == ResponseEvent::End || t.last == ResponseEvent::Error;
  }
  if (eof && !over) {
    const ResponseStep s = parser.finish();
    check(s.consumed == 0);
    check(s.event == ResponseEvent::End || s.event == ResponseEvent::Error);
    record(s.event);
  }
  t.error = std::string(parser.error());
  t.head = parser.response();
  t.trailers = parser.trailers();
  check((t.last == ResponseEvent::Error) == !t.error.empty());
  check(t.body.size() == parser.bodyBytes());
  return t;
}

void checkHead(const Trace& t, bool noBody) {
  if (t.events.empty() || t.events[0] != 'H') {
    return;
  }
  const ugate::http::Response& r = t.head;
  check(r.status >= 200 && r.status <= 599);
  check(r.contentLength >= -1);
  if (noBody || r.status == 204 || r.status == 304) {
    check(r.framing == ugate::http::BodyFraming::None);
    check(t.body.empty());
  }
  if (r.framing == ugate::http::BodyFraming::ContentLength && t.last == ResponseEvent::End) {
    check(t.body.size() == static_cast<uint64_t>(r.contentLength));
  }
  if (r.framing == ugate::http::BodyFraming::Chunked) {
    check(r.contentLength == -1 && r.find("content-length") == nullptr);
  }
  for (const Header& h : r.headers) {
    check(!h.name.empty());
    check(h.value.find('\r') == std::string::npos && h.value.find('\n') == std::string::npos);
  }
  // The head's fields, written as a request head toward an origin, must be accepted by our own
  // strict request parser with the framing we asked for.
  const std::string req = ugate::http::formatRequestHead("POST", "/p", "origin.test", r.headers,
                                                         ugate::http::kChunkedBody);
  check(!req.empty());
  ugate::http::RequestParser rp(1 << 20, 1 << 16);
  size_t consumed = 0;
  check(rp.feed(bytes(req), consumed) == ugate::http::ParseStatus::Done);
  check(consumed == req.size());
  check(rp.request().chunked && rp.request().contentLength == -1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  const bool noBody = data[0] & 1;
  const bool eof = data[0] & 2;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  ResponseLimits limits;
  limits.maxHeadBytes = 64 + (data[0] >> 2) * 32;
  limits.maxHeaders = 8;
  limits.maxChunkLineBytes = 8 + (data[0] >> 4);
  limits.maxTrailerBytes = 48;
  limits.maxInterimResponses = 3;

  auto fresh = [&] {
    ResponseParser p(limits);
    if (noBody) {
      p.expectNoBody();
    }
    return p;
  };
  ResponseParser whole = fresh();
  const Trace w = parse(input, {}, eof, whole);
  checkHead(w, noBody);

  std::vector<size_t> sizes;
  uint32_t seed = data[1] * 2654435761u + 1;
  for (int i = 0; i < 16; ++i) {
    seed = seed * 1103515245u + 12345u;
    sizes.push_back(1 + (seed >> 16) % 23);
  }
  ResponseParser pieces = fresh();
  check(same(parse(input, sizes, eof, pieces), w));
  if (input.size() <= 4096) {
    ResponseParser byByte = fresh();
    check(same(parse(input, {1}, eof, byByte), w));
  }

  // Responses left on a keep-alive connection parse after reset().
  size_t offset = w.consumed;
  bool go = w.last == ResponseEvent::End && w.head.keepAlive;
  for (int i = 0; i < 4 && go && offset < input.size(); ++i) {
    whole.reset();
    const Trace next = parse(input.substr(offset), {}, eof, whole);
    checkHead(next, false);
    offset += next.consumed;
    go = next.last == ResponseEvent::End && next.head.keepAlive && next.consumed > 0;
  }

  // The decoded body re-encoded in chunks decodes to itself.
  if (!w.body.empty()) {
    std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t at = 0, k = 0; at < w.body.size(); ++k) {
      const size_t n = sizes[k % sizes.size()] * 7;
      const std::string_view piece = std::string_view(w.body).substr(at, n);
      ugate::http::appendChunk(wire, bytes(piece));
      at += piece.size();
    }
    ugate::http::appendLastChunk(wire);
    ResponseParser again;
    const Trace r = parse(wire, {}, false, again);
    check(r.last == ResponseEvent::End && r.body == w.body && r.consumed == wire.size());
  }
  return 0;
}
